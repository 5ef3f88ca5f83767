"""UpdateService beyond a new image: scaling to zero, forced redeploys, the deployment cap."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError

from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import (
    CLUSTER,
    completed,
    deploy,
    ecs_client,
    fleet_spec,
    primary,
    register,
    watch_service,
)

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

pytestmark = pytest.mark.anyio


async def service_task_arns(ecs: ECSClient, service: str) -> set[str]:
    return set((await ecs.list_tasks(cluster=CLUSTER, serviceName=service))["taskArns"])


async def test_scale_to_zero_and_back(fleet_ecs: ECSClient) -> None:
    updated = await fleet_ecs.update_service(cluster=CLUSTER, service="api", desiredCount=0)
    assert len(updated["service"]["deployments"]) == 1  # no new deployment for a scale
    idle = (
        await watch_service(
            fleet_ecs, CLUSTER, "api", lambda s: s["runningCount"] + s["pendingCount"] == 0
        )
    )[-1]
    assert completed(idle)
    assert (idle["desiredCount"], primary(idle)["desiredCount"]) == (0, 0)
    assert await service_task_arns(fleet_ecs, "api") == set()

    await fleet_ecs.update_service(cluster=CLUSTER, service="api", desiredCount=2)
    back = (await watch_service(fleet_ecs, CLUSTER, "api", lambda s: s["runningCount"] == 2))[-1]
    assert primary(back)["id"] == primary(idle)["id"]


async def test_new_revision_at_desired_zero_completes_without_tasks(fleet_ecs: ECSClient) -> None:
    arn = await register(fleet_ecs, "app:2")
    updated = await fleet_ecs.update_service(
        cluster=CLUSTER, service="api", taskDefinition=arn, desiredCount=0
    )
    ours = primary(updated["service"])["id"]
    final = (await watch_service(fleet_ecs, CLUSTER, "api", completed))[-1]
    assert primary(final)["id"] == ours
    assert (final["runningCount"], final["taskDefinition"]) == (0, arn)


async def test_force_new_deployment_replaces_every_task(fleet_ecs: ECSClient) -> None:
    before = await service_task_arns(fleet_ecs, "api")
    (steady,) = (await fleet_ecs.describe_services(cluster=CLUSTER, services=["api"]))["services"]
    updated = await fleet_ecs.update_service(
        cluster=CLUSTER, service="api", forceNewDeployment=True
    )
    new = primary(updated["service"])
    assert new["id"] != primary(steady)["id"]
    assert new["taskDefinition"] == steady["taskDefinition"]

    final = (await watch_service(fleet_ecs, CLUSTER, "api", completed))[-1]
    assert primary(final)["id"] == new["id"]
    after = await service_task_arns(fleet_ecs, "api")
    assert len(after) == 2
    assert not before & after


async def test_at_most_five_deployments() -> None:
    # Speed 1: the in-flight deployments cannot drain while the test piles them up.
    async with (
        Simulator(Fleet.model_validate(fleet_spec())) as sim,
        ecs_client(sim.endpoint_url, attempts=1) as ecs,
    ):
        for n in range(2, 6):
            updated = await deploy(ecs, "api", f"app:{n}")
        assert len(updated["deployments"]) == 5
        with pytest.raises(ClientError) as refused:
            await deploy(ecs, "api", "app:6")
        error = refused.value.response["Error"]
        # ECS does not document the exception type; the simulator answers a client error.
        assert error["Code"] == "InvalidParameterException"
        assert error["Message"] == "5 active deployments exist, unable to create new deployment."
        # Changing only the desired count starts no deployment, so it is still allowed.
        await ecs.update_service(cluster=CLUSTER, service="api", desiredCount=3)
