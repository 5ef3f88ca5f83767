"""The simulator's registry, one-off tasks, tags, clusters and error shapes."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.model import Shape
from tests.clocks import ManualClock

from ecs_deploy_many.core.ecs_api import READ_ONLY_KEYS
from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.state import SimError, SimState

REGION = "us-east-1"
ACCOUNT = "123456789012"
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}


class Api:
    """An empty account with cluster ``jobs``; image rules for one-off task outcomes."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        fleet = Fleet.model_validate(
            {
                "behaviour": {
                    "images": [
                        {"match": "*:broken", "outcome": "fail_to_start"},
                        {"match": "migrate:*", "outcome": "exit:3", "after": 5},
                        {"match": "*:crashy", "outcome": "crash", "after": 7},
                    ]
                }
            }
        )
        self.state = SimState(self.clock, fleet)
        self.call("CreateCluster", clusterName="jobs")

    def call(self, operation: str, region: str = REGION, **params: Any) -> dict[str, Any]:
        return self.state.handle(operation, region, params)

    def register(self, family: str = "job", image: str = "tool:1", **extra: Any) -> dict[str, Any]:
        containers = [{"name": "main", "image": image, "memory": 128}]
        body = {"family": family, "containerDefinitions": containers, **extra}
        return self.call("RegisterTaskDefinition", **body)["taskDefinition"]

    def run(self, image: str, **params: Any) -> dict[str, Any]:
        arn = self.register(image=image)["taskDefinitionArn"]
        return self.call("RunTask", cluster="jobs", taskDefinition=arn, **params)["tasks"][0]

    def task(self, arn: str) -> dict[str, Any]:
        return self.call("DescribeTasks", cluster="jobs", tasks=[arn])["tasks"][0]


@pytest.fixture
def api() -> Api:
    return Api()


def error_of(api: Api, operation: str, **params: Any) -> SimError:
    with pytest.raises(SimError) as caught:
        api.call(operation, **params)
    return caught.value


# botocore output shapes -----------------------------------------------------------------

MODEL = botocore.session.get_session().get_service_model("ecs")
PY_TYPES = {
    "string": str,
    "integer": int,
    "long": int,
    "boolean": bool,
    "timestamp": float,
    "double": float,
}


def conform(value: Any, shape: Shape, where: str = "") -> None:
    """Fail when ``value`` has a key or a type the botocore model does not allow."""
    if shape.type_name == "structure":
        assert isinstance(value, dict), where
        for key, item in value.items():
            assert key in shape.members, f"{where}.{key} is not in {shape.name}"
            conform(item, shape.members[key], f"{where}.{key}")
    elif shape.type_name == "list":
        assert isinstance(value, list), where
        for index, item in enumerate(value):
            conform(item, shape.member, f"{where}[{index}]")
    elif shape.type_name == "map":
        assert isinstance(value, dict), where
    else:
        assert isinstance(value, PY_TYPES[shape.type_name]), f"{where}: {value!r}"


def conforms(operation: str, response: dict[str, Any]) -> None:
    conform(response, MODEL.operation_model(operation).output_shape, operation)


# task definitions -----------------------------------------------------------------------


def test_revisions_describe_and_deregister(api: Api) -> None:
    for number in (1, 2, 3):
        assert api.register(image=f"tool:{number}")["revision"] == number
    latest = api.call("DescribeTaskDefinition", taskDefinition="job")["taskDefinition"]
    assert latest["taskDefinitionArn"] == f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/job:3"
    gone = api.call("DeregisterTaskDefinition", taskDefinition="job:3")["taskDefinition"]
    assert gone["status"] == "INACTIVE"
    assert "deregisteredAt" in gone
    assert (
        api.call("DescribeTaskDefinition", taskDefinition="job")["taskDefinition"]["revision"] == 2
    )
    by_arn = api.call("DescribeTaskDefinition", taskDefinition=latest["taskDefinitionArn"])
    assert by_arn["taskDefinition"]["status"] == "INACTIVE"
    for missing in (
        "nope",
        "job:9",
        "job:x",
        f"arn:aws:ecs:eu-west-1:{ACCOUNT}:task-definition/job:1",
    ):
        error = error_of(api, "DescribeTaskDefinition", taskDefinition=missing)
        assert (error.code, error.message) == (
            "ClientException",
            "Unable to describe task definition.",
        )


