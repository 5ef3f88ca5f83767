"""Task-definition targets re-run from an unchanged plan: the registered revision is reused.

A plan converges: a second run of it registers nothing new. Whether a one-off task runs
again is the target's ``run_task.rerun_unchanged`` (default: it does). ``ecs-deploy``
keeps the original tool's behaviour: it registers and runs every time.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ecs_deploy_many.cli import single
from ecs_deploy_many.core.result import Status, TargetResult
from ecs_deploy_many.deploy.engine import RunResult, run_plan
from ecs_deploy_many.deploy.pipeline import RunContext
from ecs_deploy_many.plan import parse_plan
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import REGION, prod_fleet, sim_pool

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]

SPEED = 40.0


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(prod_fleet("api"), speed=SPEED, strict_output=True) as running:
        yield running


def plan(run_task: str | None) -> str:
    target = "{name: migrate, cluster: prod, task_definition: api, image: 'example/api:2'"
    if run_task is not None:
        target += f", run_task: {run_task}"
    return f"version: 1\ndefaults: {{region: {REGION}}}\ntargets:\n  - {target}}}\n"


async def deploy(sim: Simulator, plan_text: str, base_dir: Path | None = None) -> TargetResult:
    plan_ = parse_plan(plan_text, environ={}, base_dir=base_dir)
    async with sim_pool(sim) as pool:
        run: RunResult = await run_plan(plan_, RunContext(pool, sim.clock, lambda event: None))
    [result] = run.results.values()
    return result


def calls(sim: Simulator, operation: str) -> int:
    return sim.stats().calls.get(operation, 0)


def revision(number: int) -> str:
    return f"arn:aws:ecs:{REGION}:123456789012:task-definition/api:{number}"


@pytest.mark.parametrize(
    ("run_task", "runs_again"),
    [
        ("{wait_for_success: true}", True),
        ("{wait_for_success: true, rerun_unchanged: true}", True),
        ("{wait_for_success: true, rerun_unchanged: false}", False),
    ],
)
async def test_an_unchanged_run_task_target_reuses_its_revision(
    sim: Simulator, run_task: str, runs_again: bool
) -> None:
    first = await deploy(sim, plan(run_task))
    assert first.status is Status.SUCCEEDED, first.error
    assert first.new_task_definition == revision(2)
    assert (calls(sim, "RegisterTaskDefinition"), calls(sim, "RunTask")) == (1, 1)

    again = await deploy(sim, plan(run_task))

    assert again.new_task_definition == revision(2)
    assert calls(sim, "RegisterTaskDefinition") == 1
    if runs_again:
        assert again.status is Status.SUCCEEDED, again.error
        assert calls(sim, "RunTask") == 2
    else:
        assert again.status is Status.UNCHANGED
        assert calls(sim, "RunTask") == 1


async def test_an_unchanged_task_definition_target_registers_nothing(sim: Simulator) -> None:
    first = await deploy(sim, plan(None))
    again = await deploy(sim, plan(None))

    assert (first.status, again.status) == (Status.SUCCEEDED, Status.UNCHANGED)
    assert again.new_task_definition == first.new_task_definition == revision(2)
    assert calls(sim, "RegisterTaskDefinition") == 1


async def test_an_unchanged_task_definition_file_registers_nothing(
    sim: Simulator, tmp_path: Path
) -> None:
    definition = {
        "family": "api",
        "containerDefinitions": [{"name": "api", "image": "example/api:3", "memory": 256}],
    }
    (tmp_path / "api.json").write_text(json.dumps(definition))
    text = (
        f"version: 1\ndefaults: {{region: {REGION}}}\ntargets:\n"
        "  - {task_definition_file: api.json}\n"
    )

    first = await deploy(sim, text, tmp_path)
    again = await deploy(sim, text, tmp_path)

    assert (first.status, again.status) == (Status.SUCCEEDED, Status.UNCHANGED)
    assert again.new_task_definition == first.new_task_definition == revision(2)
    assert calls(sim, "RegisterTaskDefinition") == 1


async def test_ecs_deploy_registers_and_runs_every_time(sim: Simulator) -> None:
    args = ["--endpoint-url", sim.endpoint_url, "--log-format", "json"]
    task = ["-c", "prod", "-d", "api", "-i", "example/api:2", "--run-task"]
    for _ in range(2):
        assert await single.run([*args, *task], clock=sim.clock) == 0

    assert (calls(sim, "RegisterTaskDefinition"), calls(sim, "RunTask")) == (2, 2)
