"""BLUE_GREEN, LINEAR and CANARY deployments, watched through the service-deployments API
and DescribeServices on the example fleet ``deploy-plans/sim/strategies-fleet.yaml``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from botocore.exceptions import ClientError

from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import CLUSTER, POLL, SPEED, ecs_client, messages, primary

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

pytestmark = pytest.mark.anyio

FLEET = Path(__file__).resolve().parents[2] / "deploy-plans" / "sim" / "strategies-fleet.yaml"
FINISHED = {"SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED"}
STAGES = [
    "PRE_SCALE_UP",
    "SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
    "BAKE_TIME",
    "CLEAN_UP",
]
BREAKER = "ECS deployment circuit breaker: tasks failed to start."


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(FLEET, speed=SPEED, strict_output=True, listen=False) as running:
        yield running


@pytest.fixture
async def ecs(sim: Simulator) -> AsyncIterator[ECSClient]:
    async with ecs_client(sim, attempts=1) as client:
        yield client


async def start(ecs: ECSClient, service: str, image: str) -> tuple[str, dict[str, Any]]:
    """Deploy a revision running ``image``: our service deployment's ARN and deployment."""
    registered = await ecs.register_task_definition(
        family="app", containerDefinitions=[{"name": "app", "image": image, "memory": 128}]
    )
    arn = registered["taskDefinition"]["taskDefinitionArn"]
    updated = await ecs.update_service(cluster=CLUSTER, service=service, taskDefinition=arn)
    listed = await ecs.list_service_deployments(
        cluster=CLUSTER, service=service, status=["IN_PROGRESS"]
    )
    (brief,) = listed["serviceDeployments"]
    return brief["serviceDeploymentArn"], primary(dict(updated["service"]))


async def follow(
    sim: Simulator, ecs: ECSClient, service: str, arn: str
) -> list[tuple[float, dict[str, Any], dict[str, Any]]]:
    """(simulated time, service deployment, service) at every poll until it finishes."""
    seen = []
    with anyio.fail_after(60):
        while True:
            described = await ecs.describe_service_deployments(serviceDeploymentArns=[arn])
            (record,) = described["serviceDeployments"]
            (current,) = (await ecs.describe_services(cluster=CLUSTER, services=[service]))[
                "services"
            ]
            seen.append((sim.clock.now(), dict(record), dict(current)))
            if record["status"] in FINISHED:
                return seen
            await anyio.sleep(POLL)


def stages(seen: list[tuple[float, dict[str, Any], dict[str, Any]]]) -> list[str]:
    order: list[str] = []
    for _, record, _ in seen:
        if not order or order[-1] != record["lifecycleStage"]:
            order.append(record["lifecycleStage"])
    return order


def lasted(seen: list[tuple[float, dict[str, Any], dict[str, Any]]], stage: str) -> float:
    """Simulated seconds from the first poll in ``stage`` to the first poll after it."""
    times = [when for when, record, _ in seen if record["lifecycleStage"] == stage]
    after = [when for when, record, _ in seen if when > times[-1]]
    return after[0] - times[0]


def production_weights(seen: list[tuple[float, dict[str, Any], dict[str, Any]]]) -> list[float]:
    weights: list[float] = []
    for _, record, _ in seen:
        weight = record["targetServiceRevision"]["requestedProductionTrafficWeight"]
        if not weights or weights[-1] != weight:
            weights.append(weight)
    return weights


