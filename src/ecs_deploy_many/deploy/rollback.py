"""Rollback: putting a service back on the revision it ran before this run.

Three ways in, one way of doing it (``restore``):

- a service target with ``rollback`` whose deploy failed (the pipeline; when ECS's
  circuit breaker rolled back already, nothing is left to do);
- a service that regressed during its wave's ``bake`` (the engine);
- ``on_failure: rollback_all`` once the failure budget is spent: every service the run
  deployed, newest wave first (``roll_back_all``).

A desired count the run changed goes back too. A rollback that does not finish leaves
its target ``failed`` with a ``RollbackFailed`` error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio

from ecs_deploy_many.aws.gateway import Gateway
from ecs_deploy_many.core.errors import EcsDeployError, RollbackFailed
from ecs_deploy_many.core.events import EventName
from ecs_deploy_many.core.result import Status, TargetResult
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.deploy.steps import RunContext, TargetSteps, primary_deployment
from ecs_deploy_many.deploy.wait import Expectation
from ecs_deploy_many.plan.model import Wave

__all__ = ["restore", "roll_back_all", "roll_back_target"]


async def restore(
    steps: TargetSteps,
    gateway: Gateway,
    previous: str | None,
    reason: str,
    *,
    service: dict[str, Any] | None = None,
) -> None:
    """Update the service back to ``previous`` (and a desired count the run changed)
    and wait for that deployment.

    Given a ``service`` described since the rollback may have begun (a run resumed
    mid-rollback), a PRIMARY deployment already on ``previous`` is waited for instead
    of updating again. Without a ``previous`` (the revision before a deployment the run
    found under way was not known), there is nothing to return to: that is the failure.
    """
    target, result = steps.target, steps.result
    if previous is None:
        raise RollbackFailed(
            f"{reason}; no rollback: the revision the service ran before deployment "
            f"{result.deployment_id} is not known (ECS showed no earlier deployment)",
            step="rollback",
        )
    steps.enter("rollback")
    steps.emit(EventName.ROLLBACK_STARTED, "warning", reason=reason, to_task_definition=previous)
    params: dict[str, Any] = {
        "cluster": target.cluster,
        "service": target.service,
        "taskDefinition": previous,
    }
    if target.desired_count is not None:
        params["desiredCount"] = result.old_desired_count
    try:
        deployment = _restoring(service, previous)
        if deployment is None:
            with steps.answered_in_time():
                deployment = primary_deployment(await gateway.update_service(**params))
        await steps.wait(Expectation(deployment["id"], previous), deployment)
    except EcsDeployError as error:  # ECS refused, timed out, or the wait failed
        raise RollbackFailed(
            f"{reason}; rollback to {previous} failed: {error}", step="rollback"
        ) from error
    result.status = Status.ROLLED_BACK
    steps.emit(EventName.ROLLED_BACK, "warning", to_task_definition=previous)


def _restoring(service: dict[str, Any] | None, previous: str) -> dict[str, Any] | None:
    """The PRIMARY deployment of ``service`` when it runs ``previous`` already."""
    for deployment in (service or {}).get("deployments", []):
        if deployment.get("status") == "PRIMARY" and deployment.get("taskDefinition") == previous:
            return dict(deployment)
    return None


async def roll_back_target(result: TargetResult, context: RunContext, *, reason: str) -> None:
    """Put a service this run deployed back on ``result.old_task_definition`` and wait.

    For a fleet's ``rollback_all`` and a regression during a bake: ``result`` (a succeeded
    service target) becomes ``rolled_back`` with ``reason`` as its error, or ``failed``
    when the rollback does not finish, and a new ``target_finished`` event reports that
    final state. A desired count the run changed goes back too.
    """
    steps = TargetSteps(result.target, context, result)
    previous = result.old_task_definition
    assert result.target.kind == "service", "only services can be rolled back"
    try:
        gateway = await context.accounts.gateway(result.target.scope)
        await restore(steps, gateway, previous, reason)
        result.error = reason
    except EcsDeployError as error:
        steps.fail(error)
    except anyio.get_cancelled_exc_class():
        result.status = Status.INTERRUPTED
        result.error = f"interrupted during rollback to {previous}"
        steps.finish()
        raise
    steps.finish()


Slots = Callable[[Target], AbstractAsyncContextManager[None]]
"""The run's concurrency slots for a target: a rollback takes them like a deploy."""


async def roll_back_all(
    waves: Sequence[Wave],
    results: dict[str, TargetResult],
    context: RunContext,
    *,
    reason: str,
    slots: Slots,
    rolled_back: set[str],
) -> None:
    """Roll back every service the run deployed, newest wave first.

    A wave's rollbacks run side by side within the run's limits, and all of them end
    before the previous wave's begin: a later wave may rely on an earlier one. Within
    a wave, a target's rollback waits for those of the targets that depend on it. Each
    target rolled back (or tried) is added to ``rolled_back``.
    """

    async def roll_back_one(
        result: TargetResult, dependants: list[anyio.Event], done: anyio.Event
    ) -> None:
        try:
            for dependant in dependants:
                await dependant.wait()
            async with slots(result.target):
                rolled_back.add(result.target.name)
                await roll_back_target(result, context, reason=reason)
        finally:
            done.set()

    for wave in reversed(waves):
        deployed = [
            result
            for name in wave.targets
            if (result := results.get(name))
            and result.status is Status.SUCCEEDED
            and result.target.kind == "service"
        ]
        deployed.sort(key=lambda r: r.finished_at or 0.0, reverse=True)
        done = {result.target.name: anyio.Event() for result in deployed}
        async with anyio.create_task_group() as group:
            for result in deployed:
                dependants = [
                    done[r.target.name]
                    for r in deployed
                    if result.target.name in r.target.depends_on
                ]
                group.start_soon(roll_back_one, result, dependants, done[result.target.name])
