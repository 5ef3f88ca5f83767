"""A one-off task of several containers fails: the message names the one that stopped it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ecs_deploy_many.core.result import Status
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.deploy.pipeline import RunContext, deploy_target
from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import FAST_TIMINGS, REGION, sim_pool

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]

FLEET = Fleet.model_validate(
    {
        "region": REGION,
        "timings": {**FAST_TIMINGS, "run_duration": 20},
        "task_definitions": {
            "job": {
                "containerDefinitions": [
                    {"name": "main", "image": "example/main:1", "memory": 128},
                    {"name": "helper", "image": "example/helper:1", "memory": 64},
                ]
            }
        },
        "clusters": [{"name": "prod"}],
        "behaviour": {"images": [{"match": "*:exit4*", "outcome": "exit:4"}]},
    }
)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(FLEET, speed=40, strict_output=True, listen=False) as running:
        yield running


async def test_the_helper_that_exited_is_blamed_not_main_that_ecs_stopped(
    sim: Simulator,
) -> None:
    target = Target(
        "job",
        cluster="prod",
        task_definition="job",
        containers={"helper": "example/helper:exit4"},
        run_task=True,
        wait_for_success=True,
        timeout=300,
    )
    async with sim_pool(sim) as pool:
        result = await deploy_target(target, RunContext(pool, sim.clock, lambda event: None))
    assert result.status is Status.FAILED
    assert result.failed_step == "run_task"
    assert result.error == (
        "essential container helper exited with code 4 (Essential container in task exited;"
        " exit codes: main 143, helper 4)"
    )
