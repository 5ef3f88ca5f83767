"""What counts as success, failure or an ECS rollback, decided from one DescribeServices answer."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_deploy_many.deploy.wait import Expectation, Verdict, judge

NEW = "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:2"
OLD = "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:1"


def deployment(
    id: str,
    status: str,
    task_definition: str,
    *,
    running: int = 2,
    desired: int = 2,
    state: str | None = "COMPLETED",
    reason: str = "",
) -> dict[str, Any]:
    d = {
        "id": id,
        "status": status,
        "taskDefinition": task_definition,
        "runningCount": running,
        "desiredCount": desired,
        "rolloutStateReason": reason,
    }
    if state is not None:
        d["rolloutState"] = state
    return d


def service(*deployments: dict[str, Any], breaker_rollback: bool = False) -> dict[str, Any]:
    return {
        "deployments": list(deployments),
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {"enable": breaker_rollback, "rollback": breaker_rollback}
        },
    }


EXPECT = Expectation("ecs-svc/2", NEW)

CASES = [
    ("missing service", None, EXPECT, Verdict.FAILED),
    (
        "completed, alone",
        service(deployment("ecs-svc/2", "PRIMARY", NEW)),
        EXPECT,
        Verdict.SUCCEEDED,
    ),
    (
        "no rolloutState reported (older ECS)",
        service(deployment("ecs-svc/2", "PRIMARY", NEW, state=None)),
        EXPECT,
        Verdict.SUCCEEDED,
    ),
    (
        "tasks still starting",
        service(
            deployment("ecs-svc/2", "PRIMARY", NEW, running=1, state="IN_PROGRESS"),
            deployment("ecs-svc/1", "ACTIVE", OLD),
        ),
        EXPECT,
        Verdict.WAITING,
    ),
    (
        "running but old deployment draining",
        service(
            deployment("ecs-svc/2", "PRIMARY", NEW, state="IN_PROGRESS"),
            deployment("ecs-svc/1", "ACTIVE", OLD, running=1),
        ),
        EXPECT,
        Verdict.WAITING,
    ),
    (
        "draining but deployments check skipped",
        service(
            deployment("ecs-svc/2", "PRIMARY", NEW, state="IN_PROGRESS"),
            deployment("ecs-svc/1", "ACTIVE", OLD, running=1),
        ),
        Expectation("ecs-svc/2", NEW, skip_deployments_check=True),
        Verdict.SUCCEEDED,
    ),
    (
        "alone but rollout state lags the counts",
        service(deployment("ecs-svc/2", "PRIMARY", NEW, state="IN_PROGRESS")),
        EXPECT,
        Verdict.WAITING,
    ),
    (
        "FAILED without breaker rollback",
        service(
            deployment("ecs-svc/2", "PRIMARY", NEW, running=0, state="FAILED", reason="tripped"),
            deployment("ecs-svc/1", "ACTIVE", OLD),
        ),
        EXPECT,
        Verdict.FAILED,
    ),
    (
        "FAILED with breaker rollback",
        service(
            deployment("ecs-svc/2", "PRIMARY", NEW, running=0, state="FAILED"),
            deployment("ecs-svc/1", "ACTIVE", OLD),
            breaker_rollback=True,
        ),
        EXPECT,
        Verdict.ROLLED_BACK_BY_ECS,
    ),
    (
        "the classic stable check passes here, we must not: PRIMARY back on the old revision",
        service(
            deployment(
                "ecs-svc/3",
                "PRIMARY",
                OLD,
                reason="ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/1.",
            )
        ),
        EXPECT,
        Verdict.ROLLED_BACK_BY_ECS,
    ),
    (
        "someone else deployed over us",
        service(deployment("ecs-svc/9", "PRIMARY", NEW)),
        EXPECT,
        Verdict.FAILED,
    ),
    (
        "desired 0 needs no tasks",
        service(deployment("ecs-svc/2", "PRIMARY", NEW, running=0, desired=0)),
        EXPECT,
        Verdict.SUCCEEDED,
    ),
]


@pytest.mark.parametrize(
    ("case", "described", "expect", "verdict"), CASES, ids=[c[0] for c in CASES]
)
def test_judge(case: str, described: Any, expect: Expectation, verdict: Verdict) -> None:
    assert judge(described, expect).verdict is verdict
