"""Where each target picks up when a run continues an earlier one.

One decision per target, from what its events say it had done (``core.history``):

- ``KEEP``: it finished (succeeded, unchanged, failed, rolled back, or with an unknown
  verdict); its result stands and it is not deployed again.
- ``ROLLBACK``: a rollback began and did not end; it is finished, idempotently.
- ``ATTACH``: ECS answered the update with a deployment (or the run attached to one):
  that deployment is judged again, never a second UpdateService.
- ``RECONCILE``: the update began but no answer was recorded: a deployment of the
  run's revision that began after the run resolved the service is the run's own and is
  judged; otherwise the service is updated.
- ``REUSE``: the run registered a revision and had not used it: it is used, not
  registered again, as long as it still holds the rendered definition.
- ``FRESH``: nothing that changed AWS happened; the target deploys as in any run.

Every target that goes on rolls back (when it must) to the revision and desired count
the service had before the earlier run, not to what it runs now.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ecs_deploy_many.core.history import TargetHistory
from ecs_deploy_many.core.result import Status, TargetResult
from ecs_deploy_many.core.target import Target

__all__ = ["Resumption", "Start", "kept_result", "resumption"]

_FINAL = (Status.SUCCEEDED, Status.UNCHANGED, Status.FAILED, Status.ROLLED_BACK, Status.UNKNOWN)
"""Outcomes a deploy reached; ``skipped`` and ``interrupted`` targets never got there."""


class Start(Enum):
    KEEP = "keep"
    ROLLBACK = "rollback"
    ATTACH = "attach"
    RECONCILE = "reconcile"
    REUSE = "reuse"
    FRESH = "fresh"


@dataclass(frozen=True)
class Resumption:
    """Where one target starts, and its history."""

    start: Start
    history: TargetHistory

    @property
    def in_flight(self) -> bool:
        """The earlier run may have changed the service: the target is seen through even
        when the run halted, as a halt lets targets under way finish."""
        return self.start in (Start.ROLLBACK, Start.ATTACH, Start.RECONCILE)


def resumption(target: Target, history: TargetHistory | None) -> Resumption:
    """Where ``target`` starts, given its part of the earlier run (None: it had none)."""
    if history is None:
        return Resumption(Start.FRESH, TargetHistory(target.name))
    if target.kind == "service" and history.rollback_pending:
        return Resumption(Start.ROLLBACK, history)
    if history.status in _FINAL:
        return Resumption(Start.KEEP, history)
    if target.kind != "service":
        # A task-definition target reuses its revision by content anyway (the family's
        # newest holding the rendered definition) and has no deployment to follow.
        return Resumption(Start.FRESH, history)
    if history.deployment_id:
        return Resumption(Start.ATTACH, history)
    if history.update_started:
        return Resumption(Start.RECONCILE, history)
    if history.new_task_definition:
        return Resumption(Start.REUSE, history)
    return Resumption(Start.FRESH, history)


def kept_result(target: Target, history: TargetHistory) -> TargetResult:
    """The result of a target the earlier run finished, as its history tells it."""
    assert history.status is not None, "only a finished target is kept"
    return TargetResult(
        target,
        history.status,
        old_task_definition=history.old_task_definition,
        old_desired_count=history.old_desired_count,
        old_deployment_configuration=history.old_deployment_configuration,
        new_task_definition=history.new_task_definition,
        deployment_id=history.deployment_id,
        error=history.error,
    )
