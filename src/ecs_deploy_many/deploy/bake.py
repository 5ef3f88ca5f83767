"""Baking: watching a wave's freshly deployed services before the next wave starts.

A deployment can complete and still go wrong minutes later: tasks that pass the health
grace and then crash, an ECS circuit breaker or another deploy moving the service away.
During a wave's ``bake`` each service it deployed is watched; the first regression fails
that target (and, with ``rollback``, returns it to its previous revision).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ecs_deploy_many.aws.watch import ServiceWatcher
from ecs_deploy_many.core.errors import AwsError
from ecs_deploy_many.core.result import TargetResult

__all__ = ["BakeProblem", "bake_problem", "watch_during_bake"]

# A task being replaced shows briefly as running < desired; twice in a row is a regression.
SHORT_OBSERVATIONS = 2


@dataclass(frozen=True)
class BakeProblem:
    reason: str
    transient: bool = False
    """It may be a task being replaced: it counts only when it persists."""


def bake_problem(service: dict[str, Any] | None, task_definition: str) -> BakeProblem | None:
    """What is wrong with ``service`` now, for a target that deployed ``task_definition``."""
    if service is None:
        return BakeProblem("the service no longer exists")
    primary = next(
        (d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), None
    )
    if primary is None:
        return BakeProblem("the service has no PRIMARY deployment")
    if primary.get("taskDefinition") != task_definition:
        why = primary.get("rolloutStateReason") or "another deployment replaced it"
        return BakeProblem(f"the service moved to {primary.get('taskDefinition')} ({why})")
    if primary.get("rolloutState") == "FAILED":
        return BakeProblem(primary.get("rolloutStateReason") or "ECS marked it FAILED")
    running, desired = primary.get("runningCount", 0), primary.get("desiredCount", 0)
    if running < desired:
        return BakeProblem(f"{running}/{desired} tasks running", transient=True)
    return None


async def watch_during_bake(watcher: ServiceWatcher, result: TargetResult) -> str | None:
    """Watch ``result``'s service until cancelled; return the first lasting problem.

    A service ECS refuses to describe (access denied, cluster gone) cannot be vouched
    for, so that is a problem too.

    Besides what ``bake_problem`` sees, a task started while the desired count stays
    the same means one was replaced: a crash loop shows up even between two polls.
    """
    assert result.target.service
    assert result.new_task_definition
    in_a_row = 0
    seen: set[str] | None = None  # event ids as of the first look
    desired: int | None = None
    async with watcher.subscribe(result.target.service) as updates:
        while True:
            try:
                service = await updates.next()
            except AwsError as error:  # transient errors are retried below; this one is not
                return f"the service cannot be read: {error}"
            problem = bake_problem(service, result.new_task_definition)
            in_a_row = in_a_row + 1 if problem else 0
            if problem and (not problem.transient or in_a_row >= SHORT_OBSERVATIONS):
                return problem.reason
            assert service is not None  # bake_problem reports a missing service
            events = service.get("events", [])
            if seen is not None:
                replaced = [
                    e["message"]
                    for e in events
                    if e["id"] not in seen and " has started " in e.get("message", "")
                ]
                if replaced and service.get("desiredCount") == desired:
                    return f"tasks were replaced: {replaced[0]}"
            seen = {e["id"] for e in events}
            desired = service.get("desiredCount")
