"""What counts as a regression while a wave bakes."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_deploy_many.deploy.bake import BakeProblem, bake_problem

NEW = "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:2"
OLD = "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:1"


def service(task_definition: str = NEW, **primary: Any) -> dict[str, Any]:
    deployment = {"status": "PRIMARY", "taskDefinition": task_definition, "runningCount": 2,
                  "desiredCount": 2, "rolloutState": "COMPLETED", **primary}  # fmt: skip
    return {"deployments": [deployment]}


@pytest.mark.parametrize(
    ("described", "problem"),
    [
        (service(), None),
        (None, BakeProblem("the service no longer exists")),
        ({"deployments": []}, BakeProblem("the service has no PRIMARY deployment")),
        (
            service(OLD, rolloutStateReason="ECS deployment circuit breaker: rolling back"),
            BakeProblem(
                f"the service moved to {OLD} (ECS deployment circuit breaker: rolling back)"
            ),
        ),
        (
            service(rolloutState="FAILED", rolloutStateReason="tasks failed to start."),
            BakeProblem("tasks failed to start."),
        ),
        (service(runningCount=1), BakeProblem("1/2 tasks running", transient=True)),
    ],
)
def test_bake_problem(described: dict[str, Any] | None, problem: BakeProblem | None) -> None:
    assert bake_problem(described, NEW) == problem
