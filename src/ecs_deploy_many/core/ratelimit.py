"""ECS's API throttling buckets, and token buckets that run on the injected clock.

ECS throttles each account and region with one token bucket per category of actions,
shared by every caller. The table below is the documented default; the simulator
enforces it server-side and the engine paces itself with the same buckets client-side,
so a fleet rollout spends the budget evenly instead of burning through retries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import anyio

from ecs_deploy_many.core.clock import Clock

__all__ = [
    "ECS_BUCKETS",
    "OPERATION_CATEGORY",
    "BucketSpec",
    "TokenBucket",
    "category_of",
    "client_side",
]


@dataclass(frozen=True)
class BucketSpec:
    """Burst capacity and sustained refill rate (tokens per simulated second)."""

    burst: float
    refill_per_s: float

    def __post_init__(self) -> None:
        if self.burst < 1 or self.refill_per_s <= 0:
            raise ValueError(f"a bucket needs burst >= 1 and refill > 0, got {self}")


ECS_BUCKETS: dict[str, BucketSpec] = {
    "service_read": BucketSpec(100, 20),
    "service_modify": BucketSpec(50, 5),
    "task_definition_modify": BucketSpec(20, 1),
    "task_definition_read": BucketSpec(50, 20),
    "cluster_resource_read": BucketSpec(100, 20),
    "cluster_resource_modify": BucketSpec(100, 40),
    "cluster_read": BucketSpec(50, 20),
}

OPERATION_CATEGORY: dict[str, str] = {
    "DescribeServices": "service_read",
    "ListServices": "service_read",
    "CreateService": "service_modify",
    "UpdateService": "service_modify",
    "DeleteService": "service_modify",
    "RegisterTaskDefinition": "task_definition_modify",
    "DeregisterTaskDefinition": "task_definition_modify",
    "DescribeTaskDefinition": "task_definition_read",
    "ListTaskDefinitions": "task_definition_read",
    "ListTaskDefinitionFamilies": "task_definition_read",
    "DescribeTasks": "cluster_resource_read",
    "ListTasks": "cluster_resource_read",
    "RunTask": "cluster_resource_modify",
    "StartTask": "cluster_resource_modify",
    "StopTask": "cluster_resource_modify",
    "DescribeClusters": "cluster_read",
    "ListClusters": "cluster_read",
}


def client_side(spec: BucketSpec) -> BucketSpec:
    """The bucket a client should pace itself with to stay inside ``spec`` server-side.

    Calls paced perfectly by the client still reach the server bunched (network and
    scheduling delays vary), and a bunch larger than the server's spare tokens is
    throttled. Keeping a few tokens of the burst in reserve absorbs that; the sustained
    rate stays the same, so the pace is not slower.
    """
    reserve = max(2, math.ceil(spec.burst * 0.1))
    return BucketSpec(max(1.0, spec.burst - reserve), spec.refill_per_s)


def category_of(operation: str) -> str | None:
    """The throttling category of an ECS operation; None where no bucket is documented."""
    return OPERATION_CATEGORY.get(operation)


class TokenBucket:
    """A token bucket on simulated time.

    ``try_take`` is the server's view (answer now, throttle or not); ``take`` is the
    client's (wait for a token, first come first served, so no caller starves).
    """

    def __init__(self, spec: BucketSpec, clock: Clock) -> None:
        self.spec = spec
        self._clock = clock
        self._tokens = float(spec.burst)
        self._updated = clock.now()
        self._queue = anyio.Lock()

    def _refill(self) -> None:
        now = self._clock.now()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.spec.burst), self._tokens + elapsed * self.spec.refill_per_s)
        self._updated = now

    @property
    def tokens(self) -> float:
        """Tokens available now."""
        self._refill()
        return self._tokens

    def try_take(self) -> bool:
        """Take one token if there is one."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def seconds_until_token(self) -> float:
        """Simulated seconds until one token is available (0 when one is)."""
        self._refill()
        return max(0.0, (1.0 - self._tokens) / self.spec.refill_per_s)

    def drain(self) -> None:
        """Empty the bucket: another caller spent it (used after a server-side throttle)."""
        self._refill()
        self._tokens = min(self._tokens, 0.0)

    async def take(self) -> None:
        """Wait, in arrival order, until a token is available, then take it."""
        async with self._queue:
            while not self.try_take():
                await self._clock.sleep(self.seconds_until_token())
