"""Which revisions --max-definitions may deregister, and when a one-off task succeeded."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_deploy_many.deploy.cleanup import family_of, revisions_to_deregister
from ecs_deploy_many.deploy.runtask import task_failure

P = "arn:aws:ecs:eu-west-1:123456789012:task-definition/"


def arns(family: str, *revisions: int) -> list[str]:
    return [f"{P}{family}:{r}" for r in revisions]


def test_family_of() -> None:
    assert family_of(f"{P}web-worker:12") == "web-worker"
    assert family_of("web:3") == "web"
    assert family_of("web") == "web"


@pytest.mark.parametrize(
    ("active", "keep", "protected", "expected"),
    [
        (arns("web", 1, 2, 3, 4), 2, set(), arns("web", 1, 2)),
        (arns("web", 3, 1, 4, 2), 2, set(), arns("web", 1, 2)),  # order from ECS is not trusted
        (arns("web", 1, 2), 5, set(), []),
        # exact family only: the original's prefix match pruned web-worker too
        (arns("web", 1, 2, 3) + arns("web-worker", 1, 2, 3), 1, set(), arns("web", 1, 2)),
        # never the revision running or the one a rollback would return to
        (arns("web", 1, 2, 3, 4), 1, set(arns("web", 2)), arns("web", 1, 3)),
    ],
)
def test_revisions_to_deregister(
    active: list[str], keep: int, protected: set[str], expected: list[str]
) -> None:
    assert revisions_to_deregister(active, family="web", keep=keep, protected=protected) == expected


def test_keep_0_keeps_every_revision() -> None:
    assert (
        revisions_to_deregister(arns("web", 1, 2, 3), family="web", keep=0, protected=set()) == []
    )


def test_keep_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="0 \\(keep all\\) or more"):
        revisions_to_deregister([], family="web", keep=-1, protected=set())


def stopped(
    *containers: dict[str, Any], stop_code: str = "EssentialContainerExited"
) -> dict[str, Any]:
    return {"lastStatus": "STOPPED", "stopCode": stop_code, "containers": list(containers)}


@pytest.mark.parametrize(
    ("task", "essential", "failure"),
    [
        (stopped({"name": "app", "exitCode": 0}), {"app": True}, None),
        (stopped({"name": "app", "exitCode": 3}), {"app": True}, "app exited with code 3"),
        # the original looked only at the first container
        (
            stopped({"name": "app", "exitCode": 0}, {"name": "sidecar", "exitCode": 1}),
            {"app": True, "sidecar": True},
            "sidecar exited with code 1",
        ),
        (
            stopped({"name": "app", "exitCode": 0}, {"name": "log", "exitCode": 137}),
            {"app": True, "log": False},
            None,
        ),
        (
            stopped({"name": "app", "exitCode": None, "reason": "CannotPullContainerError"}),
            {"app": True},
            "CannotPullContainerError",
        ),
        (
            {
                "stopCode": "TaskFailedToStart",
                "stoppedReason": "CannotPullContainerError: pull image manifest",
                "containers": [{"name": "app"}],
            },
            {"app": True},
            "failed to start: CannotPullContainerError",
        ),
    ],
)
def test_task_failure(
    task: dict[str, Any], essential: dict[str, bool], failure: str | None
) -> None:
    found = task_failure(task, essential)
    if failure is None:
        assert found is None
    else:
        assert found is not None
        assert failure in found


EXITED = "Essential container in task exited"


def exited(
    *containers: tuple[str, int | None],
    stop_code: str = "EssentialContainerExited",
    reason: str = EXITED,
    **container_reasons: str,
) -> dict[str, Any]:
    """A STOPPED task whose containers ended with these exit codes, in this order."""
    return {
        "lastStatus": "STOPPED",
        "stopCode": stop_code,
        "stoppedReason": reason,
        "containers": [
            {"name": name, "exitCode": code}
            | ({"reason": container_reasons[name]} if name in container_reasons else {})
            for name, code in containers
        ],
    }


@pytest.mark.parametrize(
    ("task", "essential", "failure"),
    [
        # helper exited 4, then ECS stopped main (SIGTERM): helper is to blame
        (
            exited(("main", 143), ("helper", 4)),
            {"main": True, "helper": True},
            "essential container helper exited with code 4"
            f" ({EXITED}; exit codes: main 143, helper 4)",
        ),
        # SIGKILL after the stop timeout is also ECS stopping it
        (
            exited(("main", 137), ("helper", 2), ("log", 143)),
            {"main": True, "helper": True, "log": False},
            "essential container helper exited with code 2"
            f" ({EXITED}; exit codes: main 137, helper 2, log 143 (not essential))",
        ),
        # an out-of-memory kill is 137 too, but ECS gives the container a reason
        (
            exited(("main", 137), ("helper", 143), main="OutOfMemoryError: Container killed"),
            {"main": True, "helper": True},
            "essential container main exited with code 137: OutOfMemoryError: Container killed"
            f" ({EXITED}; exit codes: main 137, helper 143)",
        ),
        # main finished, ECS stopped its essential sidecar: the sidecar's code fails it
        (
            exited(("main", 0), ("proxy", 143)),
            {"main": True, "proxy": True},
            "essential container proxy exited with code 143 after essential container main"
            f" exited with code 0 ({EXITED}; exit codes: main 0, proxy 143)",
        ),
        # stopped from outside: every container got SIGTERM, none is to blame
        (
            exited(("main", 143), ("helper", 143), stop_code="UserInitiated",
                   reason="Task stopped by user"),
            {"main": True, "helper": True},
            "task stopped (UserInitiated): Task stopped by user;"
            " exit codes: main 143, helper 143",
        ),
        (
            exited(("main", None), ("helper", 143), main="CannotStartContainerError: bad"),
            {"main": True, "helper": True},
            "essential container main has no exit code: CannotStartContainerError: bad"
            f" ({EXITED}; exit codes: main none, helper 143)",
        ),
    ],
)  # fmt: skip
def test_task_failure_blames_the_container_that_stopped_the_task(
    task: dict[str, Any], essential: dict[str, bool], failure: str
) -> None:
    assert task_failure(task, essential) == failure
