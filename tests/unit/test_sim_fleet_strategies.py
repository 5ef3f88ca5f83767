"""Fleet keys for deployment strategies, controllers and alarms: what they build, and how a
mistake in one is reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.clocks import ManualClock

from ecs_deploy_many.sim.fleet import FleetError, load_fleet
from ecs_deploy_many.sim.state import SimState

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy-plans" / "sim" / "strategies-fleet.yaml"
FLEET = """\
region: eu-west-1
task_definitions:
  web:
    containerDefinitions: [{name: web, image: "app:1", memory: 128}]
clusters:
  - name: prod
    services:
      - name: api
        task_definition: web
        strategy: LINEAR
        linear: {step_percent: 20, step_bake_time_in_minutes: 2}
        bake_time_in_minutes: 3
        alarms: {alarm_names: [api-5xx]}
      - name: legacy
        task_definition: web
        deployment_controller: CODE_DEPLOY
behaviour:
  alarms:
    - {alarm: api-5xx, match: "*:bad*"}
"""


def test_strategy_keys_become_the_services_deployment_configuration(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET)
    state = SimState(ManualClock(), load_fleet(path))
    described = state.handle(
        "DescribeServices", "eu-west-1", {"cluster": "prod", "services": ["api", "legacy"]}
    )
    api, legacy = described["services"]
    assert api["deploymentConfiguration"] == {
        "deploymentCircuitBreaker": {"enable": False, "rollback": False},
        "maximumPercent": 200,
        "minimumHealthyPercent": 100,
        "strategy": "LINEAR",
        "bakeTimeInMinutes": 3,
        "linearConfiguration": {"stepPercent": 20.0, "stepBakeTimeInMinutes": 2},
        "alarms": {"alarmNames": ["api-5xx"], "enable": True, "rollback": False},
    }
    assert api["deploymentController"] == {"type": "ECS"}
    assert legacy["deploymentController"] == {"type": "CODE_DEPLOY"}
    assert legacy["deploymentConfiguration"]["strategy"] == "ROLLING"
    # A fleet service starts steady: its first service deployment is already SUCCESSFUL.
    listed = state.handle(
        "ListServiceDeployments", "eu-west-1", {"cluster": "prod", "service": "api"}
    )
    assert [d["status"] for d in listed["serviceDeployments"]] == ["SUCCESSFUL"]


def test_the_example_fleet_loads() -> None:
    fleet = load_fleet(EXAMPLE)
    services = {s.name: s for s in fleet.clusters[0].services}
    assert {s.strategy for s in services.values()} == {"ROLLING", "BLUE_GREEN", "LINEAR", "CANARY"}
    assert services["alarmed"].alarms is not None
    assert {s.deployment_controller for s in services.values()} == {
        "ECS",
        "CODE_DEPLOY",
        "EXTERNAL",
    }
    assert fleet.alarms_of(["example/app:bad-metrics"]) == ("app-5xx",)


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (
            ("strategy: LINEAR", "strategy: BLUE_GREEN"),
            "clusters[0].services[0]",
            "linear is only valid with strategy LINEAR",
        ),
        (
            ("step_percent: 20", "step_percent: 2"),
            "clusters[0].services[0].linear.step_percent",
            "greater than or equal to 3",
        ),
        (
            ("step_percent: 20", "step_percent: 20.05"),
            "clusters[0].services[0].linear.step_percent",
            "not a multiple of 0.1",
        ),
        (
            ("bake_time_in_minutes: 3", "bake_time_in_minutes: 1441"),
            "clusters[0].services[0].bake_time_in_minutes",
            "less than or equal to 1440",
        ),
        (
            ("deployment_controller: CODE_DEPLOY", "deployment_controller: CODEDEPLOY"),
            "clusters[0].services[1].deployment_controller",
            "CODE_DEPLOY",
        ),
        (
            ("deployment_controller: CODE_DEPLOY", "deployment_controller: EXTERNAL\n        "
             "strategy: CANARY"),
            "clusters[0].services[1]",
            "strategy CANARY needs deployment_controller ECS",
        ),
        (
            ("alarms: {alarm_names: [api-5xx]}", "alarms: {alarm_names: []}"),
            "clusters[0].services[0].alarms.alarm_names",
            "at least 1 item",
        ),
        (
            ('{alarm: api-5xx, match: "*:bad*"}', '{name: api-5xx, match: "*:bad*"}'),
            "behaviour.alarms[0].alarm",
            "Field required",
        ),
    ],
)  # fmt: skip
def test_mistakes_name_the_file_and_the_key(
    tmp_path: Path, change: tuple[str, str], key: str, words: str
) -> None:
    assert change[0] in FLEET
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET.replace(*change))
    with pytest.raises(FleetError) as caught:
        load_fleet(path)
    assert caught.value.file == str(path)
    assert caught.value.key == key
    assert words in caught.value.message
