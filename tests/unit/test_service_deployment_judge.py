"""Judging our deployment by ECS's service deployment, and refusing foreign controllers.

Each ServiceDeployment here is parsed from JSON by botocore with ECS's own model, so the
judge sees exactly what the client hands it (datetimes, ints, nested structures).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.parsers import create_parser

from ecs_deploy_many.core.ecs_api import ecs_service_model
from ecs_deploy_many.core.errors import ControllerNotSupported
from ecs_deploy_many.deploy.service_deployment import holds_on_purpose, stage_text
from ecs_deploy_many.deploy.strategy import (
    controller_of,
    deployed_by,
    judged_by_service_deployment,
    least_duration,
    refuse_foreign_controller,
    strategy_of,
)
from ecs_deploy_many.deploy.wait import (
    Expectation,
    Verdict,
    _WaitState,
    judge_service_deployment,
)

NEW = "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:2"
ARN = "arn:aws:ecs:eu-west-1:123456789012:service-deployment/prod/web/AbCdEfGhIjKlMnOpQrStUv"
EXPECT = Expectation("ecs-svc/2", NEW, service_deployment_arn=ARN)


def parsed(**fields: Any) -> dict[str, Any]:
    """One ServiceDeployment as botocore parses a DescribeServiceDeployments answer."""
    body = {
        "serviceDeploymentArn": ARN,
        "createdAt": 1764650000.0,
        "status": "IN_PROGRESS",
        "targetServiceRevision": {
            "arn": "arn:aws:ecs:eu-west-1:123456789012:service-revision/prod/web/2",
            "requestedTaskCount": 4,
            "runningTaskCount": 2,
            "pendingTaskCount": 2,
        },
        **fields,
    }
    operation = ecs_service_model().operation_model("DescribeServiceDeployments")
    response = {
        "status_code": 200,
        "headers": {},
        "body": json.dumps({"serviceDeployments": [body]}).encode(),
    }
    result = create_parser("json").parse(response, operation.output_shape)
    deployment: dict[str, Any] = result["serviceDeployments"][0]
    return deployment


ROLLED_BACK_BY_ALARM = parsed(
    status="ROLLBACK_SUCCESSFUL",
    statusReason="ECS deployment alarms: api-5xx in ALARM.",
    rollback={"reason": "Alarm triggered", "serviceRevisionArn": "rev/1"},
    alarms={"status": "TRIGGERED", "alarmNames": ["api-5xx"], "triggeredAlarmNames": ["api-5xx"]},
)

CASES = [
    ("successful", parsed(status="SUCCESSFUL"), Verdict.SUCCEEDED, "SUCCESSFUL"),
    (
        "rolled back by an alarm: the alarm is named",
        ROLLED_BACK_BY_ALARM,
        Verdict.ROLLED_BACK_BY_ECS,
        "ECS rolled back: alarm api-5xx in ALARM",
    ),
    (
        "rolled back by two alarms",
        parsed(
            status="ROLLBACK_SUCCESSFUL",
            alarms={"triggeredAlarmNames": ["api-5xx", "api-latency"]},
        ),
        Verdict.ROLLED_BACK_BY_ECS,
        "alarms api-5xx, api-latency in ALARM",
    ),
    (
        "rolled back by the circuit breaker: ECS's reason",
        parsed(
            status="ROLLBACK_SUCCESSFUL",
            statusReason="ECS deployment circuit breaker: tasks failed to start.",
            rollback={"reason": "ECS deployment circuit breaker: tasks failed to start."},
        ),
        Verdict.ROLLED_BACK_BY_ECS,
        "ECS rolled back: ECS deployment circuit breaker: tasks failed to start.",
    ),
    (
        "an ECS rollback under way is waited for, so the state reported is final",
        parsed(status="ROLLBACK_IN_PROGRESS", rollback={"reason": "Alarm triggered"}),
        Verdict.WAITING,
        "ECS rolling back: Alarm triggered",
    ),
    (
        "rollback requested is waited for too",
        parsed(status="ROLLBACK_REQUESTED"),
        Verdict.WAITING,
        "ECS rolling back",
    ),
    (
        "a rollback that failed is a failure",
        parsed(
            status="ROLLBACK_FAILED",
            statusReason="tasks of the previous revision failed to start",
            alarms={"triggeredAlarmNames": ["api-5xx"]},
        ),
        Verdict.FAILED,
        "ECS rolled back (alarm api-5xx in ALARM) but its rollback failed: tasks of",
    ),
    (
        "stopped: replaced by a newer deployment",
        parsed(status="STOPPED", statusReason="Superseded by deployment sd/xyz."),
        Verdict.FAILED,
        "service deployment stopped: Superseded by deployment sd/xyz.",
    ),
    ("pending", parsed(status="PENDING"), Verdict.WAITING, "PENDING"),
    ("in progress", parsed(lifecycleStage="SCALE_UP"), Verdict.WAITING, ""),
    ("stop requested", parsed(status="STOP_REQUESTED"), Verdict.WAITING, "STOP_REQUESTED"),
]


@pytest.mark.parametrize(
    ("sd", "verdict", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_judge_service_deployment(sd: dict[str, Any], verdict: Verdict, reason: str) -> None:
    judgement = judge_service_deployment(sd, None, EXPECT)
    assert judgement.verdict is verdict
    assert reason in judgement.reason
    assert judgement.service_deployment is sd


def test_the_alarm_is_named_from_triggered_alarm_names_not_from_text() -> None:
    sd = parsed(
        status="ROLLBACK_SUCCESSFUL",
        statusReason="something ECS may word differently",
        alarms={"alarmNames": ["a", "b"], "triggeredAlarmNames": ["b"]},
    )
    assert judge_service_deployment(sd, None, EXPECT).reason == "ECS rolled back: alarm b in ALARM"


def test_the_judgement_keeps_our_deployments_array_entry_for_the_counts() -> None:
    ours = {"id": "ecs-svc/2", "status": "PRIMARY", "runningCount": 3, "desiredCount": 4}
    service = {"deployments": [ours, {"id": "ecs-svc/1", "status": "ACTIVE"}]}
    judgement = judge_service_deployment(parsed(), service, EXPECT)
    assert judgement.deployment == ours


BAKE = {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 10}


@pytest.mark.parametrize(
    ("sd", "in_stage_for", "text"),
    [
        (
            parsed(lifecycleStage="BAKE_TIME", deploymentConfiguration=BAKE),
            360.0,
            "BAKE_TIME, 4m left",
        ),
        (
            parsed(lifecycleStage="BAKE_TIME", deploymentConfiguration=BAKE),
            570.0,
            "BAKE_TIME, 30s left",
        ),
        (
            parsed(lifecycleStage="BAKE_TIME", deploymentConfiguration=BAKE),
            900.0,
            "BAKE_TIME, 0s left",
        ),
        (
            parsed(
                lifecycleStage="PRODUCTION_TRAFFIC_SHIFT",
                deploymentConfiguration={"strategy": "LINEAR"},
                targetServiceRevision={"arn": "r", "requestedProductionTrafficWeight": 30.0},
            ),
            0.0,
            "PRODUCTION_TRAFFIC_SHIFT, 30% of production traffic",
        ),
        (parsed(lifecycleStage="SCALE_UP"), 0.0, "SCALE_UP, 2/4 tasks running"),
        (parsed(), 0.0, ""),
    ],
    ids=[
        "bake, minutes left",
        "bake, seconds left",
        "bake over",
        "linear step",
        "scale up",
        "none",
    ],
)
def test_stage_text(sd: dict[str, Any], in_stage_for: float, text: str) -> None:
    assert stage_text(sd, None, in_stage_for=in_stage_for) == text


def test_the_bake_time_comes_from_the_service_when_the_deployment_omits_it() -> None:
    service = {"deploymentConfiguration": BAKE}
    assert stage_text(parsed(lifecycleStage="BAKE_TIME"), service, in_stage_for=0.0) == (
        "BAKE_TIME, 10m left"
    )


@pytest.mark.parametrize(
    ("sd", "holds"),
    [
        (parsed(lifecycleStage="BAKE_TIME"), True),
        (
            parsed(
                lifecycleStage="PRODUCTION_TRAFFIC_SHIFT",
                deploymentConfiguration={"strategy": "CANARY"},
            ),
            True,
        ),
        (
            parsed(
                lifecycleStage="PRODUCTION_TRAFFIC_SHIFT",
                deploymentConfiguration={"strategy": "BLUE_GREEN"},
            ),
            False,
        ),
        (
            parsed(
                lifecycleStage="POST_SCALE_UP",
                deploymentConfiguration={
                    "strategy": "BLUE_GREEN",
                    "lifecycleHooks": [
                        {"hookTargetArn": "arn:aws:lambda:x", "lifecycleStages": ["POST_SCALE_UP"]}
                    ],
                },
            ),
            True,
        ),
        (parsed(status="ROLLBACK_IN_PROGRESS", lifecycleStage="SCALE_UP"), True),
        (parsed(lifecycleStage="SCALE_UP"), False),
    ],
    ids=["bake", "canary step", "blue/green shift", "lifecycle hook", "ECS rollback", "scale up"],
)
def test_holds_on_purpose(sd: dict[str, Any], holds: bool) -> None:
    assert holds_on_purpose(sd, None) is holds


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t


def _state(clock: _Clock) -> _WaitState:
    return _WaitState(0.0, clock, 300.0, 0.0, lambda e: None, lambda j: None)  # type: ignore[arg-type]


def test_a_long_bake_is_no_stall_but_a_deployment_stuck_in_scale_up_is() -> None:
    clock = _Clock()
    state = _state(clock)
    service = {"deployments": [{"id": "ecs-svc/2", "runningCount": 4, "desiredCount": 4}]}
    baking = judge_service_deployment(
        parsed(lifecycleStage="BAKE_TIME", deploymentConfiguration=BAKE), service, EXPECT
    )
    for clock.t in (0.0, 200.0, 400.0, 3600.0):
        assert state.stalled(service, baking) is None
    stuck = judge_service_deployment(parsed(lifecycleStage="SCALE_UP"), service, EXPECT)
    clock.t = 3700.0
    assert state.stalled(service, stuck) is None  # the stall is counted from the bake's end
    clock.t = 4000.0
    failing = state.stalled(service, stuck)
    assert failing is not None
    assert failing.verdict is Verdict.FAILED
    assert "no progress for 300 s" in failing.reason


SERVICE = {"serviceName": "api", "deploymentConfiguration": {"strategy": "ROLLING"}}


@pytest.mark.parametrize(
    ("service", "by_service_deployment"),
    [
        ({"serviceName": "api"}, False),
        (SERVICE, False),
        ({"deploymentConfiguration": {"strategy": "BLUE_GREEN"}}, True),
        ({"deploymentConfiguration": {"strategy": "LINEAR"}}, True),
        ({"deploymentConfiguration": {"strategy": "CANARY"}}, True),
        ({"deploymentConfiguration": {"alarms": {"alarmNames": ["a"], "enable": True}}}, True),
        ({"deploymentConfiguration": {"alarms": {"alarmNames": ["a"], "enable": False}}}, False),
    ],
    ids=["no strategy", "rolling", "blue/green", "linear", "canary", "alarms", "alarms off"],
)
def test_which_deployments_the_service_deployment_judges(
    service: dict[str, Any], by_service_deployment: bool
) -> None:
    assert judged_by_service_deployment(service) is by_service_deployment


def test_controller_and_strategy_default_to_what_ecs_assumes() -> None:
    assert (controller_of({}), strategy_of({})) == ("ECS", "ROLLING")
    refuse_foreign_controller({"serviceName": "api", "deploymentController": {"type": "ECS"}})


@pytest.mark.parametrize(
    ("controller", "advice"),
    [
        ("CODE_DEPLOY", "Deploy it with AWS CodeDeploy"),
        ("CODE_DEPLOY", "deploymentConfiguration.strategy BLUE_GREEN"),
        ("EXTERNAL", "the tool that manages its task sets"),
    ],
)
def test_a_foreign_controller_is_refused_naming_it_and_what_to_do(
    controller: str, advice: str
) -> None:
    service = {"serviceName": "api", "deploymentController": {"type": controller}}
    with pytest.raises(ControllerNotSupported) as refused:
        refuse_foreign_controller(service)
    message = str(refused.value)
    assert f"service api uses the {controller} deployment controller" in message
    assert advice in message
    assert refused.value.step == "resolve"
    assert refused.value.controller == controller


@pytest.mark.parametrize(
    ("service", "words"),
    [
        ({}, "ECS controller, ROLLING"),
        (
            {"deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 10}},
            "ECS controller, BLUE_GREEN, bake 10m",
        ),
        (
            {
                "deploymentConfiguration": {
                    "strategy": "LINEAR",
                    "bakeTimeInMinutes": 5,
                    "linearConfiguration": {"stepPercent": 10.0, "stepBakeTimeInMinutes": 6},
                }
            },
            "ECS controller, LINEAR 10% every 6m, bake 5m",
        ),
        (
            {
                "deploymentConfiguration": {
                    "strategy": "CANARY",
                    "canaryConfiguration": {"canaryPercent": 5.5, "canaryBakeTimeInMinutes": 10},
                    "alarms": {"alarmNames": ["a", "b"], "enable": True, "rollback": False},
                }
            },
            "ECS controller, CANARY 5.5% for 10m, alarms a, b",
        ),
        ({"deploymentController": {"type": "CODE_DEPLOY"}}, "CODE_DEPLOY controller"),
    ],
    ids=["rolling", "blue/green", "linear", "canary with alarms", "codedeploy"],
)
def test_how_a_service_deploys_in_a_few_words(service: dict[str, Any], words: str) -> None:
    assert deployed_by(service) == words


@pytest.mark.parametrize(
    ("configuration", "controller", "least"),
    [
        ({}, "ECS", 0.0),
        ({"strategy": "ROLLING", "bakeTimeInMinutes": 30}, "ECS", 0.0),
        ({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5}, "ECS", 300.0),
        ({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5}, "CODE_DEPLOY", 0.0),
        (
            {
                "strategy": "LINEAR",
                "bakeTimeInMinutes": 1,
                "linearConfiguration": {"stepPercent": 25.0, "stepBakeTimeInMinutes": 1},
            },
            "ECS",
            240.0,  # waits after 25, 50 and 75 %, none after 100 %, then the bake
        ),
        ({"strategy": "LINEAR"}, "ECS", 9 * 6 * 60.0),  # ECS's defaults: 10 % every 6 min
        (
            {
                "strategy": "CANARY",
                "bakeTimeInMinutes": 1,
                "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 2},
            },
            "ECS",
            180.0,
        ),
        ({"strategy": "CANARY"}, "ECS", 600.0),  # ECS's default: 10 minutes at 5 %
    ],
)
def test_the_least_a_deployment_waits_on_purpose(
    configuration: dict[str, Any], controller: str, least: float
) -> None:
    service = {
        "deploymentConfiguration": configuration,
        "deploymentController": {"type": controller},
    }
    assert least_duration(service) == least
