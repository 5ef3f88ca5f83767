"""Fleet files: what they build, and how a mistake in one is reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.clocks import ManualClock

from ecs_deploy_many.sim.fleet import (
    MAX_FLEET_BYTES,
    MAX_FLEET_TASKS,
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


SERVICE = "  - name: prod\n    services:\n      - {name: api, task_definition: web}\n"
ONE_FAMILY = (
    "task_definitions:\n  web: {containerDefinitions: [{name: w, image: 'a:1', memory: 128}]}\n"
)


def alias_bomb(levels: int) -> str:
    """Each level repeats the one before it nine times: 9**levels values from a few lines."""
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for n in range(1, levels):
        lines.append(f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (alias_bomb(9), "more than 1000000 values, counting each alias"),
        ("a:\n" + "".join(f"{'  ' * n}- \n" for n in range(1, 80)), "nested deeper than 64"),
        ("x-loop: &m {a: 1, <<: *m}\n", "an alias refers to a value holding it"),
        ("a: " + "[" * 3_000 + "]" * 3_000 + "\n", "nesting depth"),
        ("clusters: [" + "1, " * 400_000 + "\n", "not valid YAML"),
        ("region: !!int abc\n", "line 1: cannot read 'abc' as int"),
        ("region: !!bool maybe\n", "line 1: cannot read 'maybe' as bool"),
        ("region: !!timestamp nope\n", "line 1: cannot read 'nope' as timestamp"),
        ("account_id: " + "9" * 5_000 + "\n", "cannot read '99999"),
    ],
    ids=[
        "alias-bomb",
        "deep-blocks",
        "recursive-merge",
        "deep-brackets",
        "unterminated-list",
        "int-abc",
        "bool-maybe",
        "timestamp-nope",
        "5000-digits",
    ],
)
def test_unbounded_or_unreadable_yaml_is_a_fleet_error(
    tmp_path: Path, text: str, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(FleetError) as caught:
        load_fleet(path)
    assert caught.value.file == str(path)
    assert words in caught.value.message


def test_files_too_large_or_not_text_are_refused_unread(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match=f"larger than {MAX_FLEET_BYTES} bytes"):
        load_fleet("/dev/zero")
    binary = tmp_path / "fleet.bin"
    binary.write_bytes(b"region: \xff\xfe\n")
    with pytest.raises(FleetError, match=r"not UTF-8 text \(byte 8\)"):
        load_fleet(binary)


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        (
            ONE_FAMILY + "clusters:\n" + SERVICE.replace("name: api", "name: 'api v2'"),
            "clusters[0].services[0].name",
            "'api v2' is not a valid ECS name",
        ),
        (
            ONE_FAMILY + "clusters:\n" + SERVICE.replace("prod", "'prod east'"),
            "clusters[0].name",
            "'prod east' is not a valid ECS name",
        ),
        (
            ONE_FAMILY + "clusters:\n" + SERVICE.replace("web}", "web, desired_count: 5001}"),
            "clusters[0].services[0].desired_count",
            "less than or equal to 5000",
        ),
        (
            ONE_FAMILY + "clusters:\n" + SERVICE + SERVICE,
            "clusters[1].services[0].name",
            "service 'api' is already in cluster 'prod' (at clusters[0].services[0].name)",
        ),
        (
            ONE_FAMILY
            + "clusters:\n  - name: prod\n    services:\n"
            + "".join(
                f"      - {{name: s{n}, task_definition: web, desired_count: 5000}}\n"
                for n in range(MAX_FLEET_TASKS // 5000 + 1)
            ),
            "clusters",
            f"the simulator holds at most {MAX_FLEET_TASKS}",
        ),
        ("region: eu west 1\n", "region", "'eu west 1' is not an AWS region name"),
    ],
    ids=["service-name", "cluster-name", "desired-count", "duplicate", "total-tasks", "region"],
)
def test_what_ecs_would_refuse_names_the_key(
    tmp_path: Path, text: str, key: str, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(FleetError) as caught:
        load_fleet(path)
    assert (caught.value.file, caught.value.key) == (str(path), key)
    assert words in caught.value.message
