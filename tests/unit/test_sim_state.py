"""The simulator's rolling deployments and circuit breaker, driven on a clock moved by hand."""

from __future__ import annotations

from typing import Any

import pytest
from tests.clocks import START, ManualClock

from ecs_deploy_many.sim.deployments import breaker_threshold
from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.state import SimError, SimState

REGION = "us-east-1"
# Default timings: RUNNING 32 s after launch, healthy 40 s later; a stop takes 22 s.
RUNNING_AFTER, HEALTHY_AFTER, STOP_TAKES = 32.0, 72.0, 22.0


WEB = {
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "cpu": "256",
    "memory": "512",
    "containerDefinitions": [{"name": "web", "image": "app:1"}],
}
RULES = [
    {"match": "*:broken", "outcome": "fail_to_start"},
    {"match": "*:crashy", "outcome": "crash", "after": 20},
    {"match": "*:sick", "outcome": "unhealthy"},
]


class Sim:
    """One service ``api`` in cluster ``prod``, steady on ``app:1``, and shortcuts to poke it."""

    def __init__(self, seed: int = 0, **service: Any) -> None:
        self.clock = ManualClock()
        fleet = Fleet.model_validate(
            {
                "task_definitions": {"web": WEB},
                "clusters": [
                    {
                        "name": "prod",
                        "services": [{"name": "api", "task_definition": "web", **service}],
                    }
                ],
                "behaviour": {"images": RULES},
            }
        )
        self.state = SimState(self.clock, fleet, seed=seed)

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        return self.state.handle(operation, REGION, params)

    def wait(self, seconds: float) -> None:
        self.clock.t += seconds

    def service(self) -> dict[str, Any]:
        return self.call("DescribeServices", cluster="prod", services=["api"])["services"][0]

    def messages(self) -> list[str]:
        """Event messages, oldest first, without the ``(service api)`` prefix."""
        return [
            e["message"].removeprefix("(service api) ") for e in reversed(self.service()["events"])
        ]

    def register(self, image: str) -> str:
        body = {**WEB, "family": "web", "containerDefinitions": [{"name": "web", "image": image}]}
        return str(
            self.call("RegisterTaskDefinition", **body)["taskDefinition"]["taskDefinitionArn"]
        )

    def deploy(self, image: str, **params: Any) -> dict[str, Any]:
        arn = self.register(image)
        return self.call(
            "UpdateService", cluster="prod", service="api", taskDefinition=arn, **params
        )["service"]

    def live_tasks(self) -> int:
        return len(self.call("ListTasks", cluster="prod", serviceName="api")["taskArns"])


def shape(service: dict[str, Any]) -> list[tuple[str, str, int, int]]:
    return [
        (d["status"], d["rolloutState"], d["runningCount"], d["pendingCount"])
        for d in service["deployments"]
    ]


def test_rolling_deployment_replaces_tasks_then_completes() -> None:
    sim = Sim(desired_count=2)
    old_id = sim.service()["deployments"][0]["id"]
    service = sim.deploy("app:2")
    new = service["deployments"][0]
    assert new["id"].startswith("ecs-svc/")
    assert len(new["id"]) == len("ecs-svc/") + 19
    assert new["rolloutStateReason"] == f"ECS deployment {new['id']} in progress."
    assert new["taskDefinition"].endswith("task-definition/web:2")
    assert shape(service) == [("PRIMARY", "IN_PROGRESS", 0, 2), ("ACTIVE", "COMPLETED", 2, 0)]

    sim.wait(RUNNING_AFTER)
    assert shape(sim.service()) == [("PRIMARY", "IN_PROGRESS", 2, 0), ("ACTIVE", "COMPLETED", 2, 0)]
    assert sim.service()["runningCount"] == 4
    sim.wait(HEALTHY_AFTER - RUNNING_AFTER - 1)
    assert len(sim.service()["deployments"]) == 2  # old tasks wait for new ones to be healthy
    sim.wait(1)
    assert shape(sim.service()) == [("PRIMARY", "IN_PROGRESS", 2, 0), ("ACTIVE", "COMPLETED", 0, 0)]
    sim.wait(STOP_TAKES)
    service = sim.service()
    assert shape(service) == [("PRIMARY", "COMPLETED", 2, 0)]
    assert (
        service["deployments"][0]["rolloutStateReason"] == f"ECS deployment {new['id']} completed."
    )
    assert service["deployments"][0]["updatedAt"] == START + HEALTHY_AFTER + STOP_TAKES

    messages = sim.messages()[3:]  # after the fleet's own start-up events
    assert messages[0].startswith("has started 2 tasks: (task ")
    assert messages[1].startswith("has stopped 2 running tasks: (task ")
    assert messages[2:] == [
        f"(deployment {new['id']}) deployment completed.",
        "has reached a steady state.",
    ]
    events = service["events"]
    assert events[0]["createdAt"] == START + HEALTHY_AFTER + STOP_TAKES
    assert all(e["id"] and isinstance(e["createdAt"], float) for e in events)
    started = sim.call("ListTasks", cluster="prod", startedBy=new["id"])["taskArns"]
    assert len(started) == 2
    assert not sim.call("ListTasks", cluster="prod", startedBy=old_id)["taskArns"]
    stopped = sim.call("ListTasks", cluster="prod", startedBy=old_id, desiredStatus="STOPPED")
    old = sim.call("DescribeTasks", cluster="prod", tasks=stopped["taskArns"])["tasks"]
    assert {t["stopCode"] for t in old} == {"ServiceSchedulerInitiated"}
    assert {t["stoppedReason"] for t in old} == {
        f"Scaling activity initiated by (deployment {old_id})"
    }