def test_describe_fills_ecs_defaults_and_round_trips(api: Api) -> None:
    registered = api.register(
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": "web", "image": "nginx", "portMappings": [{"containerPort": 80}]}
        ],
        tags=[{"key": "team", "value": "core"}],
    )
    container = registered["containerDefinitions"][0]
    assert container["essential"] is True
    assert container["cpu"] == 0
    for key in ("environment", "mountPoints", "volumesFrom"):
        assert container[key] == []
    assert container["portMappings"] == [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}]
    assert registered["compatibilities"] == ["EC2", "FARGATE"]
    assert registered["registeredBy"] == f"arn:aws:iam::{ACCOUNT}:root"
    described = api.call("DescribeTaskDefinition", taskDefinition="job", include=["TAGS"])
    assert described["tags"] == [{"key": "team", "value": "core"}]
    assert "tags" not in described["taskDefinition"]
    conforms("DescribeTaskDefinition", described)
    again = {k: v for k, v in described["taskDefinition"].items() if k not in READ_ONLY_KEYS}
    second = api.call("RegisterTaskDefinition", **again)["taskDefinition"]
    assert {k: v for k, v in second.items() if k not in READ_ONLY_KEYS} == again


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"requiresCompatibilities": ["FARGATE"]}, "Fargate only supports network mode 'awsvpc'."),
        (
            {"containerDefinitions": [{"name": "a", "image": "x"}]},
            "Invalid setting for container 'a'. At least one of 'memory' or "
            "'memoryReservation' must be specified.",
        ),
        (
            {"family": "bad name"},
            "Family contains invalid characters or is longer than 255 characters.",
        ),
    ],
)
def test_registration_rejects_what_ecs_rejects(
    api: Api, extra: dict[str, Any], message: str
) -> None:
    body = {"family": "job", "containerDefinitions": [{"name": "a", "image": "x", "memory": 1}]}
    error = error_of(api, "RegisterTaskDefinition", **{**body, **extra})
    assert (error.code, error.message) == ("ClientException", message)


def test_listing_task_definitions(api: Api) -> None:
    for family in ("web", "web", "web", "webapp", "api"):
        api.register(family=family)
    api.call("DeregisterTaskDefinition", taskDefinition="web:1")
    arns = api.call("ListTaskDefinitions", familyPrefix="web")["taskDefinitionArns"]
    assert [a.rsplit("/", 1)[1] for a in arns] == ["web:2", "web:3"]  # the full family name
    inactive = api.call("ListTaskDefinitions", status="INACTIVE")["taskDefinitionArns"]
    assert [a.rsplit("/", 1)[1] for a in inactive] == ["web:1"]
    pages, token = [], None
    while True:
        page = api.call(
            "ListTaskDefinitions",
            sort="DESC",
            maxResults=2,
            **({"nextToken": token} if token else {}),
        )
        pages.append([a.rsplit("/", 1)[1] for a in page["taskDefinitionArns"]])
        if not (token := page.get("nextToken")):
            break
    assert pages == [["webapp:1", "web:3"], ["web:2", "api:1"]]
    families = api.call("ListTaskDefinitionFamilies", familyPrefix="web")["families"]
    assert families == ["web", "webapp"]
    assert (
        error_of(api, "ListTaskDefinitions", nextToken="garbage").code
        == "InvalidParameterException"
    )


# one-off tasks --------------------------------------------------------------------------

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


def watch(api: Api, arn: str, seconds: int = 200) -> list[str]:
    """Every lastStatus the task shows, sampled each simulated second."""
    seen: list[str] = []
    for _ in range(seconds):
        status = api.task(arn)["lastStatus"]
        if not seen or seen[-1] != status:
            seen.append(status)
        api.clock.t += 1
    return seen


def test_run_task_walks_the_whole_lifecycle_and_exits_zero(api: Api) -> None:
    task = api.run("tool:1", startedBy="release-42", launchType="EC2")
    assert task["group"] == "family:job"
    assert (task["lastStatus"], task["desiredStatus"]) == ("PROVISIONING", "RUNNING")
    assert watch(api, task["taskArn"]) == LIFECYCLE
    done = api.task(task["taskArn"])
    assert (done["stopCode"], done["stoppedReason"]) == (
        "EssentialContainerExited",
        "Essential container in task exited",
    )
    assert done["containers"][0]["exitCode"] == 0
    assert done["containers"][0]["lastStatus"] == "STOPPED"
    assert done["startedAt"] < done["stoppingAt"] < done["executionStoppedAt"] < done["stoppedAt"]
    assert done["startedBy"] == "release-42"
    conforms("DescribeTasks", api.call("DescribeTasks", cluster="jobs", tasks=[task["taskArn"]]))