@pytest.mark.parametrize(
    ("service", "weights"),
    [
        ("bluegreen", [0.0, 100.0]),
        ("linear", [0.0, 25.0, 50.0, 75.0, 100.0]),
        ("canary", [0.0, 10.0, 100.0]),
    ],
)
async def test_each_strategy_walks_its_stages_with_blue_running_until_clean_up(
    sim: Simulator, ecs: ECSClient, service: str, weights: list[float]
) -> None:
    blue_tasks = set((await ecs.list_tasks(cluster=CLUSTER, serviceName=service))["taskArns"])
    arn, ours = await start(ecs, service, "example/app:2")
    seen = await follow(sim, ecs, service, arn)

    assert stages(seen) == STAGES
    assert production_weights(seen) == weights
    for _, record, current in seen:
        if record["lifecycleStage"] == "CLEAN_UP":
            break
        green, blue = current["deployments"]
        assert (green["id"], green["status"], green["rolloutState"]) == (
            ours["id"],
            "PRIMARY",
            "IN_PROGRESS",
        )
        assert (blue["status"], blue["rolloutState"], blue["runningCount"]) == (
            "ACTIVE",
            "COMPLETED",
            2,
        )
        source = record["sourceServiceRevisions"][0]
        target = record["targetServiceRevision"]
        production = target["requestedProductionTrafficWeight"]
        assert source["requestedProductionTrafficWeight"] == 100.0 - production
    # Green reached its whole count beside blue before any traffic moved.
    assert any(current["runningCount"] == 4 for _, _, current in seen)
    assert all(
        record["targetServiceRevision"]["requestedTestTrafficWeight"] == 100.0
        for _, record, _ in seen
        if STAGES.index(record["lifecycleStage"]) >= STAGES.index("POST_TEST_TRAFFIC_SHIFT")
    )
    assert 60 <= lasted(seen, "BAKE_TIME") <= 66  # bake_time_in_minutes: 1; a poll is 2 s
    if service == "linear":  # three 1-minute step bakes: at 25, 50 and 75 percent
        assert 180 <= lasted(seen, "PRODUCTION_TRAFFIC_SHIFT") <= 186
    if service == "canary":  # 2 minutes at 10 percent
        assert 120 <= lasted(seen, "PRODUCTION_TRAFFIC_SHIFT") <= 126

    _, done, final = seen[-1]
    assert done["status"] == "SUCCESSFUL"
    (only,) = final["deployments"]
    assert (only["id"], only["rolloutState"]) == (ours["id"], "COMPLETED")
    assert final["runningCount"] == 2
    assert messages(final)[:2] == [
        f"(service {service}) has reached a steady state.",
        f"(service {service}) (deployment {ours['id']}) deployment completed.",
    ]
    now_tasks = set((await ecs.list_tasks(cluster=CLUSTER, serviceName=service))["taskArns"])
    assert not now_tasks & blue_tasks


@pytest.mark.parametrize("service", ["bluegreen", "linear", "canary"])
async def test_green_tasks_that_fail_to_start_roll_back_to_blue(
    sim: Simulator, ecs: ECSClient, service: str
) -> None:
    blue_tasks = set((await ecs.list_tasks(cluster=CLUSTER, serviceName=service))["taskArns"])
    arn, ours = await start(ecs, service, "example/app:broken-2")
    seen = await follow(sim, ecs, service, arn)

    assert stages(seen)[:2] == ["PRE_SCALE_UP", "SCALE_UP"]
    rolling_back = [
        current for _, record, current in seen if record["status"] == "ROLLBACK_IN_PROGRESS"
    ]
    assert rolling_back
    back, failed = rolling_back[0]["deployments"]
    assert back["status"] == "PRIMARY"
    assert back["rolloutStateReason"].startswith(
        "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/"
    )
    assert back["taskDefinition"].endswith(":task-definition/app:1")
    assert back["runningCount"] == 2  # blue's tasks, never stopped
    assert (failed["id"], failed["status"], failed["rolloutState"]) == (
        ours["id"],
        "ACTIVE",
        "FAILED",
    )
    assert failed["rolloutStateReason"] == BREAKER

    _, done, final = seen[-1]
    assert done["status"] == "ROLLBACK_SUCCESSFUL"
    assert done["rollback"]["reason"] == BREAKER
    assert done["deploymentCircuitBreaker"]["status"] == "TRIGGERED"
    assert done["targetServiceRevision"]["requestedProductionTrafficWeight"] == 0.0
    (only,) = final["deployments"]
    assert (only["id"], only["rolloutState"]) == (back["id"], "COMPLETED")
    assert set((await ecs.list_tasks(cluster=CLUSTER, serviceName=service))["taskArns"]) == (
        blue_tasks
    )
    assert (
        f"(service {service}) (deployment {ours['id']}) deployment failed: tasks failed to start."
        in messages(final)
    )


