"""What a loaded plan is: the targets, their order, and the run's policies.

Everything here is frozen and already validated, so the engine never re-checks a plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ecs_deploy_many.core.ratelimit import ECS_BUCKETS, BucketSpec
from ecs_deploy_many.core.scope import AwsScope
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.plan.schedule import Schedule

__all__ = [
    "AlarmGate",
    "ApprovalGate",
    "FailureBudget",
    "Images",
    "LockSpec",
    "Notification",
    "NotificationEvent",
    "OnFailure",
    "Plan",
    "Polling",
    "Wave",
]

OnFailure = Literal["halt", "continue", "rollback_all"]
"""What the run does once failures exceed the budget.

``halt``: start no new target, let running ones finish. ``continue``: deploy the rest
anyway; the run still ends failed. ``rollback_all``: halt, then roll back every target
this run already deployed.
"""


@dataclass(frozen=True)
class AlarmGate:
    """CloudWatch alarms that must not be in ALARM while a wave bakes (``alarms:``).

    INSUFFICIENT_DATA is not ALARM: an alarm without data yet (a new metric, a quiet
    service) does not fail a wave.
    """

    names: tuple[str, ...] = ()
    """Alarms named exactly; one that does not exist fails the gate (a typo must not
    pass for a quiet alarm)."""
    prefixes: tuple[str, ...] = ()
    """Every alarm whose name starts with one of these; none existing is fine."""
    scope: AwsScope = field(default_factory=AwsScope)
    """Where the alarms are read: the account and region of the wave's targets, or the
    gate's own region (``region:``)."""
    interval: float = 30.0
    """Seconds of the run's clock between two reads while the wave bakes."""


@dataclass(frozen=True)
class ApprovalGate:
    """A wave that starts only once someone runs ``ecs-deploy-many approve RUN WAVE``."""

    timeout: float
    """Seconds to wait for the approval; then the wave and every later one is skipped."""


@dataclass(frozen=True)
class Wave:
    """Targets deployed together; the next wave starts after this one succeeded and baked."""

    name: str
    targets: tuple[str, ...]
    """Target names, in plan order."""
    bake: float = 0.0
    """Seconds to keep watching the wave's services after it succeeded."""
    alarms: AlarmGate | None = None
    """Alarms that fail the wave's services when in ALARM during its bake."""
    approval: ApprovalGate | None = None
    """An approval the wave waits for before it starts."""


@dataclass(frozen=True)
class FailureBudget:
    """How many failed targets a run tolerates: a count, or a percentage of the run.

    A percentage is taken of the targets selected for this run and rounded down, so
    "10%" of 9 targets tolerates none. Targets with ``allow_failure`` never count.
    """

    amount: float = 0
    percent: bool = False

    def limit(self, total: int) -> int:
        """The number of failures tolerated in a run of ``total`` targets."""
        if self.percent:
            return math.floor(total * self.amount / 100 + 1e-9)
        return int(self.amount)

    def allows(self, failures: int, total: int) -> bool:
        """Whether ``failures`` failed targets out of ``total`` are still within budget."""
        return failures <= self.limit(total)

    def __str__(self) -> str:
        return f"{self.amount:g}%" if self.percent else str(int(self.amount))


@dataclass(frozen=True)
class Polling:
    """Adaptive polling: start at ``initial_interval`` seconds, back off to ``max_interval``."""

    initial_interval: float = 2.0
    max_interval: float = 10.0


@dataclass(frozen=True)
class LockSpec:
    """The plan's run lock (``lock:``): one run of the plan at a time.

    A local file lock without ``table`` (one host), a DynamoDB item with it (runners on
    several machines or in ephemeral containers).
    """

    name: str
    """Given, else derived: from the plan's absolute path for a file lock, from its file
    name for a DynamoDB lock (runners on other machines see it at other paths)."""
    table: str | None = None
    """The DynamoDB table holding the lock item, or None for a local file lock."""
    region: str | None = None
    """The table's region; None is the SDK's default (``AWS_REGION`` ...)."""
    lease: float = 60.0
    """Seconds a DynamoDB lease lasts without a heartbeat; renewed every third of it."""


@dataclass(frozen=True)
class Images:
    """The plan's ``images:`` block."""

    pin_digests: bool = True
    """Resolve each Amazon ECR image's tag to its digest once, before the first change,
    and deploy every target by that digest."""


NotificationEvent = Literal["start", "finish", "target_failed"]


@dataclass(frozen=True)
class Notification:
    """A webhook of the plan's ``notifications:`` list."""

    url: str = field(repr=False)
    """A secret (a Slack webhook URL is a credential): never shown."""
    format: Literal["slack", "json"] = "slack"
    on: frozenset[NotificationEvent] = frozenset({"start", "finish"})


@dataclass(frozen=True)
class Plan:
    """A validated deploy plan, ready for the engine."""

    source: Path
    targets: tuple[Target, ...]
    waves: tuple[Wave, ...]
    max_parallel: int = 25
    per_cluster: int | None = None
    """At most this many targets of one cluster at a time; None is no limit."""
    failure_budget: FailureBudget = field(default_factory=FailureBudget)
    on_failure: OnFailure = "halt"
    rate_limits: Mapping[str, BucketSpec] = field(default_factory=lambda: dict(ECS_BUCKETS))
    """Every ECS throttling category, with the plan's overrides applied."""
    polling: Polling = field(default_factory=Polling)
    lock: LockSpec | None = None
    """The run lock a changing run takes first; None without ``lock:``."""
    schedule: Schedule | None = None
    """When runs may deploy (``jobs.windows`` decides); None: at any time."""
    images: Images = field(default_factory=Images)
    notifications: tuple[Notification, ...] = ()

    @property
    def max_failures(self) -> int:
        """The failure budget as a count, for the targets in this plan."""
        return self.failure_budget.limit(len(self.targets))

    def target(self, name: str) -> Target:
        """The target called ``name`` (KeyError if there is none)."""
        for target in self.targets:
            if target.name == name:
                return target
        raise KeyError(name)
