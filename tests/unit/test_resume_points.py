"""Where a target picks up: how a service's deployment stands, what a history says the
earlier run did, and the one decision per target a resumed run makes from it."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_deploy_many.core.events import EventName
from ecs_deploy_many.core.history import TargetHistory
from ecs_deploy_many.core.result import Status
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.deploy.resume import Start, kept_result, resumption
from ecs_deploy_many.deploy.wait import Rollout, revision_replaced, rollout_of

OLD = "arn:aws:ecs:eu-west-1:123456789012:task-definition/api:4"
NEW = "arn:aws:ecs:eu-west-1:123456789012:task-definition/api:5"
SERVICE = Target("prod/api", cluster="prod", service="api", image="example/api:2")
TASK_DEFINITION = Target("migrate", cluster="prod", task_definition="migrate", image="m:2")


def deployment(status: str, state: str | None, running: int = 2, **extra: Any) -> dict[str, Any]:
    found = {"status": status, "runningCount": running, "desiredCount": 2, **extra}
    if state is not None:
        found["rolloutState"] = state
    return found


@pytest.mark.parametrize(
    ("deployments", "rollout"),
    [
        ([deployment("PRIMARY", "COMPLETED")], Rollout.STEADY),
        ([deployment("PRIMARY", None)], Rollout.STEADY),
        ([deployment("PRIMARY", None, running=1)], Rollout.IN_PROGRESS),
        ([deployment("PRIMARY", "IN_PROGRESS", running=0)], Rollout.IN_PROGRESS),
        (
            [deployment("PRIMARY", "COMPLETED"), deployment("ACTIVE", "COMPLETED", running=1)],
            Rollout.IN_PROGRESS,
        ),
        (
            [deployment("PRIMARY", "FAILED", running=0), deployment("ACTIVE", "COMPLETED")],
            Rollout.FAILED,
        ),
        ([], Rollout.FAILED),
    ],
    ids=["completed", "no-state", "no-state-short", "in-progress", "draining", "failed", "none"],
)
def test_only_one_completed_deployment_is_steady(
    deployments: list[dict[str, Any]], rollout: Rollout
) -> None:
    assert rollout_of({"deployments": deployments}) is rollout


def test_the_revision_a_deployment_replaces_is_the_completed_active_ones() -> None:
    service = {
        "deployments": [
            deployment("PRIMARY", "IN_PROGRESS", taskDefinition=NEW),
            deployment("ACTIVE", "FAILED", taskDefinition="api:3"),
            deployment("ACTIVE", "COMPLETED", taskDefinition=OLD),
        ]
    }
    assert revision_replaced(service) == OLD
    alone = {"deployments": [deployment("PRIMARY", "IN_PROGRESS", taskDefinition=NEW)]}
    assert revision_replaced(alone) is None


def history(*events: tuple[EventName, str, dict[str, Any]]) -> TargetHistory:
    folded = TargetHistory("prod/api")
    for event, step, facts in events:
        folded.record(event, step, facts)
    return folded


RESOLVED = (
    EventName.RESOLVED,
    "resolve",
    {"old_task_definition": OLD, "desired": 2, "deployment_ids": ["ecs-svc/1"]},
)
REGISTERED = (EventName.REGISTERED, "register", {"new_task_definition": NEW})
UPDATING = (EventName.STEP_STARTED, "update", {})
UPDATED = (
    EventName.SERVICE_UPDATED,
    "update",
    {"deployment_id": "ecs-svc/2", "new_task_definition": NEW},
)
ROLLING_BACK = (
    EventName.ROLLBACK_STARTED,
    "rollback",
    {"reason": "no progress", "to_task_definition": OLD},
)


def finished(status: str) -> tuple[EventName, str, dict[str, Any]]:
    return EventName.TARGET_FINISHED, "done", {"status": status}


@pytest.mark.parametrize(
    ("events", "start"),
    [
        ((), Start.FRESH),
        ((RESOLVED,), Start.FRESH),
        ((RESOLVED, REGISTERED), Start.REUSE),
        ((RESOLVED, REGISTERED, UPDATING), Start.RECONCILE),
        ((RESOLVED, REGISTERED, UPDATING, UPDATED), Start.ATTACH),
        ((RESOLVED, REGISTERED, UPDATING, UPDATED, finished("interrupted")), Start.ATTACH),
        ((RESOLVED, REGISTERED, UPDATING, UPDATED, finished("succeeded")), Start.KEEP),
        ((RESOLVED, finished("unchanged")), Start.KEEP),
        ((RESOLVED, finished("skipped")), Start.FRESH),
        ((RESOLVED, REGISTERED, UPDATING, UPDATED, ROLLING_BACK), Start.ROLLBACK),
        ((RESOLVED, UPDATED, ROLLING_BACK, finished("interrupted")), Start.ROLLBACK),
        # a bake's rollback begins after the target finished
        ((RESOLVED, UPDATED, finished("succeeded"), ROLLING_BACK), Start.ROLLBACK),
        ((RESOLVED, UPDATED, ROLLING_BACK, finished("failed")), Start.KEEP),
        (
            (
                RESOLVED,
                UPDATED,
                ROLLING_BACK,
                (EventName.ROLLED_BACK, "rollback", {"to_task_definition": OLD}),
                finished("rolled_back"),
            ),
            Start.KEEP,
        ),
    ],
)
def test_each_target_starts_where_its_history_left_it(
    events: tuple[tuple[EventName, str, dict[str, Any]], ...], start: Start
) -> None:
    assert resumption(SERVICE, history(*events) if events else None).start is start


def test_a_task_definition_target_has_no_deployment_to_follow() -> None:
    registered = history(RESOLVED, REGISTERED)
    assert resumption(TASK_DEFINITION, registered).start is Start.FRESH
    done = history(RESOLVED, REGISTERED, finished("succeeded"))
    assert resumption(TASK_DEFINITION, done).start is Start.KEEP


def test_only_targets_that_may_have_changed_their_service_are_in_flight() -> None:
    in_flight = {
        name: resumption(SERVICE, history(*events)).in_flight
        for name, events in {
            "reuse": (RESOLVED, REGISTERED),
            "reconcile": (RESOLVED, REGISTERED, UPDATING),
            "attach": (RESOLVED, UPDATED),
            "rollback": (RESOLVED, UPDATED, ROLLING_BACK),
        }.items()
    }
    assert in_flight == {"reuse": False, "reconcile": True, "attach": True, "rollback": True}


def test_attaching_records_the_deployment_and_what_a_rollback_restores() -> None:
    attached = history(
        RESOLVED,
        (
            EventName.ATTACHED,
            "render",
            {"deployment_id": "ecs-svc/9", "new_task_definition": NEW, "old_task_definition": None},
        ),
    )
    assert (attached.deployment_id, attached.new_task_definition) == ("ecs-svc/9", NEW)
    assert attached.old_task_definition is None  # nothing known to return to
    assert attached.deployments_before == ("ecs-svc/1",)
    assert attached.changed_service


def test_a_kept_result_is_the_history_s_outcome() -> None:
    done = history(RESOLVED, REGISTERED, UPDATING, UPDATED, finished("succeeded"))
    result = kept_result(SERVICE, done)
    assert result.status is Status.SUCCEEDED
    assert (result.old_task_definition, result.old_desired_count) == (OLD, 2)
    assert (result.new_task_definition, result.deployment_id) == (NEW, "ecs-svc/2")
