"""The service-deployments API for rolling updates, and the deployment controllers.

Each test deploys one steady service of the fleet through the real client (in-process, on
virtual time) and reads ListServiceDeployments, DescribeServiceDeployments and
DescribeServiceRevisions beside DescribeServices, as a deployer checking its own
deployment would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import (
    CLUSTER,
    SPEED,
    completed,
    deploy,
    ecs_client,
    fleet_spec,
    messages,
    primary,
    register,
    watch_service,
)

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

pytestmark = pytest.mark.anyio

BREAKER = "ECS deployment circuit breaker: tasks failed to start."
CODE_DEPLOY_REFUSAL = (
    "Unable to update task definition on services with a CODE_DEPLOY deployment controller. "
    "Use AWS CodeDeploy to trigger a new deployment."
)
EXTERNAL_REFUSAL = (
    "Unable to update task definition on services with a EXTERNAL deployment controller. "
    "Use task sets to trigger a new deployment."
)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    spec = fleet_spec()
    spec["clusters"][0]["services"] += [
        {"name": "blue", "task_definition": "web", "deployment_controller": "CODE_DEPLOY"},
        {"name": "outside", "task_definition": "web", "deployment_controller": "EXTERNAL"},
    ]
    fleet = Fleet.model_validate(spec)
    async with Simulator(fleet, speed=SPEED, strict_output=True, listen=False) as running:
        yield running


@pytest.fixture
async def ecs(sim: Simulator) -> AsyncIterator[ECSClient]:
    async with ecs_client(sim, attempts=1) as client:
        yield client


async def history(ecs: ECSClient, service: str, **filters: Any) -> list[dict[str, Any]]:
    """Every service deployment of ``service``, newest first, described."""
    listed = await ecs.list_service_deployments(cluster=CLUSTER, service=service, **filters)
    arns = [brief["serviceDeploymentArn"] for brief in listed["serviceDeployments"]]
    if not arns:
        return []
    described = await ecs.describe_service_deployments(serviceDeploymentArns=arns)
    assert described["failures"] == []
    return list(described["serviceDeployments"])


async def revision(ecs: ECSClient, arn: str) -> dict[str, Any]:
    (found,) = (await ecs.describe_service_revisions(serviceRevisionArns=[arn]))["serviceRevisions"]
    return dict(found)


def code(error: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return error.value.response["Error"]["Code"], error.value.response["Error"]["Message"]


async def test_a_rolling_deployment_is_one_service_deployment_until_successful(
    ecs: ECSClient,
) -> None:
    ((steady),) = await history(ecs, "api")
    assert steady["status"] == "SUCCESSFUL"

    updated = await deploy(ecs, "api", "app:2")
    ours = primary(updated)
    ongoing, earlier = await history(ecs, "api")
    assert earlier["serviceDeploymentArn"] == steady["serviceDeploymentArn"]
    assert ongoing["status"] == "IN_PROGRESS"
    assert ongoing["lifecycleStage"] == "SCALE_UP"
    assert ongoing["createdAt"] == ours["createdAt"]
    assert ongoing["serviceDeploymentArn"].startswith(
        "arn:aws:ecs:eu-west-1:123456789012:service-deployment/prod/api/"
    )
    assert len(ongoing["serviceDeploymentArn"].rsplit("/", 1)[1]) == 22
    target = ongoing["targetServiceRevision"]
    digits = ours["id"].removeprefix("ecs-svc/")
    assert target["arn"] == (
        f"arn:aws:ecs:eu-west-1:123456789012:service-revision/prod/api/{digits}"
    )
    assert target["requestedTaskCount"] == 2
    (source,) = ongoing["sourceServiceRevisions"]
    assert source["arn"] == steady["targetServiceRevision"]["arn"]
    assert source["runningTaskCount"] == 2
    assert ongoing["deploymentCircuitBreaker"] == {
        "status": "DISABLED",
        "failureCount": 0,
        "threshold": 3,
    }
    assert ongoing["alarms"]["status"] == "DISABLED"
    assert "finishedAt" not in ongoing

    views = await watch_service(ecs, CLUSTER, "api", completed)
    assert views[-1]["deployments"][0]["id"] == ours["id"]
    done, _ = await history(ecs, "api")
    assert done["status"] == "SUCCESSFUL"
    assert done["lifecycleStage"] == "CLEAN_UP"
    assert done["finishedAt"] >= done["createdAt"]
    assert done["targetServiceRevision"]["runningTaskCount"] == 2
    assert done["sourceServiceRevisions"][0]["runningTaskCount"] == 0

    described = await revision(ecs, target["arn"])
    assert described["taskDefinition"] == ours["taskDefinition"]
    assert described["containerImages"] == [{"containerName": "web", "image": "app:2"}]
    assert described["launchType"] == "EC2"
    assert described["serviceArn"] == views[-1]["serviceArn"]
    assert described["loadBalancers"] == []
    assert described["createdAt"] == ours["createdAt"]


async def test_a_circuit_breaker_rollback_keeps_the_same_service_deployment(
    ecs: ECSClient,
) -> None:
    ((steady),) = await history(ecs, "safe")
    ours = primary(await deploy(ecs, "safe", "app:broken"))
    views = await watch_service(ecs, CLUSTER, "safe", completed)
    rollback = views[-1]["deployments"][0]
    assert rollback["id"] != ours["id"]
    assert rollback["rolloutStateReason"] == (f"ECS deployment {rollback['id']} completed.")

    done, earlier = await history(ecs, "safe")
    assert earlier["serviceDeploymentArn"] == steady["serviceDeploymentArn"]
    assert done["status"] == "ROLLBACK_SUCCESSFUL"
    assert done["statusReason"] == BREAKER
    assert done["targetServiceRevision"]["arn"].endswith(ours["id"].removeprefix("ecs-svc/"))
    assert done["rollback"]["reason"] == BREAKER
    assert done["rollback"]["serviceRevisionArn"] == steady["targetServiceRevision"]["arn"]
    assert done["createdAt"] <= done["rollback"]["startedAt"] <= done["finishedAt"]
    breaker = done["deploymentCircuitBreaker"]
    assert (breaker["status"], breaker["threshold"]) == ("TRIGGERED", 3)
    assert breaker["failureCount"] >= 3


async def test_the_rollback_shows_in_progress_while_it_runs(ecs: ECSClient) -> None:
    ours = primary(await deploy(ecs, "safe", "app:broken"))
    views = await watch_service(ecs, CLUSTER, "safe", lambda s: primary(s)["id"] != ours["id"])
    assert primary(views[-1])["rolloutStateReason"].startswith(
        "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/"
    )
    rolling_back, _ = await history(ecs, "safe")
    assert rolling_back["status"] == "ROLLBACK_IN_PROGRESS"
    assert rolling_back["statusReason"] == BREAKER
    assert "finishedAt" not in rolling_back


async def test_a_breaker_without_rollback_stops_the_service_deployment(
    ecs: ECSClient,
) -> None:
    ours = primary(await deploy(ecs, "guarded", "app:broken"))
    await watch_service(ecs, CLUSTER, "guarded", lambda s: primary(s)["rolloutState"] == "FAILED")
    stopped, _ = await history(ecs, "guarded")
    assert stopped["targetServiceRevision"]["arn"].endswith(ours["id"].removeprefix("ecs-svc/"))
    assert (stopped["status"], stopped["statusReason"]) == ("STOPPED", BREAKER)
    assert stopped["stoppedAt"] == stopped["finishedAt"]
    assert stopped["deploymentCircuitBreaker"]["status"] == "TRIGGERED"
    assert "rollback" not in stopped


async def test_a_deployment_replaced_before_it_finished_ends_stopped(ecs: ECSClient) -> None:
    await deploy(ecs, "api", "app:2")
    await deploy(ecs, "api", "app:3")
    newer, replaced, _ = await history(ecs, "api")
    assert newer["status"] == "IN_PROGRESS"
    assert replaced["status"] == "STOPPED"
    assert replaced["statusReason"] == (
        f"Replaced by service deployment {newer['serviceDeploymentArn']}."
    )
    await watch_service(ecs, CLUSTER, "api", completed)
    newer, replaced, _ = await history(ecs, "api")
    assert (newer["status"], replaced["status"]) == ("SUCCESSFUL", "STOPPED")


async def test_stop_service_deployment_rolls_back_without_rollback_configured(
    ecs: ECSClient,
) -> None:
    ((steady),) = await history(ecs, "api")
    ours = primary(await deploy(ecs, "api", "app:2"))
    ongoing, _ = await history(ecs, "api")
    arn = ongoing["serviceDeploymentArn"]

    answer = await ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
    assert answer["serviceDeploymentArn"] == arn
    rolling_back, _ = await history(ecs, "api")
    assert rolling_back["status"] == "ROLLBACK_IN_PROGRESS"
    assert (
        rolling_back["rollback"]["serviceRevisionArn"] == (steady["targetServiceRevision"]["arn"])
    )
    # Asking again while it rolls back is no error: the rollback goes on.
    await ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")

    views = await watch_service(ecs, CLUSTER, "api", completed)
    (back,) = views[-1]["deployments"]
    assert back["id"] != ours["id"]
    assert back["taskDefinition"].endswith(":task-definition/web:1")
    assert f"(service api) (deployment {ours['id']}) deployment stopped: rollback requested." in (
        messages(views[-1])
    )
    done, _ = await history(ecs, "api")
    assert done["status"] == "ROLLBACK_SUCCESSFUL"
    assert len(await history(ecs, "api")) == 2  # a rollback is no new service deployment

    with pytest.raises(ClientError) as finished:
        await ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
    assert code(finished)[0] == "ConflictException"
    assert "ROLLBACK_SUCCESSFUL" in code(finished)[1]
    with pytest.raises(ClientError) as unknown:
        await ecs.stop_service_deployment(serviceDeploymentArn=arn[:-4] + "XXXX")
    assert code(unknown)[0] == "ServiceDeploymentNotFoundException"


async def test_list_filters_by_status_and_creation_time_and_pages(
    sim: Simulator, ecs: ECSClient
) -> None:
    created = []
    for _ in range(3):
        await sim.clock.sleep(10)
        updated = await ecs.update_service(cluster=CLUSTER, service="api", forceNewDeployment=True)
        created.append(primary(dict(updated["service"]))["createdAt"])
    every = await history(ecs, "api")
    assert [d["status"] for d in every] == ["IN_PROGRESS", "STOPPED", "STOPPED", "SUCCESSFUL"]
    assert [d["createdAt"] for d in every[:3]] == created[::-1]

    stopped = await history(ecs, "api", status=["STOPPED"])
    assert [d["serviceDeploymentArn"] for d in stopped] == [
        d["serviceDeploymentArn"] for d in every[1:3]
    ]
    # The client sends whole seconds: bounds a second off each side of a deployment's time.
    second = timedelta(seconds=1)
    recent = await history(ecs, "api", createdAt={"after": created[1] - second})
    assert [d["createdAt"] for d in recent] == created[:0:-1]
    older = await history(ecs, "api", createdAt={"before": created[0] + second})
    assert [d["serviceDeploymentArn"] for d in older] == [
        d["serviceDeploymentArn"] for d in every[2:]
    ]

    pages, token = [], None
    while True:
        page = await ecs.list_service_deployments(
            cluster=CLUSTER, service="api", maxResults=3, **({"nextToken": token} if token else {})
        )
        pages.append(page["serviceDeployments"])
        if not (token := page.get("nextToken")):
            break
    assert [len(p) for p in pages] == [3, 1]
    brief = pages[0][0]
    assert brief["serviceDeploymentArn"] == every[0]["serviceDeploymentArn"]
    assert brief["targetServiceRevisionArn"] == every[0]["targetServiceRevision"]["arn"]
    assert brief["status"] == "IN_PROGRESS"


async def test_describes_take_twenty_arns_and_report_unknown_ones(
    sim: Simulator, ecs: ECSClient
) -> None:
    ((steady),) = await history(ecs, "api")
    arn = steady["serviceDeploymentArn"]
    unknown = arn.replace("/api/", "/nothing/")
    described = await ecs.describe_service_deployments(serviceDeploymentArns=[arn, unknown])
    assert [d["serviceDeploymentArn"] for d in described["serviceDeployments"]] == [arn]
    assert described["failures"] == [{"arn": unknown, "reason": "MISSING"}]
    with pytest.raises(ClientError) as too_many:
        await ecs.describe_service_deployments(serviceDeploymentArns=[arn] * 21)
    assert code(too_many)[0] == "InvalidParameterException"

    revision_arn = steady["targetServiceRevision"]["arn"]
    revisions = await ecs.describe_service_revisions(
        serviceRevisionArns=[revision_arn, revision_arn + "0"]
    )
    assert [r["serviceRevisionArn"] for r in revisions["serviceRevisions"]] == [revision_arn]
    assert revisions["failures"] == [{"arn": revision_arn + "0", "reason": "MISSING"}]
    with pytest.raises(ClientError) as too_many_revisions:
        await ecs.describe_service_revisions(serviceRevisionArns=[revision_arn] * 21)
    assert code(too_many_revisions)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as no_service:
        await ecs.list_service_deployments(cluster=CLUSTER, service="nothing")
    assert code(no_service)[0] == "ServiceNotFoundException"
    calls = sim.stats().calls
    assert (calls["ListServiceDeployments"], calls["DescribeServiceRevisions"]) == (2, 2)
    assert calls["DescribeServiceDeployments"] == 3


@pytest.mark.parametrize(
    ("service", "controller", "refusal"),
    [("blue", "CODE_DEPLOY", CODE_DEPLOY_REFUSAL), ("outside", "EXTERNAL", EXTERNAL_REFUSAL)],
)
async def test_other_controllers_refuse_a_new_task_definition_but_scale(
    ecs: ECSClient, service: str, controller: str, refusal: str
) -> None:
    arn = await register(ecs, "app:2")
    for change in ({"taskDefinition": arn}, {"forceNewDeployment": True}):
        with pytest.raises(ClientError) as refused:
            await ecs.update_service(cluster=CLUSTER, service=service, **change)  # type: ignore[arg-type]
        assert code(refused) == ("InvalidParameterException", refusal)
    scaled = (await ecs.update_service(cluster=CLUSTER, service=service, desiredCount=3))["service"]
    assert scaled["desiredCount"] == 3
    assert scaled["taskDefinition"].endswith(":task-definition/web:1")
    assert scaled["deploymentController"] == {"type": controller}
    assert len(scaled["deployments"]) == 1
    assert await history(ecs, service) == []


async def test_create_service_takes_and_shows_the_controller(ecs: ECSClient) -> None:
    arn = await register(ecs, "app:1")
    created = await ecs.create_service(
        cluster=CLUSTER,
        serviceName="coded",
        taskDefinition=arn,
        desiredCount=1,
        deploymentController={"type": "CODE_DEPLOY"},
    )
    assert created["service"]["deploymentController"] == {"type": "CODE_DEPLOY"}
    (described,) = (await ecs.describe_services(cluster=CLUSTER, services=["coded", "api"]))[
        "services"
    ][:1]
    assert described["deploymentController"] == {"type": "CODE_DEPLOY"}
    (api,) = (await ecs.describe_services(cluster=CLUSTER, services=["api"]))["services"]
    assert api["deploymentController"] == {"type": "ECS"}
    with pytest.raises(ClientError) as refused:
        await ecs.update_service(
            cluster=CLUSTER, service="coded", taskDefinition=await register(ecs, "app:2")
        )
    assert code(refused) == ("InvalidParameterException", CODE_DEPLOY_REFUSAL)


async def test_deleting_the_service_stops_its_deployment_and_then_forgets_them(
    ecs: ECSClient,
) -> None:
    await deploy(ecs, "api", "app:2")
    ongoing, _ = await history(ecs, "api")
    await ecs.delete_service(cluster=CLUSTER, service="api", force=True)
    stopped, _ = await history(ecs, "api")
    assert (stopped["status"], stopped["statusReason"]) == ("STOPPED", "The service was deleted.")
    await watch_service(ecs, CLUSTER, "api", lambda s: s["status"] == "INACTIVE")
    described = await ecs.describe_service_deployments(
        serviceDeploymentArns=[ongoing["serviceDeploymentArn"]]
    )
    assert described["failures"] == [{"arn": ongoing["serviceDeploymentArn"], "reason": "MISSING"}]
