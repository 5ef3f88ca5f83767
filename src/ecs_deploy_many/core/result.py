"""What became of a target: its final status and the facts a report needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ecs_deploy_many.core.target import Target

__all__ = ["Status", "TargetResult"]


class Status(StrEnum):
    """A target's final state; the names are stable (reports and scripts read them)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    SKIPPED = "skipped"
    UNCHANGED = "unchanged"
    INTERRUPTED = "interrupted"
    UNKNOWN = "unknown"
    """ECS could not be read in time: the deployment may still complete (not ok)."""

    @property
    def ok(self) -> bool:
        """The target is where the run wanted it."""
        return self in (Status.SUCCEEDED, Status.UNCHANGED)

    @property
    def counts_as_failure(self) -> bool:
        """A failure: against the failure budget, in the summary's and JUnit's failures.

        Skipped and interrupted targets are not: nothing went wrong with them.
        """
        return self in (Status.FAILED, Status.ROLLED_BACK, Status.UNKNOWN)

    @property
    def needs_attention(self) -> bool:
        """Someone should look: a failure, or a target an interruption left mid-way."""
        return self.counts_as_failure or self is Status.INTERRUPTED


@dataclass
class TargetResult:
    """A target's outcome; filled in as the pipeline goes, final when it returns."""

    target: Target
    status: Status = Status.INTERRUPTED
    old_task_definition: str | None = None
    old_desired_count: int | None = None
    """The service's desired count before this run, for a rollback to restore."""
    old_deployment_configuration: dict[str, Any] | None = None
    """The service's deployment configuration before this run, likewise."""
    new_task_definition: str | None = None
    deployment_id: str | None = None
    error: str | None = None
    error_code: str | None = None
    failed_step: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    service_events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round(self.finished_at - self.started_at, 3)
