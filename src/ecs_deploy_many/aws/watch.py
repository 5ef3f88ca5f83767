"""Coalesced polling: one poller per cluster describes every watched service together.

A thousand targets waiting on one cluster cost a hundred DescribeServices calls per round
(ten services per call), not a thousand. Targets subscribe to their service and receive
each fresh description; the poller paces itself adaptively (fast right after a
subscription, slower while deployments are clearly still running) and through the
gateway's token buckets.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio

from ecs_deploy_many.aws.gateway import Gateway
from ecs_deploy_many.clock import Clock
from ecs_deploy_many.errors import AwsError

__all__ = ["PollPolicy", "ServiceUpdates", "ServiceWatcher"]

# How long a one-off describe waits for others to join its DescribeServices call.
COALESCE_WINDOW = 0.5


@dataclass(frozen=True)
class PollPolicy:
    """Poll interval bounds in simulated seconds; the interval grows by ``growth`` a round."""

    initial_interval: float = 2.0
    max_interval: float = 10.0
    growth: float = 1.5
    jitter: float = 0.1


class ServiceUpdates:
    """A subscriber's mailbox: keeps only the newest description."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._latest: dict[str, Any] | AwsError | None = None
        self._fresh = anyio.Event()

    def _put(self, value: dict[str, Any] | AwsError | None) -> None:
        self._latest = value
        self._fresh.set()

    async def next(self) -> dict[str, Any] | None:
        """The next description (None when the service is missing); raises AwsError."""
        await self._fresh.wait()
        self._fresh = anyio.Event()
        value = self._latest
        if isinstance(value, AwsError):
            raise value
        return value


class ServiceWatcher:
    """Polls the services subscribed in one cluster, ten per call, one round at a time."""

    def __init__(
        self, gateway: Gateway, cluster: str, clock: Clock, policy: PollPolicy | None = None
    ) -> None:
        self._gateway = gateway
        self._cluster = cluster
        self._clock = clock
        self._policy = policy or PollPolicy()
        self._subscribers: dict[str, list[ServiceUpdates]] = {}
        self._wake = anyio.Event()
        self._interval = self._policy.initial_interval
        self._next_round = float("inf")
        self._random = random.Random()
        self.rounds = 0

    @asynccontextmanager
    async def subscribe(
        self, service: str, *, first_within: float | None = None
    ) -> AsyncIterator[ServiceUpdates]:
        """Receive ``service``'s descriptions for as long as the block runs.

        The first one comes within ``first_within`` seconds (default: the initial poll
        interval); every service subscribed meanwhile shares that round's calls.
        """
        updates = ServiceUpdates(service)
        self._subscribers.setdefault(service, []).append(updates)
        self._interval = self._policy.initial_interval
        soon = self._interval if first_within is None else first_within
        self._next_round = min(self._next_round, self._clock.now() + soon)
        self._wake.set()
        try:
            yield updates
        finally:
            listeners = self._subscribers[service]
            listeners.remove(updates)
            if not listeners:
                del self._subscribers[service]

    async def describe(self, service: str) -> dict[str, Any] | None:
        """One description of ``service`` (None if missing), batched with its neighbours."""
        async with self.subscribe(service, first_within=COALESCE_WINDOW) as updates:
            return await updates.next()

    async def run(self) -> None:
        """Poll until cancelled; idle while nobody is subscribed."""
        while True:
            if not self._subscribers:
                self._wake = anyio.Event()
                await self._wake.wait()
                continue
            wait = self._next_round - self._clock.now()
            if wait > 0:
                self._wake = anyio.Event()
                with self._clock.move_on_after(wait):
                    await self._wake.wait()  # a new subscriber may bring the round forward
                continue
            await self._poll_round()
            policy = self._policy
            self._interval = min(policy.max_interval, self._interval * policy.growth)
            jitter = self._random.uniform(1 - policy.jitter, 1 + policy.jitter)
            self._next_round = self._clock.now() + self._interval * jitter

    async def _poll_round(self) -> None:
        services = list(self._subscribers)
        if not services:
            return
        self.rounds += 1
        try:
            described = await self._gateway.describe_services(self._cluster, services)
        except AwsError as error:
            for service in services:
                self._deliver(service, error)
            return
        for service, description in described.items():
            self._deliver(service, description)

    def _deliver(self, service: str, value: dict[str, Any] | AwsError | None) -> None:
        for updates in self._subscribers.get(service, ()):
            updates._put(value)
