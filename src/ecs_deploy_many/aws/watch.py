"""Coalesced polling: one poller per cluster describes every watched service together,
and one per account and region every watched service deployment.

A thousand targets waiting on one cluster cost a hundred DescribeServices calls per round
(ten services per call), not a thousand; their service deployments, where the wait reads
them, twenty per DescribeServiceDeployments call across the region's clusters. Targets
subscribe to their service (or service deployment) and receive each fresh description.
Each subscriber has its own adaptive, jittered schedule (fast right after it subscribes,
slower while its deployment is clearly still running); a round takes every subscriber
due by then, so calls stay full, and every call is paced by the gateway's token buckets.

A round whose call fails transiently (a server error, a broken connection) is repeated
by the gateway with backoff, its subscribers still subscribed, until it is answered:
each waiting target's own deadline decides how long that may take. Only a definitive
error (access denied, no such cluster) reaches the subscribers of the call.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio

from ecs_deploy_many.aws.gateway import (
    DESCRIBE_SERVICE_DEPLOYMENTS_BATCH,
    DESCRIBE_SERVICES_BATCH,
    Gateway,
)
from ecs_deploy_many.core.clock import Clock
from ecs_deploy_many.core.errors import AwsError

__all__ = [
    "PollPolicy",
    "ServiceDeploymentWatcher",
    "ServiceRevisionWatcher",
    "ServiceUpdates",
    "ServiceWatcher",
]

# How long a one-off describe waits for others to join its call.
COALESCE_WINDOW = 0.5


@dataclass(frozen=True)
class PollPolicy:
    """Poll interval bounds in simulated seconds; the interval grows by ``growth`` a round."""

    initial_interval: float = 2.0
    max_interval: float = 10.0
    growth: float = 1.5
    jitter: float = 0.1


class ServiceUpdates:
    """A subscriber's mailbox (only the newest description is kept) and its poll schedule.

    Each subscriber is polled on its own schedule: soon after it subscribes, then less
    and less often while its deployment runs. A round describes every subscriber that
    is due (or nearly due), as many per call as the operation takes.
    """

    def __init__(
        self, service: str, *, interval: float, due: float, ask: Callable[[ServiceUpdates], None]
    ) -> None:
        self.service = service
        """What is described: a service's name, or a service deployment's ARN."""
        self.interval = interval
        self.due = due
        self._ask = ask
        self._latest: dict[str, Any] | AwsError | None = None
        self._fresh = anyio.Event()

    def _put(self, value: dict[str, Any] | AwsError | None) -> None:
        self._latest = value
        self._fresh.set()

    def ask_now(self) -> None:
        """Be described in the next round, whatever the schedule says."""
        self._ask(self)

    async def next(self) -> dict[str, Any] | None:
        """The next description (None when the service is missing).

        Raises AwsError when ECS refused to describe it (never for a transient failure).
        """
        await self._fresh.wait()
        self._fresh = anyio.Event()
        value = self._latest
        if isinstance(value, AwsError):
            raise value
        return value


class _Watcher(ABC):
    """Polls what is subscribed, ``batch`` per call, when it is due."""

    batch: int

    def __init__(self, gateway: Gateway, clock: Clock, policy: PollPolicy | None = None) -> None:
        self._gateway = gateway
        self._clock = clock
        self._policy = policy or PollPolicy()
        self._subscribers: list[ServiceUpdates] = []
        self._wake = anyio.Event()
        self._random = random.Random()
        self.rounds = 0

    @asynccontextmanager
    async def subscribe(
        self, service: str, *, first_within: float | None = None
    ) -> AsyncIterator[ServiceUpdates]:
        """Receive ``service``'s descriptions for as long as the block runs.

        The first one comes within ``first_within`` seconds (default: the initial poll
        interval), in a round shared with every other subscriber due by then.
        """
        interval = self._policy.initial_interval
        soon = interval if first_within is None else first_within
        updates = ServiceUpdates(
            service, interval=interval, due=self._clock.now() + soon, ask=self._ask_now
        )
        self._subscribers.append(updates)
        self._wake.set()
        try:
            yield updates
        finally:
            self._subscribers.remove(updates)

    def _ask_now(self, updates: ServiceUpdates) -> None:
        updates.due = self._clock.now()
        self._wake.set()

    async def describe(self, service: str) -> dict[str, Any] | None:
        """One description of ``service`` (None if missing), batched with its neighbours."""
        async with self.subscribe(service, first_within=COALESCE_WINDOW) as updates:
            return await updates.next()

    async def run(self) -> None:
        """Poll until cancelled; idle while nobody is subscribed."""
        while True:
            self._wake = anyio.Event()
            if not self._subscribers:
                await self._wake.wait()
                continue
            wait = min(u.due for u in self._subscribers) - self._clock.now()
            if wait > 0:
                with self._clock.move_on_after(wait):
                    await self._wake.wait()  # a new subscriber may be due sooner
                continue
            await self._poll_round()

    async def _poll_round(self) -> None:
        """Describe everyone due, and fill the calls' spare places with the next due.

        A call describes up to ``batch`` subscribers for the price of one, so a round
        that must make a call also refreshes whoever would have been due next.
        """
        ordered = sorted(self._subscribers, key=lambda u: u.due)
        now = self._clock.now()
        due_services = {u.service for u in ordered if u.due <= now}
        capacity = -(-len(due_services) // self.batch) * self.batch
        services = list(dict.fromkeys(u.service for u in ordered))[:capacity]
        polled = set(services)
        due = [u for u in ordered if u.service in polled]
        self.rounds += 1
        try:
            described = await self._describe(services)
        except AwsError as error:
            described = dict.fromkeys(services, error)
        policy, now = self._policy, self._clock.now()
        for updates in due:
            if updates in self._subscribers:  # it may have left while we asked
                updates._put(described.get(updates.service))
                updates.interval = min(policy.max_interval, updates.interval * policy.growth)
                jitter = self._random.uniform(1 - policy.jitter, 1 + policy.jitter)
                updates.due = now + updates.interval * jitter

    @abstractmethod
    async def _describe(self, keys: list[str]) -> dict[str, Any]:
        """One round's descriptions by key (None for a missing one)."""


