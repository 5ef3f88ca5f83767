"""Rollback: putting a service back on the revision it ran before a run.

Four ways in, one way of doing it (``restore``):

- a service target with ``rollback`` whose deploy failed (the pipeline; when ECS's
  circuit breaker rolled back already, nothing is left to do);
- a service that regressed during its wave's ``bake`` (the engine);
- ``on_failure: rollback_all`` once the failure budget is spent: every service the run
  deployed, newest wave first (``roll_back_all``);
- ``ecs-deploy-many rollback RUN``, after the run: every service it changed, as its
  journal recorded them, newest wave first (``roll_back_run``).

A desired count or deployment percentages the run changed go back too. A rollback that
does not finish leaves its target ``failed`` with a ``RollbackFailed`` error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio

from ecs_deploy_many.aws.gateway import Gateway
from ecs_deploy_many.core.errors import DeployError, EcsDeployError, RollbackFailed
from ecs_deploy_many.core.events import EventName
from ecs_deploy_many.core.history import TargetHistory
from ecs_deploy_many.core.result import Status, TargetResult
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.deploy.steps import RunContext, TargetSteps, primary_deployment
from ecs_deploy_many.deploy.wait import Expectation
from ecs_deploy_many.plan.model import Wave

__all__ = ["restore", "roll_back_all", "roll_back_run", "roll_back_target"]


async def restore(
    steps: TargetSteps,
    gateway: Gateway,
    previous: str | None,
    reason: str,
    *,
    service: dict[str, Any] | None = None,
) -> None:
    """Update the service back to ``previous`` (and a desired count or deployment
    percentages the run changed: ``steps.result``'s old ones) and wait for that deployment.

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
    changed_percentages = target.min_healthy_percent is not None or target.max_percent is not None
    if changed_percentages and result.old_deployment_configuration is not None:
        params["deploymentConfiguration"] = result.old_deployment_configuration
    try:
        deployment = _restoring(service, previous)
        if deployment is None:
            with steps.answered_in_time():
                service = await gateway.update_service(**params)
            deployment = primary_deployment(service)
        # Judged as the deploy was: a blue/green service goes back through its strategy,
        # and its service deployment says when it is back.
        await steps.wait(Expectation(deployment["id"], previous), deployment, service)
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
    with steps.finishing():
        gateway = await context.accounts.gateway(result.target.scope)
        await restore(steps, gateway, previous, reason)
        result.error = reason


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
    """Roll back every service the run deployed, newest wave first (the newest
    deployed first within a wave). Each target rolled back (or tried) is added to
    ``rolled_back``."""

    async def roll_back_one(target: Target) -> None:
        rolled_back.add(target.name)
        await roll_back_target(results[target.name], context, reason=reason)

    def deployed(wave: Wave) -> list[Target]:
        succeeded = [
            result
            for name in wave.targets
            if (result := results.get(name))
            and result.status is Status.SUCCEEDED
            and result.target.kind == "service"
        ]
        succeeded.sort(key=lambda r: r.finished_at or 0.0, reverse=True)
        return [result.target for result in succeeded]

    await _newest_wave_first(waves, deployed, roll_back_one, slots)


async def roll_back_run(
    waves: Sequence[Wave],
    targets: Sequence[Target],
    histories: Mapping[str, TargetHistory],
    context: RunContext,
    *,
    reason: str,
    force: bool,
    slots: Slots,
    results: dict[str, TargetResult],
) -> None:
    """Put every service an earlier run changed back where it was before that run; each
    one's record goes into ``results`` as it starts, so a cancelled one keeps its state.

    For ``ecs-deploy-many rollback RUN``: newest wave first, like ``roll_back_all``. Each
    service goes back to the revision, desired count and deployment percentages its
    history recorded before the run, and its deployment is waited for. A service already
    there is ``unchanged``; one that runs neither the run's revision nor its previous one
    moved on since (someone deployed after the run) and is left alone, ``skipped``,
    unless ``force``. Putting a service back is this run's success: ``succeeded``.
    """
    changed = {
        name
        for name, history in histories.items()
        if history.changed_service and history.status is not Status.ROLLED_BACK
    }

    async def put_back(target: Target) -> None:
        result = results[target.name] = TargetResult(target)
        steps = TargetSteps(target, context, result)
        await _put_back(steps, histories[target.name], reason=reason, force=force)

    def chosen(wave: Wave) -> list[Target]:
        return [t for t in targets if t.name in wave.targets and t.name in changed]

    await _newest_wave_first(waves, chosen, put_back, slots)


async def _put_back(
    steps: TargetSteps, history: TargetHistory, *, reason: str, force: bool
) -> None:
    target, context, result = steps.target, steps.context, steps.result
    previous = history.old_task_definition
    result.started_at = context.clock.now()
    steps.emit(EventName.TARGET_STARTED)
    with steps.finishing():
        assert target.cluster, "only services are put back"
        assert target.service, "only services are put back"
        with steps.answered_in_time():
            watcher = await context.accounts.watcher(target.scope, target.cluster)
            service = await watcher.describe(target.service)
        if service is None:
            raise DeployError(f"service {target.service} no longer exists", step="resolve")
        current = service["taskDefinition"]
        # This run's "before" is what the service runs now: rolling it back undoes this.
        result.old_task_definition = current
        steps.emit(
            EventName.RESOLVED,
            old_task_definition=current,
            desired=service.get("desiredCount"),
            deployment_configuration=service.get("deploymentConfiguration"),
            deployment_ids=[d["id"] for d in service.get("deployments", [])],
        )
        if current == previous:
            result.status, result.new_task_definition = Status.UNCHANGED, current
            steps.emit(EventName.UNCHANGED, old_task_definition=current)
        elif current != history.new_task_definition and not force:
            result.status = Status.SKIPPED
            result.error = (
                f"moved on since the run: it runs {current}, the run left it on "
                f"{history.new_task_definition}; --force puts it back anyway"
            )
        else:
            result.new_task_definition = previous
            result.old_desired_count = history.old_desired_count
            result.old_deployment_configuration = history.old_deployment_configuration
            gateway = await context.accounts.gateway(target.scope)
            await restore(steps, gateway, previous, reason, service=service)
            result.status, result.error = Status.SUCCEEDED, reason


async def _newest_wave_first(
    waves: Sequence[Wave],
    chosen: Callable[[Wave], list[Target]],
    act: Callable[[Target], Awaitable[None]],
    slots: Slots,
) -> None:
    """``act`` on each wave's ``chosen`` targets, newest wave first.

    A wave's targets go side by side within the run's limits, and all of them end
    before the previous wave's begin: a later wave may rely on an earlier one. Within
    a wave, a target waits for the targets that depend on it.
    """

    async def one(target: Target, dependants: list[anyio.Event], done: anyio.Event) -> None:
        try:
            for dependant in dependants:
                await dependant.wait()
            async with slots(target):
                await act(target)
        finally:
            done.set()

    for wave in reversed(waves):
        targets = chosen(wave)
        done = {target.name: anyio.Event() for target in targets}
        async with anyio.create_task_group() as group:
            for target in targets:
                dependants = [done[t.name] for t in targets if target.name in t.depends_on]
                group.start_soon(one, target, dependants, done[target.name])
