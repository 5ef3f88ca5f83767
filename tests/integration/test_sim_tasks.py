"""One-off tasks: RunTask, the lastStatus walk, how a task ends, and DescribeTasks' rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.helpers import CLUSTER, register, watch_task

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

pytestmark = pytest.mark.anyio

LIFECYCLE = [
    "PROVISIONING",
    "PENDING",
    "ACTIVATING",
    "RUNNING",
    "DEACTIVATING",
    "STOPPING",
    "DEPROVISIONING",
    "STOPPED",
]


async def run_to_the_end(ecs: ECSClient, image: str) -> list[dict[str, Any]]:
    """Run one task of a new revision with ``image``; every view of it until STOPPED."""
    arn = await register(ecs, image, family="job")
    started = await ecs.run_task(cluster=CLUSTER, taskDefinition=arn, launchType="EC2")
    assert started["failures"] == []
    (task,) = started["tasks"]
    assert (task["lastStatus"], task["desiredStatus"]) == ("PROVISIONING", "RUNNING")
    return await watch_task(ecs, CLUSTER, task["taskArn"])


async def test_task_walks_the_documented_lifecycle_and_exits_0(fleet_ecs: ECSClient) -> None:
    views = await run_to_the_end(fleet_ecs, "app:1")
    statuses = list(dict.fromkeys(v["lastStatus"] for v in views))
    assert statuses == [s for s in LIFECYCLE if s in statuses]  # in order, none invented
    assert {"PENDING", "RUNNING", "STOPPED"} <= set(statuses)
    running = next(v for v in views if v["lastStatus"] == "RUNNING")
    assert running["containers"][0]["lastStatus"] == "RUNNING"
    assert "exitCode" not in running["containers"][0]

    stopped = views[-1]
    assert stopped["desiredStatus"] == "STOPPED"
    assert stopped["stopCode"] == "EssentialContainerExited"
    assert stopped["stoppedReason"] == "Essential container in task exited"
    assert stopped["containers"][0]["exitCode"] == 0
    assert stopped["startedAt"] <= stopped["stoppedAt"]


@pytest.mark.parametrize(
    ("image", "stop_code", "exit_code"),
    [
        ("app:exit3", "EssentialContainerExited", 3),
        ("app:crashy", "EssentialContainerExited", 1),
        # Never started: no exit code at all, which a deployer must treat as a failure.
        ("app:broken", "TaskFailedToStart", None),
    ],
)
async def test_how_a_task_ends_depends_on_its_image(
    fleet_ecs: ECSClient, image: str, stop_code: str, exit_code: int | None
) -> None:
    stopped = (await run_to_the_end(fleet_ecs, image))[-1]
    (container,) = stopped["containers"]
    assert stopped["stopCode"] == stop_code
    assert container.get("exitCode") == exit_code
    if exit_code is None:
        assert container["reason"].startswith("CannotPullContainerError")
        assert stopped["stoppedReason"].startswith("CannotPullContainerError")


async def test_unhealthy_image_reports_its_health_check(fleet_ecs: ECSClient) -> None:
    views = await run_to_the_end(fleet_ecs, "app:sick")
    assert "UNHEALTHY" in {v["healthStatus"] for v in views}
    assert views[-1]["containers"][0]["healthStatus"] == "UNHEALTHY"


async def test_stop_task_is_user_initiated(fleet_ecs: ECSClient) -> None:
    # It would run for a simulated day: still running when StopTask arrives, however slow.
    arn = await register(fleet_ecs, "app:daylong", family="job")
    (task,) = (await fleet_ecs.run_task(cluster=CLUSTER, taskDefinition=arn, count=1))["tasks"]
    await watch_task(fleet_ecs, CLUSTER, task["taskArn"], lambda t: t["lastStatus"] == "RUNNING")
    stopping = await fleet_ecs.stop_task(cluster=CLUSTER, task=task["taskArn"], reason="release")
    assert stopping["task"]["desiredStatus"] == "STOPPED"
    stopped = (await watch_task(fleet_ecs, CLUSTER, task["taskArn"]))[-1]
    assert (stopped["stopCode"], stopped["stoppedReason"]) == ("UserInitiated", "release")
    assert stopped["containers"][0]["exitCode"] == 143  # SIGTERM


async def test_run_task_count_limits(fleet_ecs: ECSClient) -> None:
    arn = await register(fleet_ecs, "app:1", family="job")
    ten = await fleet_ecs.run_task(cluster=CLUSTER, taskDefinition=arn, count=10)
    assert len(ten["tasks"]) == 10
    with pytest.raises(ClientError) as refused:
        await fleet_ecs.run_task(cluster=CLUSTER, taskDefinition=arn, count=11)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"


async def test_describe_tasks_batch_rules(fleet_ecs: ECSClient) -> None:
    arn = await register(fleet_ecs, "app:1", family="job")
    (task,) = (await fleet_ecs.run_task(cluster=CLUSTER, taskDefinition=arn))["tasks"]
    described = await fleet_ecs.describe_tasks(
        cluster=CLUSTER, tasks=[task["taskArn"], "0123456789abcdef0123456789abcdef"]
    )
    assert [t["taskArn"] for t in described["tasks"]] == [task["taskArn"]]
    (missing,) = described["failures"]
    assert missing["reason"] == "MISSING"
    assert missing["arn"].endswith(":task/prod/0123456789abcdef0123456789abcdef")

    for tasks, says in (([], "Tasks cannot be empty."), ([task["taskArn"]] * 101, "100")):
        with pytest.raises(ClientError) as refused:
            await fleet_ecs.describe_tasks(cluster=CLUSTER, tasks=tasks)
        assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
        assert says in refused.value.response["Error"]["Message"]
    hundred = await fleet_ecs.describe_tasks(cluster=CLUSTER, tasks=[task["taskArn"]] * 100)
    assert len(hundred["tasks"]) == 100