class ServiceWatcher(_Watcher):
    """Polls the services subscribed in one cluster, ten per DescribeServices call."""

    batch = DESCRIBE_SERVICES_BATCH

    def __init__(
        self, gateway: Gateway, cluster: str, clock: Clock, policy: PollPolicy | None = None
    ) -> None:
        super().__init__(gateway, clock, policy)
        self._cluster = cluster

    async def _describe(self, keys: list[str]) -> dict[str, Any]:
        return dict(await self._gateway.describe_services(self._cluster, keys))


class ServiceDeploymentWatcher(_Watcher):
    """Polls the service deployments subscribed in one account and region (whatever their
    cluster), twenty ARNs per DescribeServiceDeployments call.

    ``revisions`` describes service revisions the same way: each target confirms which
    service deployment is its own by the revision it deploys, and a fleet's targets
    confirm theirs together.
    """

    batch = DESCRIBE_SERVICE_DEPLOYMENTS_BATCH

    def __init__(self, gateway: Gateway, clock: Clock, policy: PollPolicy | None = None) -> None:
        super().__init__(gateway, clock, policy)
        self.revisions = ServiceRevisionWatcher(gateway, clock, policy)
        self.unsupported: AwsError | None = None
        """Set when the endpoint does not know the service-deployment operations (an
        UnknownOperationException): no other target of the scope asks again."""

    async def run(self) -> None:
        """Poll service deployments and service revisions until cancelled."""
        async with anyio.create_task_group() as group:
            group.start_soon(self.revisions.run)
            await super().run()

    async def _describe(self, keys: list[str]) -> dict[str, Any]:
        return dict(await self._gateway.describe_service_deployments(keys))


class ServiceRevisionWatcher(_Watcher):
    """Describes the service revisions asked for in one account and region, twenty ARNs
    per DescribeServiceRevisions call (``describe`` only: a revision never changes)."""

    batch = DESCRIBE_SERVICE_DEPLOYMENTS_BATCH

    async def _describe(self, keys: list[str]) -> dict[str, Any]:
        return dict(await self._gateway.describe_service_revisions(keys))
