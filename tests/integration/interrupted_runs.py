"""Runs stopped at a chosen moment, their events folded into histories, and a count of
the changes the simulator carried out per service: what resume tests start from."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio

from ecs_deploy_many.core.events import TargetEvent
from ecs_deploy_many.core.history import TargetHistory
from ecs_deploy_many.deploy.engine import FleetRun, RunResult
from ecs_deploy_many.deploy.pipeline import RunContext
from ecs_deploy_many.plan.model import Plan
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import sim_pool

Moment = Callable[[TargetEvent, list[TargetEvent]], bool]
"""Whether a run dies at this event (given the events so far, itself included)."""


class Changes:
    """UpdateService and RegisterTaskDefinition calls the simulator carried out, counted
    per service and per family (refused calls change nothing and are not counted)."""

    def __init__(self, sim: Simulator) -> None:
        self.updates: Counter[str] = Counter()
        self.registrations: Counter[str] = Counter()
        handle = sim.state.handle

        def counting(operation: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
            answer = handle(operation, region, params)
            if operation == "UpdateService":
                self.updates[str(params["service"])] += 1
            elif operation == "RegisterTaskDefinition":
                self.registrations[str(params["family"])] += 1
            return answer

        sim.state.handle = counting  # type: ignore[method-assign]


def fold(events: Iterable[TargetEvent]) -> dict[str, TargetHistory]:
    """Each target's history from a run's events, as a journal reader folds them."""
    histories: dict[str, TargetHistory] = {}
    for event in events:
        name = event.target.name
        history = histories.setdefault(name, TargetHistory(name))
        history.record(event.event, event.step, event.facts)
    return histories


@asynccontextmanager
async def run_context(sim: Simulator, events: list[TargetEvent]) -> AsyncIterator[RunContext]:
    async with sim_pool(sim) as pool:
        yield RunContext(pool, sim.clock, events.append)


async def killed_run(
    sim: Simulator, plan: Plan, dies: Moment, *, journal_after: bool = False
) -> tuple[RunResult, list[TargetEvent]]:
    """Run ``plan`` until ``dies`` holds for an event, then cancel it at once.

    Without ``journal_after`` the events end with that one, as a killed process's
    journal would (SIGKILL); with it, they include what the cancelled run recorded on
    its way out (an interrupted ``target_finished`` per target, as after SIGINT).
    """
    recorded: list[TargetEvent] = []
    dead = anyio.Event()

    class Journal(list[TargetEvent]):
        def append(self, event: TargetEvent) -> None:
            super().append(event)
            if dead.is_set():
                if journal_after:
                    recorded.append(event)
                return
            recorded.append(event)
            if dies(event, self):
                dead.set()
                scope.cancel()

    async with run_context(sim, Journal()) as context:
        run = FleetRun(plan, context)
        with anyio.CancelScope() as scope:
            await run.run()
    assert dead.is_set(), "the run ended before the moment it was to die at"
    return run.result, recorded


async def resumed_run(
    sim: Simulator, plan: Plan, prior: Mapping[str, TargetHistory] | None
) -> tuple[RunResult, list[TargetEvent]]:
    """Run ``plan`` to the end, continuing from ``prior`` (None: a plain run)."""
    events: list[TargetEvent] = []
    async with run_context(sim, events) as context:
        return await FleetRun(plan, context, prior).run(), events