@pytest.mark.parametrize(
    ("minimum", "maximum", "desired"),
    [(100, 200, 2), (50, 100, 4), (0, 100, 3), (100, 150, 4), (50, 200, 5)],
)
def test_pace_stays_within_minimum_healthy_and_maximum_percent(
    minimum: int, maximum: int, desired: int
) -> None:
    sim = Sim(desired_count=desired, minimum_healthy_percent=minimum, maximum_percent=maximum)
    sim.deploy("app:2")
    floor, ceiling = -(-desired * minimum // 100), desired * maximum // 100
    for _ in range(400):
        service = sim.service()
        assert sim.live_tasks() <= ceiling
        assert service["runningCount"] >= floor
        if shape(service) == [("PRIMARY", "COMPLETED", desired, 0)]:
            break
        sim.wait(1)
    else:
        pytest.fail("the deployment did not complete")


def test_minimum_below_100_stops_old_tasks_before_starting_new_ones() -> None:
    sim = Sim(desired_count=4, minimum_healthy_percent=50, maximum_percent=100)
    service = sim.deploy("app:2")
    new, old = service["deployments"]
    assert (new["pendingCount"], old["desiredCount"]) == (2, 2)
    assert sim.live_tasks() == 4


def test_no_room_to_move_reports_once_and_makes_no_progress() -> None:
    sim = Sim(desired_count=2, minimum_healthy_percent=100, maximum_percent=100)
    sim.deploy("app:2")
    sim.wait(600)
    service = sim.service()
    assert shape(service) == [("PRIMARY", "IN_PROGRESS", 0, 0), ("ACTIVE", "COMPLETED", 2, 0)]
    stuck = [m for m in sim.messages() if m.startswith("was unable to stop or start tasks")]
    assert stuck == [
        "was unable to stop or start tasks during a deployment because of the service "
        "deployment configuration. Update the minimumHealthyPercent or maximumPercent value "
        "and try again."
    ]


def test_deployment_to_zero_tasks_completes_without_starting_any() -> None:
    sim = Sim(desired_count=2)
    service = sim.deploy("app:2", desiredCount=0)
    new_id = service["deployments"][0]["id"]
    sim.wait(STOP_TAKES)
    assert shape(sim.service()) == [("PRIMARY", "COMPLETED", 0, 0)]
    assert not sim.call("ListTasks", cluster="prod", startedBy=new_id, desiredStatus="STOPPED")[
        "taskArns"
    ]
    created = sim.call(
        "CreateService",
        cluster="prod",
        serviceName="idle",
        taskDefinition="web",
        desiredCount=0,
        networkConfiguration={"awsvpcConfiguration": {"subnets": ["s"]}},
    )["service"]
    assert shape(created) == [("PRIMARY", "COMPLETED", 0, 0)]


def test_desired_count_changes_scale_without_a_new_deployment() -> None:
    sim = Sim(desired_count=2)
    service = sim.call("UpdateService", cluster="prod", service="api", desiredCount=4)["service"]
    assert shape(service) == [("PRIMARY", "COMPLETED", 2, 2)]
    assert sim.messages()[-1].startswith("has started 2 tasks:")
    sim.wait(RUNNING_AFTER)
    sim.call("UpdateService", cluster="prod", service="api", desiredCount=1)
    assert sim.live_tasks() == 1
    assert sim.messages()[-1].startswith("has stopped 3 running tasks:")


def test_force_new_deployment_replaces_tasks_on_the_same_revision() -> None:
    sim = Sim(desired_count=1)
    before = sim.service()
    same = sim.call("UpdateService", cluster="prod", service="api", taskDefinition="web:1")
    assert len(same["service"]["deployments"]) == 1  # nothing changed, nothing deployed
    service = sim.call("UpdateService", cluster="prod", service="api", forceNewDeployment=True)
    new, old = service["service"]["deployments"]
    assert new["taskDefinition"] == old["taskDefinition"] == before["taskDefinition"]
    sim.wait(HEALTHY_AFTER + STOP_TAKES)
    assert [d["id"] for d in sim.service()["deployments"]] == [new["id"]]


def test_a_sixth_active_deployment_is_rejected() -> None:
    sim = Sim(desired_count=1)
    for number in range(2, 6):
        sim.deploy(f"app:{number}")
    assert len(sim.service()["deployments"]) == 5
    with pytest.raises(SimError) as caught:
        sim.deploy("app:6")
    assert caught.value.code == "InvalidParameterException"
    assert caught.value.message == "5 active deployments exist, unable to create new deployment."
    assert len(sim.service()["deployments"]) == 5


@pytest.mark.parametrize(
    ("desired", "threshold"), [(0, 3), (1, 3), (6, 3), (7, 4), (10, 5), (400, 200), (1000, 200)]
)
def test_breaker_threshold_formula(desired: int, threshold: int) -> None:
    assert breaker_threshold(desired) == threshold


BREAKER = {"enable": True, "rollback": False}


def test_breaker_without_rollback_fails_the_deployment_and_stalls() -> None:
    sim = Sim(desired_count=8, circuit_breaker=BREAKER)
    new_id = sim.deploy("app:broken")["deployments"][0]["id"]
    sim.wait(600)
    service = sim.service()
    new, old = service["deployments"]
    assert (new["status"], new["rolloutState"]) == ("PRIMARY", "FAILED")
    assert new["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
    assert new["failedTasks"] >= breaker_threshold(8) == 4
    assert (old["status"], old["runningCount"]) == ("ACTIVE", 8)
    assert f"(deployment {new_id}) deployment failed: tasks failed to start." in sim.messages()
    assert "is unable to consistently start tasks successfully." in sim.messages()
    launched = sim.call("ListTasks", cluster="prod", startedBy=new_id, desiredStatus="STOPPED")
    sim.wait(600)
    again = sim.call("ListTasks", cluster="prod", startedBy=new_id, desiredStatus="STOPPED")
    assert again["taskArns"] == launched["taskArns"]  # a FAILED deployment launches nothing


def test_breaker_with_rollback_ends_on_the_old_task_definition() -> None:
    sim = Sim(desired_count=2, circuit_breaker={"enable": True, "rollback": True})
    stable = sim.service()["deployments"][0]
    failing = sim.deploy("app:broken")["deployments"][0]
    seen: set[tuple[str, str, str]] = set()
    for _ in range(300):
        sim.wait(1)
        seen |= {(d["id"], d["status"], d["rolloutState"]) for d in sim.service()["deployments"]}
    assert (failing["id"], "ACTIVE", "FAILED") in seen
    service = sim.service()
    [primary] = service["deployments"]
    assert primary["id"] not in (stable["id"], failing["id"])
    assert (primary["status"], primary["rolloutState"]) == ("PRIMARY", "COMPLETED")
    assert primary["taskDefinition"] == stable["taskDefinition"] == service["taskDefinition"]
    assert primary["runningCount"] == 2
    assert f"rolling back to deployment {stable['id']}." in sim.messages()
    rollback = [m for m in sim.messages() if "rolling back" in m or "failed: tasks" in m]
    assert rollback == [
        f"(deployment {failing['id']}) deployment failed: tasks failed to start.",
        f"rolling back to deployment {stable['id']}.",
    ]


def test_rollback_reason_names_the_last_completed_deployment() -> None:
    sim = Sim(desired_count=1, circuit_breaker={"enable": True, "rollback": True})
    stable_id = sim.service()["deployments"][0]["id"]
    sim.deploy("app:broken")
    for _ in range(200):
        sim.wait(1)
        primary = sim.service()["deployments"][0]
        if primary["rolloutStateReason"].startswith("ECS deployment circuit breaker: rolling"):
            break
    assert primary["rolloutStateReason"] == (
        f"ECS deployment circuit breaker: rolling back to deploymentId {stable_id}."
    )
    assert primary["rolloutState"] == "IN_PROGRESS"


def test_failed_health_checks_replace_tasks_and_trip_stage_two() -> None:
    sim = Sim(desired_count=2, circuit_breaker=BREAKER)
    new_id = sim.deploy("app:sick")["deployments"][0]["id"]
    sim.wait(RUNNING_AFTER + 30)
    messages = sim.messages()
    failed = [m for m in messages if m.endswith("failed container health checks.")]
    assert len(failed) == 2
    assert failed[0].startswith("(task ")
    sim.wait(600)
    new = sim.service()["deployments"][0]
    assert (new["id"], new["rolloutState"]) == (new_id, "FAILED")
    stopped = sim.call("ListTasks", cluster="prod", startedBy=new_id, desiredStatus="STOPPED")
    task = sim.call("DescribeTasks", cluster="prod", tasks=stopped["taskArns"][:1])["tasks"][0]
    assert task["healthStatus"] == "UNHEALTHY"
    assert task["containers"][0]["healthStatus"] == "UNHEALTHY"
    assert (task["stopCode"], task["stoppedReason"]) == (
        "ServiceSchedulerInitiated",
        "Task failed container health checks",
    )


def test_crashing_tasks_are_replaced_but_do_not_trip_the_breaker() -> None:
    sim = Sim(desired_count=2, circuit_breaker=BREAKER)
    new_id = sim.deploy("app:crashy")["deployments"][0]["id"]
    sim.wait(600)
    new, old = sim.service()["deployments"]
    assert (new["rolloutState"], new["failedTasks"], old["runningCount"]) == ("IN_PROGRESS", 0, 2)
    stopped = sim.call("ListTasks", cluster="prod", startedBy=new_id, desiredStatus="STOPPED")
    assert len(stopped["taskArns"]) > 2
    task = sim.call("DescribeTasks", cluster="prod", tasks=stopped["taskArns"][:1])["tasks"][0]
    assert (task["stopCode"], task["stoppedReason"]) == (
        "EssentialContainerExited",
        "Essential container in task exited",
    )
    assert task["containers"][0]["exitCode"] == 1
    assert task["stoppedAt"] - task["startedAt"] == pytest.approx(20 + STOP_TAKES - 0)


def test_tasks_that_cannot_pull_never_run() -> None:
    sim = Sim(desired_count=1)
    new_id = sim.deploy("app:broken")["deployments"][0]["id"]
    statuses: set[str] = set()
    for _ in range(120):
        sim.wait(1)
        arns = sim.call("ListTasks", cluster="prod", startedBy=new_id, desiredStatus="STOPPED")
        arns["taskArns"] += sim.call("ListTasks", cluster="prod", startedBy=new_id)["taskArns"]
        if arns["taskArns"]:
            tasks = sim.call("DescribeTasks", cluster="prod", tasks=arns["taskArns"])["tasks"]
            statuses |= {t["lastStatus"] for t in tasks}
    assert "RUNNING" not in statuses
    assert "STOPPED" in statuses
    task = tasks[0]
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"].startswith("CannotPullContainerError: ")
    assert "exitCode" not in task["containers"][0]
    assert task["containers"][0]["reason"] == task["stoppedReason"]
    assert any(
        m.startswith("was unable to place a task. Reason: CannotPull") for m in sim.messages()
    )


def test_stopping_a_service_task_gets_it_replaced() -> None:
    sim = Sim(desired_count=1)
    [arn] = sim.call("ListTasks", cluster="prod", serviceName="api")["taskArns"]
    task = sim.call("StopTask", cluster="prod", task=arn, reason="maintenance")["task"]
    assert (task["desiredStatus"], task["stopCode"]) == ("STOPPED", "UserInitiated")
    [replacement] = sim.call("ListTasks", cluster="prod", serviceName="api")["taskArns"]
    assert replacement != arn


def test_same_seed_same_ids() -> None:
    first, second = Sim(seed=7), Sim(seed=7)
    assert first.service()["events"] == second.service()["events"]
    assert first.deploy("app:2")["deployments"] == second.deploy("app:2")["deployments"]
    assert Sim(seed=8).service()["deployments"][0]["id"] != first.service()["deployments"][1]["id"]


def test_a_health_check_decides_health_instead_of_the_grace_period() -> None:
    sim = Sim(desired_count=1, health_check=True)
    new_id = sim.deploy("app:2")["deployments"][0]["id"]
    sim.wait(RUNNING_AFTER + 30)  # the health check answers after 30 s, not 40
    [arn] = sim.call("ListTasks", cluster="prod", startedBy=new_id)["taskArns"]
    task = sim.call("DescribeTasks", cluster="prod", tasks=[arn])["tasks"][0]
    assert task["healthStatus"] == "HEALTHY"
    assert task["containers"][0]["healthStatus"] == "HEALTHY"
    assert sim.messages()[-1].startswith("has stopped 1 running tasks:")


def test_only_the_newest_hundred_events_are_kept() -> None:
    sim = Sim(desired_count=1)
    for count in (2, 1) * 60:
        sim.call("UpdateService", cluster="prod", service="api", desiredCount=count)
    events = sim.service()["events"]
    assert len(events) == 100
    assert events[0]["message"].startswith("(service api) has stopped 1 running tasks:")
