"""The approval gate: a wave waits for ``approve``, recorded beside the run's journal.

The engine runs in-process against the simulator on the virtual clock; approvals are
the journal directory's own records, written as ``ecs-deploy-many approve`` writes them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import pytest

from ecs_deploy_many.core.events import EventName, TargetEvent
from ecs_deploy_many.deploy.engine import FleetRun, RunResult, RunVerdict
from ecs_deploy_many.deploy.gates import APPROVAL_POLL_INTERVAL, WaveGates
from ecs_deploy_many.deploy.pipeline import RunContext
from ecs_deploy_many.journal import DirectoryLocation, new_run_id
from ecs_deploy_many.journal.approvals import JournalApprovals, WaveApproval, record_approval
from ecs_deploy_many.plan import parse_plan
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import REGION, prod_fleet, sim_pool

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]

FLEET = prod_fleet("a", "b", "c")
TIMEOUT = 3600
RUN_ID = new_run_id()

PLAN = f"""\
version: 1
defaults: {{cluster: prod, region: {REGION}, timeout: 300, rollback: true}}
on_failure: rollback_all
waves:
  - {{name: canary, targets: [prod/a]}}
  - {{name: release, targets: ['*'], approval: {{timeout: {TIMEOUT}}}}}
targets:
  - {{service: a, image: "example/a:2"}}
  - {{service: b, image: "example/b:2"}}
  - {{service: c, image: "example/c:2"}}
"""

Approver = Callable[[Simulator, JournalApprovals], Awaitable[None]]


async def approved_run(
    tmp_path: Path, approver: Approver | None = None, *, text: str = PLAN
) -> tuple[RunResult, list[TargetEvent]]:
    approvals = JournalApprovals(DirectoryLocation(tmp_path / "runs"), RUN_ID)
    events: list[TargetEvent] = []
    async with AsyncExitStack() as stack:
        sim = await stack.enter_async_context(Simulator(FLEET, speed=40, listen=False))
        pool = await stack.enter_async_context(sim_pool(sim))
        context = RunContext(pool, sim.clock, events.append)
        run = FleetRun(parse_plan(text, environ={}), context, gates=WaveGates(approvals))
        async with anyio.create_task_group() as group:
            if approver is not None:
                group.start_soon(approver, sim, approvals)
            result = await run.run()
            group.cancel_scope.cancel()
    return result, events


def statuses(result: RunResult) -> dict[str, str]:
    return {name: str(r.status) for name, r in result.results.items()}


async def test_an_approval_given_mid_wait_starts_the_wave(tmp_path: Path) -> None:
    approved_at: list[float] = []

    async def approve_later(sim: Simulator, approvals: JournalApprovals) -> None:
        await sim.clock.sleep(600)
        approval = WaveApproval("release", "alice@laptop", "2026-12-02T05:00:00Z", "go")
        await record_approval(approvals.location, approvals.run_id, approval)
        approved_at.append(sim.clock.now())

    result, events = await approved_run(tmp_path, approve_later)

    assert result.verdict is RunVerdict.SUCCEEDED
    assert statuses(result) == dict.fromkeys(("prod/a", "prod/b", "prod/c"), "succeeded")
    waiting = [e for e in events if e.event is EventName.APPROVAL_WAITING]
    assert {e.target.name for e in waiting} == {"prod/b", "prod/c"}
    assert waiting[0].facts["approve_with"] == f"ecs-deploy-many approve {RUN_ID} release"
    [given] = approved_at
    approved = [e for e in events if e.event is EventName.APPROVED]
    assert {e.target.name for e in approved} == {"prod/b", "prod/c"}
    assert approved[0].facts["by"] == "alice@laptop"
    assert approved[0].facts["note"] == "go"
    # the wave starts at the first read after the approval, not before it
    for name in ("prod/b", "prod/c"):
        started = result.results[name].started_at
        assert started is not None
        assert given <= started <= given + APPROVAL_POLL_INTERVAL + 1
    assert result.results["prod/a"].finished_at < given  # type: ignore[operator]


async def test_no_approval_in_time_skips_the_wave_and_fails_the_run(tmp_path: Path) -> None:
    """Nothing failed, so ``rollback_all`` leaves the canary deployed."""
    result, events = await approved_run(tmp_path)

    assert result.verdict is RunVerdict.FAILED
    assert statuses(result) == {"prod/a": "succeeded", "prod/b": "skipped", "prod/c": "skipped"}
    reason = f"wave release was not approved within {TIMEOUT} s"
    assert result.halted == reason
    assert result.results["prod/b"].error == reason
    assert not result.rolled_back_by_policy
    assert not [e for e in events if e.event is EventName.ROLLBACK_STARTED]
    finished = result.results["prod/a"].finished_at
    assert finished is not None
    assert result.finished_at is not None
    assert result.finished_at >= finished + TIMEOUT


async def test_the_approval_of_another_wave_does_not_count(tmp_path: Path) -> None:
    async def approve_the_canary(sim: Simulator, approvals: JournalApprovals) -> None:
        approval = WaveApproval("canary", "bob@ci", "2026-12-02T05:00:00Z")
        await record_approval(approvals.location, approvals.run_id, approval)

    result, _ = await approved_run(tmp_path, approve_the_canary)

    assert statuses(result)["prod/b"] == "skipped"


async def test_a_run_without_a_journal_cannot_be_approved(tmp_path: Path) -> None:
    async with Simulator(FLEET, speed=40, listen=False) as sim, sim_pool(sim) as pool:
        plan = parse_plan(PLAN, environ={})
        result = await FleetRun(plan, RunContext(pool, sim.clock, lambda _: None)).run()
    assert statuses(result) == {"prod/a": "succeeded", "prod/b": "skipped", "prod/c": "skipped"}
    assert result.halted == (
        "wave release needs an approval, and this run has no journal to record one"
    )
