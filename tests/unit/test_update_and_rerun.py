"""When a failed UpdateService took effect after all, and the plan's ``rerun_unchanged``."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_deploy_many.aws.gateway import update_in_effect
from ecs_deploy_many.core.errors import PlanError
from ecs_deploy_many.plan import parse_plan

ARN = "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:{}"


def service(*deployments: tuple[str, str, str], desired: int = 2) -> dict[str, Any]:
    """A described service from (id, status, revision number) triples."""
    return {
        "desiredCount": desired,
        "deployments": [
            {"id": id_, "status": status, "taskDefinition": ARN.format(revision)}
            for id_, status, revision in deployments
        ],
    }


ROLLING = service(("ecs-svc/2", "PRIMARY", "2"), ("ecs-svc/1", "ACTIVE", "1"))
STEADY = service(("ecs-svc/1", "PRIMARY", "1"))


@pytest.mark.parametrize(
    ("described", "params", "earlier", "in_effect"),
    [
        pytest.param(ROLLING, {"taskDefinition": ARN.format(2)}, None, True, id="new-revision"),
        pytest.param(STEADY, {"taskDefinition": ARN.format(2)}, None, False, id="not-yet"),
        pytest.param(ROLLING, {"taskDefinition": "web:2"}, None, True, id="family-revision"),
        pytest.param(STEADY, {"taskDefinition": ARN.format(1)}, None, True, id="rollback-no-op"),
        pytest.param(
            ROLLING,
            {"taskDefinition": ARN.format(2), "desiredCount": 4},
            None,
            False,
            id="count-not-yet",
        ),
        pytest.param(
            ROLLING,
            {"taskDefinition": ARN.format(2), "desiredCount": 2},
            None,
            True,
            id="count-too",
        ),
        pytest.param(
            STEADY, {"forceNewDeployment": True}, {"ecs-svc/1"}, False, id="forced-not-started"
        ),
        pytest.param(
            service(("ecs-svc/3", "PRIMARY", "1"), ("ecs-svc/1", "ACTIVE", "1")),
            {"forceNewDeployment": True},
            {"ecs-svc/1"},
            True,
            id="forced-started",
        ),
        pytest.param({"deployments": []}, {}, None, False, id="no-primary"),
    ],
)
def test_update_in_effect(
    described: dict[str, Any], params: dict[str, Any], earlier: set[str] | None, in_effect: bool
) -> None:
    assert update_in_effect(described, params, earlier) is in_effect


def run_task_target(run_task: str) -> Any:
    plan = parse_plan(
        "version: 1\ntargets:\n"
        f"  - {{cluster: prod, task_definition: migrate, image: 'app:1', run_task: {run_task}}}\n",
        environ={},
    )
    [target] = plan.targets
    return target


@pytest.mark.parametrize(
    ("run_task", "rerun"),
    [("true", True), ("{wait_for_success: true}", True), ("{rerun_unchanged: false}", False)],
)
def test_rerun_unchanged_is_a_run_task_option(run_task: str, rerun: bool) -> None:
    target = run_task_target(run_task)
    assert target.run_task
    assert target.rerun_unchanged is rerun


def test_rerun_unchanged_outside_run_task_says_where_it_goes() -> None:
    with pytest.raises(PlanError) as caught:
        parse_plan(
            "version: 1\ntargets:\n"
            "  - {cluster: prod, task_definition: m, image: 'a:1', rerun_unchanged: false}\n",
            source="plan.yaml",
            environ={},
        )
    assert "rerun_unchanged is a run_task option: write run_task: {rerun_unchanged: ...}" in str(
        caught.value
    )
