"""Fleet files: what they build, and how a mistake in one is reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.clocks import ManualClock

from ecs_deploy_many.sim.fleet import (
    ClusterSpec,
    Fleet,
    FleetError,
    Outcome,
    ServiceSpec,
    TaskDefinitionSpec,
    load_fleet,
)
from ecs_deploy_many.sim.state import SimState

FLEET = """\
account_id: "210987654321"
region: eu-west-1
timings: {pending: 5}
task_definitions:
  web:
    networkMode: awsvpc
    requiresCompatibilities: [FARGATE]
    cpu: "256"
    memory: "512"
    containerDefinitions:
      - name: web
        image: "nginx:1.25"
        healthCheck: {command: ["CMD", "true"]}
  worker:
    revisions:
      - {containerDefinitions: [{name: w, image: "app:1", memory: 128}]}
      - {containerDefinitions: [{name: w, image: "app:broken", memory: 128}]}
clusters:
  - name: prod
    services:
      - name: api
        task_definition: web
        desired_count: 3
        minimum_healthy_percent: 50
        circuit_breaker: {enable: true, rollback: true}
        timings: {health_check: 5}
  - name: batch
    region: us-west-2
    services:
      - {name: queue, task_definition: "worker:2", launch_type: EC2}
behaviour:
  images:
    - {match: "*:broken", outcome: fail_to_start}
    - {match: "*:broken", outcome: crash}
    - {match: "migrate:*", outcome: "exit:2", after: 15}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_fleet_file_builds_the_world_it_describes(tmp_path: Path) -> None:
    fleet = load_fleet(write(tmp_path, FLEET))
    assert fleet.timings.pending == 5
    assert fleet.timings.provisioning == 10  # defaults fill the rest
    api = fleet.clusters[0].services[0]
    assert fleet.timings_for(api).health_check == 5
    assert fleet.outcome_of("x:broken").kind == "fail_to_start"  # first match wins
    assert fleet.outcome_of("migrate:7") == Outcome(kind="exit", exit_code=2, after=15)
    assert fleet.outcome_of("nginx:1.25").kind == "ok"

    state = SimState(ManualClock(), fleet)
    assert state.account_id == "210987654321"
    [service] = state.handle(
        "DescribeServices", "eu-west-1", {"cluster": "prod", "services": ["api"]}
    )["services"]
    assert service["serviceArn"] == "arn:aws:ecs:eu-west-1:210987654321:service/prod/api"
    assert (service["runningCount"], service["deployments"][0]["rolloutState"]) == (3, "COMPLETED")
    assert service["deploymentConfiguration"]["deploymentCircuitBreaker"] == {
        "enable": True,
        "rollback": True,
    }
    [queue] = state.handle(
        "DescribeServices", "us-west-2", {"cluster": "batch", "services": ["queue"]}
    )["services"]
    # A service whose image does not start begins rolling out instead of steady.
    assert (queue["pendingCount"], queue["deployments"][0]["rolloutState"]) == (1, "IN_PROGRESS")
    assert queue["taskDefinition"].endswith("task-definition/worker:2")
    families = state.handle("ListTaskDefinitionFamilies", "us-west-2", {})["families"]
    assert families == ["web", "worker"]


def test_a_fleet_is_built_in_code_too() -> None:
    fleet = Fleet(
        task_definitions={
            "job": TaskDefinitionSpec(
                revisions=[{"containerDefinitions": [{"name": "j", "image": "j", "memory": 64}]}]
            )
        },
        clusters=[
            ClusterSpec(
                name="c", services=[ServiceSpec(name="s", task_definition="job", desired_count=2)]
            )
        ],
    )
    state = SimState(ManualClock(), fleet)
    listed = state.handle("ListTasks", fleet.region, {"cluster": "c", "serviceName": "s"})
    assert len(listed["taskArns"]) == 2


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (
            ("desired_count: 3", "desired_count: -1"),
            "clusters[0].services[0].desired_count",
            "greater than",
        ),
        (
            ("launch_type: EC2", "launch_typ: EC2"),
            "clusters[1].services[0].launch_typ",
            "Extra inputs",
        ),
        (
            ("outcome: crash", "outcome: explode"),
            "behaviour.images[1]",
            "unknown outcome 'explode'",
        ),
        (
            ('"worker:2"', '"worker:3"'),
            "clusters[1].services[0].task_definition",
            "no task definition",
        ),
        (
            ("networkMode: awsvpc", "networkMode: bridge"),
            "task_definitions.web.revisions[0]",
            "awsvpc",
        ),
        (
            ("timings: {health_check: 5}", "timings: {healthcheck: 5}"),
            "clusters[0].services[0].timings.healthcheck",
            "Extra",
        ),
    ],
)
def test_mistakes_name_the_file_and_the_key(
    tmp_path: Path, change: tuple[str, str], key: str, words: str
) -> None:
    assert change[0] in FLEET
    path = write(tmp_path, FLEET.replace(*change))
    with pytest.raises(FleetError) as caught:
        load_fleet(path)
    assert caught.value.file == str(path)
    assert caught.value.key == key
    assert words in caught.value.message
    assert str(caught.value).startswith(f"{path}: {key}: ")


def test_unreadable_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match="cannot read"):
        load_fleet(tmp_path / "missing.yaml")
    with pytest.raises(FleetError, match="not valid YAML"):
        load_fleet(write(tmp_path, "clusters: [\n"))
    with pytest.raises(FleetError, match="must be a mapping"):
        load_fleet(write(tmp_path, "- 1\n"))
    assert load_fleet(write(tmp_path, "")) == Fleet()
