"""What a run did to each target, folded from its events: where resume and rollback start.

A run's journal is its event stream. ``TargetHistory.record`` folds one target's events
into the facts a later command needs: the revision, desired count and deployment
configuration the service had before the run (what ``rollback RUN`` restores), the
revision the run registered (what a resume reuses), whether UpdateService may have gone
out and the deployment it started or attached to (what a resume re-attaches to instead
of updating again), a rollback that had begun and not ended, and how the target ended.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ecs_deploy_many.core.events import EventName
from ecs_deploy_many.core.result import Status

__all__ = ["TargetHistory"]


@dataclass
class TargetHistory:
    """One target's part of a run, as far as its events tell."""

    name: str
    old_task_definition: str | None = None
    """The revision the service ran before the run (or the task definition's newest)."""
    old_desired_count: int | None = None
    old_deployment_configuration: dict[str, Any] | None = None
    deployments_before: tuple[str, ...] = ()
    """The service's deployments when the run resolved it: any other one began later."""
    new_task_definition: str | None = None
    """The revision the run registered, reused, or found in place."""
    update_started: bool = False
    """The update step began: UpdateService may have reached ECS, answered or not."""
    deployment_id: str | None = None
    """The deployment the run's UpdateService started, once ECS answered, or the one
    already under way that the run attached to."""
    rollback_pending: str | None = None
    """The revision a rollback began to restore, until the rollback ended either way."""
    rollback_reason: str | None = None
    rolled_back_to: str | None = None
    status: Status | None = None
    """How the target ended; None while the run had not finished it."""
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.status is not None

    @property
    def changed_service(self) -> bool:
        """The run may have changed the service (an update started, answered or not)."""
        return self.update_started or self.deployment_id is not None

    def record(self, event: EventName, step: str, facts: Mapping[str, Any]) -> None:
        """Fold one of the target's events in, in the order they happened."""
        if event is EventName.RESOLVED and self.old_task_definition is None:
            self.old_task_definition = facts.get("old_task_definition")
            self.old_desired_count = facts.get("desired")
            self.old_deployment_configuration = facts.get("deployment_configuration")
            self.deployments_before = tuple(facts.get("deployment_ids") or ())
        elif event is EventName.REGISTERED:
            self.new_task_definition = facts.get("new_task_definition")
        elif event is EventName.UNCHANGED:
            self.new_task_definition = facts.get("old_task_definition")
        elif event is EventName.STEP_STARTED and step == "update":
            self.update_started = True
        elif event is EventName.SERVICE_UPDATED:
            self.deployment_id = facts.get("deployment_id")
            self.new_task_definition = facts.get("new_task_definition", self.new_task_definition)
        elif event is EventName.ATTACHED:
            # What a rollback restores: for a deployment found under way, the revision
            # the service ran before it (None when ECS no longer showed one).
            self.deployment_id = facts.get("deployment_id")
            self.new_task_definition = facts.get("new_task_definition", self.new_task_definition)
            self.old_task_definition = facts.get("old_task_definition")
        elif event is EventName.ROLLBACK_STARTED:
            self.rollback_pending = facts.get("to_task_definition")
            self.rollback_reason = facts.get("reason")
        elif event is EventName.ROLLED_BACK:
            self.rolled_back_to = facts.get("to_task_definition")
            self.rollback_pending = None
        elif event is EventName.TARGET_FINISHED:
            self.status = Status(facts["status"])
            if self.status is not Status.INTERRUPTED:  # a rollback that failed has ended too
                self.rollback_pending = None
            self.error = facts.get("error")
            self.deployment_id = facts.get("deployment_id") or self.deployment_id
            self.new_task_definition = facts.get("new_task_definition") or self.new_task_definition