def test_exit_codes_and_failures_of_one_off_tasks(api: Api) -> None:
    migrate = api.run("migrate:7", group="migrations")
    crashy = api.run("tool:crashy")
    broken = api.run("tool:broken")
    api.clock.t += 300
    migrated, crashed, failed = (api.task(t["taskArn"]) for t in (migrate, crashy, broken))
    assert migrated["containers"][0]["exitCode"] == 3
    assert migrated["group"] == "migrations"
    assert migrated["executionStoppedAt"] - migrated["startedAt"] == pytest.approx(5 + 2 + 10)
    assert crashed["containers"][0]["exitCode"] == 1
    assert failed["stopCode"] == "TaskFailedToStart"
    assert "startedAt" not in failed
    assert "exitCode" not in failed["containers"][0]


def test_stop_task_is_user_initiated(api: Api) -> None:
    task = api.run("tool:1")
    api.clock.t += 40
    stopped = api.call("StopTask", cluster="jobs", task=task["taskArn"], reason="no longer needed")[
        "task"
    ]
    assert (stopped["desiredStatus"], stopped["lastStatus"]) == ("STOPPED", "DEACTIVATING")
    api.clock.t += 60
    done = api.task(task["taskArn"])
    assert (done["stopCode"], done["stoppedReason"]) == ("UserInitiated", "no longer needed")
    assert done["containers"][0]["exitCode"] == 143
    assert (
        error_of(api, "StopTask", cluster="jobs", task="0" * 32).code == "InvalidParameterException"
    )


def test_stopped_tasks_vanish_after_an_hour(api: Api) -> None:
    arn = api.run("tool:1")["taskArn"]
    api.clock.t += 200
    assert api.task(arn)["lastStatus"] == "STOPPED"
    api.clock.t += 3600
    described = api.call("DescribeTasks", cluster="jobs", tasks=[arn])
    assert described == {"tasks": [], "failures": [{"arn": arn, "reason": "MISSING"}]}


def test_list_tasks_filters_and_pages(api: Api) -> None:
    arn = api.register()["taskDefinitionArn"]
    first = api.call("RunTask", cluster="jobs", taskDefinition=arn, count=10, startedBy="a")
    api.call("RunTask", cluster="jobs", taskDefinition=arn, count=3, startedBy="b")
    api.register(family="other")
    api.call("RunTask", cluster="jobs", taskDefinition="other", count=1)
    assert len(api.call("ListTasks", cluster="jobs", startedBy="a")["taskArns"]) == 10
    assert len(api.call("ListTasks", cluster="jobs", family="other")["taskArns"]) == 1
    page = api.call("ListTasks", cluster="jobs", maxResults=5)
    rest = api.call("ListTasks", cluster="jobs", nextToken=page["nextToken"])
    assert len(page["taskArns"]) + len(rest["taskArns"]) == 14
    assert "nextToken" not in rest
    api.call("StopTask", cluster="jobs", task=first["tasks"][0]["taskArn"])
    assert len(api.call("ListTasks", cluster="jobs", desiredStatus="STOPPED")["taskArns"]) == 1
    error = error_of(api, "RunTask", cluster="jobs", taskDefinition=arn, count=11)
    assert error.code == "InvalidParameterException"


def test_awsvpc_tasks_need_a_network_configuration(api: Api) -> None:
    api.register(family="vpc", networkMode="awsvpc", cpu="256", memory="512")
    error = error_of(api, "RunTask", cluster="jobs", taskDefinition="vpc")
    assert (
        error.message
        == "Network Configuration must be provided when networkMode 'awsvpc' is specified."
    )
    ran = api.call(
        "RunTask",
        cluster="jobs",
        taskDefinition="vpc",
        launchType="FARGATE",
        networkConfiguration=NETWORK,
    )
    assert ran["tasks"][0]["platformVersion"] == "1.4.0"
    conforms("RunTask", ran)


# clusters, services, tags and errors ----------------------------------------------------


def test_clusters_are_per_region_and_idempotent(api: Api) -> None:
    again = api.call("CreateCluster", clusterName="jobs")["cluster"]
    assert again["clusterArn"] == f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/jobs"
    assert api.call("ListClusters")["clusterArns"] == [again["clusterArn"]]
    assert api.call("ListClusters", region="eu-west-1")["clusterArns"] == []
    described = api.call("DescribeClusters", clusters=["jobs", "nope"])
    assert described["failures"] == [
        {"arn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/nope", "reason": "MISSING"}
    ]
    conforms("DescribeClusters", described)
    api.run("tool:1")
    assert api.call("DescribeClusters", clusters=["jobs"])["clusters"][0]["pendingTasksCount"] == 1
    error = error_of(api, "ListTasks", region="eu-west-1", cluster="jobs")
    assert (error.code, error.message, error.status) == (
        "ClusterNotFoundException",
        "Cluster not found.",
        400,
    )