async def test_stopping_a_blue_green_deployment_in_its_bake_returns_to_blue(
    sim: Simulator, ecs: ECSClient
) -> None:
    blue_tasks = set((await ecs.list_tasks(cluster=CLUSTER, serviceName="alarmed"))["taskArns"])
    arn, ours = await start(ecs, "alarmed", "example/app:2")
    with anyio.fail_after(60):
        while True:
            (record,) = (await ecs.describe_service_deployments(serviceDeploymentArns=[arn]))[
                "serviceDeployments"
            ]
            if record["lifecycleStage"] == "BAKE_TIME":
                break
            await anyio.sleep(POLL)
    await ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
    seen = await follow(sim, ecs, "alarmed", arn)
    _, done, final = seen[-1]
    assert done["status"] == "ROLLBACK_SUCCESSFUL"
    assert done["lifecycleStage"] == "BAKE_TIME"
    (only,) = final["deployments"]
    assert only["taskDefinition"].endswith(":task-definition/app:1")
    assert only["id"] != ours["id"]
    tasks = set((await ecs.list_tasks(cluster=CLUSTER, serviceName="alarmed"))["taskArns"])
    assert tasks == blue_tasks


async def test_create_and_update_service_take_and_show_the_strategy(ecs: ECSClient) -> None:
    registered = await ecs.register_task_definition(
        family="app",
        containerDefinitions=[{"name": "app", "image": "example/app:1", "memory": 128}],
    )
    hooks = [
        {
            "hookTargetArn": "arn:aws:lambda:eu-west-1:123456789012:function:check",
            "roleArn": "arn:aws:iam::123456789012:role/hooks",
            "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
        }
    ]
    alarms = {"alarmNames": ["app-5xx"], "enable": True, "rollback": True}
    created = await ecs.create_service(
        cluster=CLUSTER,
        serviceName="fresh",
        taskDefinition=registered["taskDefinition"]["taskDefinitionArn"],
        desiredCount=1,
        deploymentConfiguration={
            "strategy": "LINEAR",
            "bakeTimeInMinutes": 3,
            "linearConfiguration": {"stepPercent": 20.0, "stepBakeTimeInMinutes": 2},
            "lifecycleHooks": hooks,  # type: ignore[typeddict-item]
            "alarms": alarms,
        },
    )
    config = created["service"]["deploymentConfiguration"]
    assert config["strategy"] == "LINEAR"
    assert config["bakeTimeInMinutes"] == 3
    assert config["linearConfiguration"] == {"stepPercent": 20.0, "stepBakeTimeInMinutes": 2}
    assert config["lifecycleHooks"] == hooks
    assert config["alarms"] == alarms

    updated = await ecs.update_service(
        cluster=CLUSTER,
        service="fresh",
        deploymentConfiguration={
            "strategy": "CANARY",
            "canaryConfiguration": {"canaryPercent": 5.0, "canaryBakeTimeInMinutes": 1},
        },
    )
    config = updated["service"]["deploymentConfiguration"]
    assert (config["strategy"], config["bakeTimeInMinutes"]) == ("CANARY", 3)
    assert config["canaryConfiguration"] == {"canaryPercent": 5.0, "canaryBakeTimeInMinutes": 1}
    (described,) = (await ecs.describe_services(cluster=CLUSTER, services=["fresh"]))["services"]
    assert described["deploymentConfiguration"] == config
    (rolling,) = (await ecs.describe_services(cluster=CLUSTER, services=["rolling"]))["services"]
    assert rolling["deploymentConfiguration"]["strategy"] == "ROLLING"

    for bad in (
        {"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 2.0}},
        {"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 10.05}},
        {"strategy": "CANARY", "linearConfiguration": {"stepPercent": 10.0}},
        {"bakeTimeInMinutes": 1441},
    ):
        with pytest.raises(ClientError) as refused:
            await ecs.update_service(
                cluster=CLUSTER,
                service="fresh",
                deploymentConfiguration=bad,  # type: ignore[arg-type]
            )
        assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
