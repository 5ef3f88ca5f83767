"""Deployment alarms: a fleet rule keeps an alarm in ALARM while a matching image runs, and a
deployment watching that alarm fails (and rolls back when configured to)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import CLUSTER, POLL, SPEED, completed, ecs_client, messages
from tests.integration.helpers import primary as primary_of
from tests.integration.test_sim_strategies import FLEET, follow, start

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

pytestmark = pytest.mark.anyio

ALARMED = "ECS deployment alarms: app-5xx in ALARM."


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(FLEET, speed=SPEED, strict_output=True, listen=False) as running:
        yield running


@pytest.fixture
async def ecs(sim: Simulator) -> AsyncIterator[ECSClient]:
    async with ecs_client(sim, attempts=1) as client:
        yield client


async def until_stage(ecs: ECSClient, arn: str, stage: str) -> dict[str, Any]:
    with anyio.fail_after(60):
        while True:
            (record,) = (await ecs.describe_service_deployments(serviceDeploymentArns=[arn]))[
                "serviceDeployments"
            ]
            if record["lifecycleStage"] == stage:
                return dict(record)
            await anyio.sleep(POLL)


async def settle(ecs: ECSClient, service: str) -> None:
    with anyio.fail_after(60):
        while True:
            (current,) = (await ecs.describe_services(cluster=CLUSTER, services=[service]))[
                "services"
            ]
            if completed(current):
                return
            await anyio.sleep(POLL)


async def test_an_alarm_during_the_bake_rolls_back_naming_it(
    sim: Simulator, ecs: ECSClient
) -> None:
    blue_tasks = set((await ecs.list_tasks(cluster=CLUSTER, serviceName="alarmed"))["taskArns"])
    arn, ours = await start(ecs, "alarmed", "example/app:2")
    baking = await until_stage(ecs, arn, "BAKE_TIME")
    assert baking["alarms"] == {
        "status": "MONITORING",
        "alarmNames": ["app-5xx"],
        "triggeredAlarmNames": [],
    }
    bake_started = sim.clock.now()

    # Another service starts running an image that trips the alarm, mid-bake.
    await start(ecs, "rolling", "example/app:bad-metrics")
    seen = await follow(sim, ecs, "alarmed", arn)
    when, done, final = seen[-1]
    assert when - bake_started < 5 * 60  # long before the 5-minute bake would have ended
    assert done["status"] == "ROLLBACK_SUCCESSFUL"
    assert done["statusReason"] == ALARMED
    assert done["rollback"]["reason"] == ALARMED
    assert done["lifecycleStage"] == "BAKE_TIME"
    assert done["alarms"] == {
        "status": "TRIGGERED",
        "alarmNames": ["app-5xx"],
        "triggeredAlarmNames": ["app-5xx"],
    }
    assert done["deploymentCircuitBreaker"]["status"] == "MONITORING_COMPLETE"
    (back,) = final["deployments"]
    assert back["taskDefinition"].endswith(":task-definition/app:1")
    events = messages(final)
    assert f"(service alarmed) (deployment {ours['id']}) deployment failed: alarm(s) detected." in (
        events
    )
    assert any(
        m.startswith("(service alarmed) rolling back to deployment ecs-svc/") for m in events
    )
    rolling_back = [c for _, r, c in seen if r["status"] == "ROLLBACK_IN_PROGRESS"]
    new, failed = rolling_back[0]["deployments"]
    assert new["rolloutStateReason"].startswith(
        "ECS deployment alarms: rolling back to deploymentId ecs-svc/"
    )
    assert (failed["id"], failed["rolloutState"], failed["rolloutStateReason"]) == (
        ours["id"],
        "FAILED",
        ALARMED,
    )
    tasks = set((await ecs.list_tasks(cluster=CLUSTER, serviceName="alarmed"))["taskArns"])
    assert tasks == blue_tasks


async def test_an_alarm_without_rollback_fails_a_rolling_deployment_that_stays(
    sim: Simulator, ecs: ECSClient
) -> None:
    await ecs.update_service(
        cluster=CLUSTER,
        service="rolling",
        deploymentConfiguration={
            "alarms": {"alarmNames": ["app-5xx", "other"], "enable": True, "rollback": False}
        },
    )
    arn, ours = await start(ecs, "rolling", "example/app:bad-metrics")
    seen = await follow(sim, ecs, "rolling", arn)
    _, done, current = seen[-1]
    assert done["status"] == "STOPPED"
    assert done["statusReason"] == ALARMED
    assert done["alarms"]["triggeredAlarmNames"] == ["app-5xx"]
    assert "rollback" not in done
    new = primary_of(current)
    assert (new["id"], new["rolloutState"], new["rolloutStateReason"]) == (
        ours["id"],
        "FAILED",
        ALARMED,
    )
    await sim.clock.sleep(120)
    (later,) = (await ecs.describe_services(cluster=CLUSTER, services=["rolling"]))["services"]
    assert primary_of(later)["rolloutState"] == "FAILED"
    assert len(later["deployments"]) == 2


async def test_the_alarm_is_ok_again_once_no_matching_task_runs(ecs: ECSClient) -> None:
    await start(ecs, "rolling", "example/app:bad-metrics")
    await settle(ecs, "rolling")
    await start(ecs, "rolling", "example/app:3")
    await settle(ecs, "rolling")
    arn, _ = await start(ecs, "alarmed", "example/app:2")
    (record,) = (await ecs.describe_service_deployments(serviceDeploymentArns=[arn]))[
        "serviceDeployments"
    ]
    assert record["status"] == "IN_PROGRESS"
    await settle(ecs, "alarmed")
    (done,) = (await ecs.describe_service_deployments(serviceDeploymentArns=[arn]))[
        "serviceDeployments"
    ]
    assert done["status"] == "SUCCESSFUL"
    assert done["alarms"]["status"] == "MONITORING_COMPLETE"
