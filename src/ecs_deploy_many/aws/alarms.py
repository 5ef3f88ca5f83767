"""Reading a wave's CloudWatch alarms: one paced DescribeAlarms pass per gate read.

A wave's alarm gate is read as a whole, never per target: its names
in batches of 100 (DescribeAlarms' limit on ``AlarmNames``), then each prefix
(``AlarmNamePrefix``; the API takes one per call and not with names), every page
followed. Metric and composite alarms both count. Each call first takes a token of the
scope's bucket, so gates of waves in one account never burst CloudWatch.

A read that fails after the SDK's retries raises ``AwsError``: the gate then cannot
vouch for the wave, and the engine treats that as a failed gate (``deploy.gates``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from ecs_deploy_many.core.clock import Clock
from ecs_deploy_many.core.errors import AwsError
from ecs_deploy_many.core.ratelimit import BucketSpec, TokenBucket
from ecs_deploy_many.core.scope import AwsScope

__all__ = [
    "ALARM_TYPES",
    "DESCRIBE_ALARMS_PACE",
    "AlarmReading",
    "AlarmState",
    "CloudWatchAlarms",
    "CloudWatchClients",
]

NAMES_PER_CALL = 100
"""DescribeAlarms takes at most 100 ``AlarmNames``."""
ALARM_TYPES = ["MetricAlarm", "CompositeAlarm"]
"""Without ``AlarmTypes`` DescribeAlarms returns metric alarms only."""
DESCRIBE_ALARMS_PACE = BucketSpec(burst=5, refill_per_s=1)
"""Our own pace per account and region, far below CloudWatch's DescribeAlarms quota
(its documented TPS is adjustable and differs by region; a gate reads a few times a
minute): the deploy must never crowd out the dashboards and alarms sharing it."""


@dataclass(frozen=True)
class AlarmState:
    name: str
    state: str
    """OK, ALARM or INSUFFICIENT_DATA."""
    reason: str = ""


@dataclass(frozen=True)
class AlarmReading:
    """What one read of a gate found."""

    alarms: tuple[AlarmState, ...] = ()
    missing: tuple[str, ...] = ()
    """Names the gate gives that CloudWatch does not know."""

    @property
    def firing(self) -> tuple[AlarmState, ...]:
        """The alarms in ALARM (INSUFFICIENT_DATA is not: a new or quiet metric)."""
        return tuple(alarm for alarm in self.alarms if alarm.state == "ALARM")


class CloudWatchClients(Protocol):
    """Where the reader gets a CloudWatch client for a scope (``aws.session.ClientPool``)."""

    async def cloudwatch(self, scope: AwsScope) -> Any: ...


@dataclass
class CloudWatchAlarms:
    """Reads alarm gates through ``clients``, paced per scope on ``clock``."""

    clients: CloudWatchClients
    clock: Clock
    pace: BucketSpec = DESCRIBE_ALARMS_PACE
    _buckets: dict[AwsScope, TokenBucket] = field(default_factory=dict)

    async def read(
        self, scope: AwsScope, names: Sequence[str], prefixes: Sequence[str] = ()
    ) -> AlarmReading:
        """Every alarm in ``scope`` called one of ``names`` or whose name starts with
        one of ``prefixes``."""
        client = await self.clients.cloudwatch(scope)
        bucket = self._buckets.get(scope)
        if bucket is None:
            bucket = self._buckets[scope] = TokenBucket(self.pace, self.clock)
        found: dict[str, AlarmState] = {}
        calls = [
            {"AlarmNames": list(names[i : i + NAMES_PER_CALL])}
            for i in range(0, len(names), NAMES_PER_CALL)
        ] + [{"AlarmNamePrefix": prefix} for prefix in prefixes]
        for call in calls:
            async for alarm in _alarms(client, bucket.take, call):
                found[alarm.name] = alarm
        missing = tuple(name for name in names if name not in found)
        return AlarmReading(tuple(found.values()), missing)


async def _alarms(
    client: Any, pace: Callable[[], Any], call: dict[str, Any]
) -> AsyncIterator[AlarmState]:
    """The alarms one DescribeAlarms query finds, page by page, each call paced."""
    token: str | None = None
    while True:
        await pace()
        try:
            page = await client.describe_alarms(
                **call, AlarmTypes=ALARM_TYPES, **({"NextToken": token} if token else {})
            )
        except ClientError as error:
            details = error.response.get("Error", {})
            raise AwsError(
                "DescribeAlarms", details.get("Code", "Unknown"), details.get("Message", "")
            ) from error
        except BotoCoreError as error:  # no connection, a timeout
            raise AwsError("DescribeAlarms", type(error).__name__, str(error)) from error
        for alarm in _listed(page):
            yield alarm
        token = page.get("NextToken")
        if not token:
            return


def _listed(page: dict[str, Any]) -> Sequence[AlarmState]:
    return [
        AlarmState(item["AlarmName"], item["StateValue"], item.get("StateReason", ""))
        for kind in ("MetricAlarms", "CompositeAlarms")
        for item in page.get(kind, [])
    ]
