"""A simulator loaded from the demo plan holds every service, steady on the previous image."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ecs_deploy_many.cli.rehearsal import fleet_for_plan
from ecs_deploy_many.core.images import same_repository
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.plan import load_plan
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import SPEED, ecs_client

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

pytestmark = pytest.mark.anyio

DEMO = Path(__file__).resolve().parents[2] / "deploy-plans" / "demo.yaml"


async def test_demo_plan_services_run_the_previous_image() -> None:
    plan = load_plan(DEMO, environ={"RELEASE": "2024.06.1"})
    regions = sorted({str(target.scope.region) for target in plan.targets})
    async with Simulator(
        fleet_for_plan(plan), speed=SPEED, strict_output=True, listen=False
    ) as sim:
        for region in regions:
            async with ecs_client(sim, region) as ecs:
                for target in plan.targets:
                    if target.scope.region == region:
                        await check_runs_previous_image(ecs, target)


async def check_runs_previous_image(ecs: ECSClient, target: Target) -> None:
    assert target.cluster
    assert target.service
    assert target.image
    described = await ecs.describe_services(cluster=target.cluster, services=[target.service])
    assert not described["failures"], target.name
    [service] = described["services"]
    assert service["status"] == "ACTIVE"
    assert service["runningCount"] == service["desiredCount"] == 2
    [deployment] = service["deployments"]
    assert deployment["rolloutState"] == "COMPLETED"
    described_definition = await ecs.describe_task_definition(
        taskDefinition=service["taskDefinition"]
    )
    [container] = described_definition["taskDefinition"]["containerDefinitions"]
    assert container["image"] != target.image
    assert same_repository(container["image"], target.image), target.name
