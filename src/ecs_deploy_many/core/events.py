"""The typed events a run emits; logs, progress views and reports subscribe to them.

The pipeline and the engine never print. They emit ``TargetEvent``s to an ``Observer``;
``observe.log`` turns them into structlog lines, and later subscribers (live view,
journal, reports) read the same stream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from ecs_deploy_many.core.result import TargetResult
from ecs_deploy_many.core.target import Target

__all__ = ["EventName", "Level", "Observer", "Step", "TargetEvent", "fan_out", "target_finished"]

Step = Literal[
    "resolve",
    "render",
    "register",
    "update",
    "wait",
    "rollback",
    "cleanup",
    "run_task",
    "bake",
    "approval",
    "done",
]
Level = Literal["debug", "info", "warning", "error"]


class EventName(StrEnum):
    """What happened; the values are stable (they are the ``event`` of every log line)."""

    TARGET_STARTED = "target_started"
    STEP_STARTED = "step_started"
    """A step began (debug level): timelines measure steps by it."""
    RESOLVED = "resolved"
    CONTAINER_IMAGE = "container_image"
    REGISTERED = "registered"
    UNCHANGED = "unchanged"
    SERVICE_UPDATED = "service_updated"
    TIMEOUT_TOO_SHORT = "timeout_too_short"
    """The target's timeout is shorter than the waits the service's deployment strategy
    makes on purpose (bake time, linear or canary steps): it will time out."""
    ATTACHED = "attached"
    """Instead of updating the service, the target follows a deployment already under way
    (the rendered revision rolling out, or, on resume, the run's own deployment)."""
    SERVICE_DEPLOYMENT = "service_deployment"
    """Which of ECS's service deployments is ours (``service_deployment_arn``), or why
    the wait judges by the service's deployments array instead (``reason``)."""
    PROGRESS = "progress"
    ECS_EVENT = "ecs_event"
    DEPLOYMENT_COMPLETED = "deployment_completed"
    TASK_STATUS = "task_status"
    ROLLED_BACK_BY_ECS = "rolled_back_by_ecs"
    DEPLOYMENT_STOPPED = "deployment_stopped"
    """The run was interrupted and, as asked, stopped our service deployment: ECS rolls
    it back (StopServiceDeployment, stopType ROLLBACK)."""
    ROLLBACK_STARTED = "rollback_started"
    ROLLED_BACK = "rolled_back"
    BAKE_REGRESSED = "bake_regressed"
    ALARM_GATE_FAILED = "alarm_gate_failed"
    """A wave's alarm gate failed while it baked (an alarm in ALARM, or unreadable)."""
    APPROVAL_WAITING = "approval_waiting"
    """The target's wave waits for ``ecs-deploy-many approve RUN WAVE``."""
    APPROVED = "approved"
    CLEANUP_SKIPPED = "cleanup_skipped"
    DEREGISTERED = "deregistered"
    TARGET_FINISHED = "target_finished"
    """A target's final state: one canonical line per target (``target_finished``)."""


@dataclass(frozen=True)
class TargetEvent:
    """Something that happened to one target, with the facts of the step."""

    target: Target
    step: Step
    event: EventName
    at: float
    facts: Mapping[str, Any] = field(default_factory=dict)
    level: Level = "info"


Observer = Callable[[TargetEvent], None]


def fan_out(*observers: Observer) -> Observer:
    """One observer that hands every event to each of ``observers`` in turn."""

    def observe(event: TargetEvent) -> None:
        for observer in observers:
            observer(event)

    return observe


def target_finished(result: TargetResult, at: float, level: Level | None = None) -> TargetEvent:
    """The one summary event of a target's final state, however the target ended.

    Emitted when the pipeline finishes, when the engine settles a target it never
    deployed, when a bake changes a finished target's outcome, and when the run stops on
    an unexpected error. The level defaults to ``info`` for an ok status, else ``error``.
    """
    facts = {
        "status": str(result.status),
        "old_task_definition": result.old_task_definition,
        "new_task_definition": result.new_task_definition,
        "deployment_id": result.deployment_id,
        "error": result.error,
        "error_code": result.error_code,
        "failed_step": result.failed_step,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "elapsed_s": result.duration_s,
    }
    level = level or ("info" if result.status.ok else "error")
    return TargetEvent(result.target, "done", EventName.TARGET_FINISHED, at, facts, level)
