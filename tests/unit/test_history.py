"""A target's history folded from its events: what resume and rollback start from."""

from __future__ import annotations

from ecs_deploy_many.core.events import EventName
from ecs_deploy_many.core.history import TargetHistory
from ecs_deploy_many.core.result import Status

OLD = "arn:aws:ecs:eu-west-1:123456789012:task-definition/api:4"
NEW = "arn:aws:ecs:eu-west-1:123456789012:task-definition/api:5"
CONFIG = {"minimumHealthyPercent": 100, "maximumPercent": 200}


def test_a_deploy_killed_after_its_update_went_out_says_where_it_stood() -> None:
    history = TargetHistory("prod/api")
    history.record(
        EventName.RESOLVED,
        "resolve",
        {"old_task_definition": OLD, "desired": 3, "deployment_configuration": CONFIG},
    )
    history.record(EventName.REGISTERED, "register", {"new_task_definition": NEW})
    assert not history.changed_service
    history.record(EventName.STEP_STARTED, "update", {})
    assert history.changed_service  # no answer recorded: ECS must be asked
    assert (history.old_task_definition, history.old_desired_count) == (OLD, 3)
    assert history.old_deployment_configuration == CONFIG
    assert (history.new_task_definition, history.deployment_id, history.finished) == (
        NEW,
        None,
        False,
    )


def test_a_rollback_keeps_the_revision_from_before_the_run() -> None:
    history = TargetHistory("prod/api")
    history.record(EventName.RESOLVED, "resolve", {"old_task_definition": OLD, "desired": 2})
    history.record(
        EventName.SERVICE_UPDATED,
        "update",
        {"deployment_id": "ecs-svc/1", "new_task_definition": NEW},
    )
    history.record(EventName.ROLLED_BACK, "rollback", {"to_task_definition": OLD})
    history.record(
        EventName.TARGET_FINISHED,
        "done",
        {"status": "rolled_back", "error": "circuit breaker", "deployment_id": "ecs-svc/1"},
    )
    assert history.old_task_definition == OLD
    assert history.rolled_back_to == OLD
    assert history.status is Status.ROLLED_BACK
    assert (history.deployment_id, history.new_task_definition) == ("ecs-svc/1", NEW)