def test_service_errors_and_batch_limits(api: Api) -> None:
    api.register()
    created = api.call(
        "CreateService", cluster="jobs", serviceName="svc", taskDefinition="job", desiredCount=1
    )
    conforms("CreateService", created)
    error = error_of(api, "UpdateService", cluster="jobs", service="ghost", desiredCount=1)
    assert (error.code, error.message) == ("ServiceNotFoundException", "Service not found.")
    too_many = error_of(
        api, "DescribeServices", cluster="jobs", services=[f"s{i}" for i in range(11)]
    )
    assert too_many.code == "InvalidParameterException"
    described = api.call("DescribeServices", cluster="jobs", services=["svc", "ghost"])
    assert [s["serviceName"] for s in described["services"]] == ["svc"]
    assert described["failures"] == [
        {"arn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/jobs/ghost", "reason": "MISSING"}
    ]
    conforms("DescribeServices", described)
    empty = error_of(api, "DescribeTasks", cluster="jobs", tasks=[])
    assert (empty.code, empty.message) == ("InvalidParameterException", "Tasks cannot be empty.")
    assert (
        error_of(api, "DescribeTasks", cluster="jobs", tasks=["x"] * 101).code
        == "InvalidParameterException"
    )
    duplicate = error_of(
        api,
        "CreateService",
        cluster="jobs",
        serviceName="svc",
        taskDefinition="job",
        desiredCount=1,
    )
    assert duplicate.code == "InvalidParameterException"
    unknown = error_of(
        api, "CreateService", cluster="jobs", serviceName="x", taskDefinition="nope", desiredCount=1
    )
    assert unknown.code == "ClientException"
    assert (
        error_of(api, "DescribeServices", cluster="nope", services=["svc"]).code
        == "ClusterNotFoundException"
    )


def test_delete_service_drains_then_goes_inactive(api: Api) -> None:
    api.register()
    api.call(
        "CreateService", cluster="jobs", serviceName="svc", taskDefinition="job", desiredCount=2
    )
    assert error_of(api, "DeleteService", cluster="jobs", service="svc").message == (
        "The service cannot be stopped while it is scaled above 0."
    )
    deleted = api.call("DeleteService", cluster="jobs", service="svc", force=True)["service"]
    assert deleted["status"] == "DRAINING"
    api.clock.t += 60
    [service] = api.call("DescribeServices", cluster="jobs", services=["svc"])["services"]
    assert service["status"] == "INACTIVE"
    assert api.call("ListServices", cluster="jobs")["serviceArns"] == []
    assert (
        error_of(api, "UpdateService", cluster="jobs", service="svc").code
        == "ServiceNotFoundException"
    )
    api.call(
        "CreateService", cluster="jobs", serviceName="svc", taskDefinition="job", desiredCount=0
    )


def test_tags_on_every_kind_of_resource(api: Api) -> None:
    taskdef = api.register()["taskDefinitionArn"]
    service = api.call(
        "CreateService", cluster="jobs", serviceName="svc", taskDefinition="job", desiredCount=0
    )
    task = api.run("tool:1")["taskArn"]
    cluster = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/jobs"
    for arn in (cluster, service["service"]["serviceArn"], taskdef, task):
        api.call(
            "TagResource",
            resourceArn=arn,
            tags=[{"key": "a", "value": "1"}, {"key": "b", "value": "2"}],
        )
        api.call("UntagResource", resourceArn=arn, tagKeys=["a"])
        assert api.call("ListTagsForResource", resourceArn=arn) == {
            "tags": [{"key": "b", "value": "2"}]
        }
    described = api.call("DescribeServices", cluster="jobs", services=["svc"], include=["TAGS"])
    assert described["services"][0]["tags"] == [{"key": "b", "value": "2"}]
    missing = error_of(api, "ListTagsForResource", resourceArn=f"{cluster.replace('jobs', 'gone')}")
    assert missing.code == "ClusterNotFoundException"
    assert (
        error_of(api, "TagResource", resourceArn="arn:nope", tags=[]).code
        == "InvalidParameterException"
    )


def test_list_services_pages_by_ten(api: Api) -> None:
    api.register()
    for number in range(12):
        api.call(
            "CreateService",
            cluster="jobs",
            serviceName=f"s{number:02}",
            taskDefinition="job",
            desiredCount=0,
        )
    page = api.call("ListServices", cluster="jobs")
    assert len(page["serviceArns"]) == 10
    rest = api.call("ListServices", cluster="jobs", nextToken=page["nextToken"])
    assert [a.rsplit("/", 1)[1] for a in rest["serviceArns"]] == ["s10", "s11"]


def test_unknown_operations_are_refused(api: Api) -> None:
    assert "StartTask" not in SimState.OPERATIONS
    assert error_of(api, "StartTask").code == "UnknownOperationException"
