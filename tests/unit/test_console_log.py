"""Log lines: the short console line a person reads, and the stamps and fields of every line."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from tests.clocks import ManualClock

from ecs_deploy_many.core.events import TargetEvent
from ecs_deploy_many.core.redact import Redactor
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.observe.console import ConsoleLines
from ecs_deploy_many.observe.log import configure_logging, log_observer, target_fields

ARN = "arn:aws:ecs:eu-west-1:123456789012:task-definition"
API = {"target": "prod/api", "cluster": "prod", "service": "api", "region": "eu-west-1",
       "wave": "rest", "step": "wait"}  # fmt: skip
STAMP = {"level": "info", "timestamp": "2026-11-27T21:23:57.186808Z"}


def line(event: str, *, verbose: bool = False, width: int | None = None, **fields: Any) -> str:
    """The console line of one event, or "" when the console leaves it out."""
    lines = ConsoleLines(verbose=verbose, colors=False, width=lambda: width)
    event_dict = {**API, **fields, "event": event, **STAMP, **fields}
    try:
        kept = lines.select(None, "info", event_dict)
    except structlog.DropEvent:
        return ""
    return lines(None, "info", kept)


@pytest.mark.parametrize(
    ("event", "fields", "shown"),
    [
        ("target_started", {}, "prod/api  started"),
        ("target_finished",
         {"status": "succeeded", "elapsed_s": 125.2, "new_task_definition": f"{ARN}/api:7"},
         "prod/api  succeeded in 2m 05s (api:7)"),
        ("target_finished",
         {"status": "rolled_back", "elapsed_s": 295, "error": "no progress\nfor 180 s",
          "level": "error"},
         "prod/api  rolled back in 4m 55s: no progress for 180 s"),
        ("target_finished", {"status": "skipped", "error": "dependency migrate failed",
                             "level": "warning"},
         "prod/api  skipped: dependency migrate failed"),
        ("rollback_started",
         {"reason": "no progress for 180 s", "to_task_definition": f"{ARN}/api:6",
          "level": "warning"},
         "prod/api  rolling back to api:6: no progress for 180 s"),
        ("rolled_back", {"to_task_definition": f"{ARN}/api:6", "level": "warning"},
         "prod/api  rolled back to api:6"),
        ("rolled_back_by_ecs", {"reason": "circuit breaker", "level": "error"},
         "prod/api  ECS rolled the deployment back: circuit breaker"),
        ("rolled_back_by_ecs",
         {"reason": "ECS rolled back: alarm api-5xx in ALARM", "level": "error"},
         "prod/api  ECS rolled back: alarm api-5xx in ALARM"),
        ("deployment_stopped",
         {"deployment_id": "ecs-svc/1", "service_deployment_arn": "arn:sd/1", "level": "warning"},
         "prod/api  stopped arn:sd/1: ECS rolls it back"),
        ("service_deployment",
         {"service_deployment_arn": None, "level": "warning",
          "reason": "ECS refused to list service deployments (...): judged by the service's "
                    "deployments array"},
         "prod/api  warning: ECS refused to list service deployments (...): judged by the "
         "service's deployments array"),
        ("timeout_too_short",
         {"timeout_s": 90, "least_s": 300, "level": "warning",
          "reason": "the timeout of 90 s is shorter than the 300 s this service's deployment "
                    "waits on purpose"},
         "prod/api  warning: the timeout of 90 s is shorter than the 300 s this service's "
         "deployment waits on purpose"),
        ("alarm_gate_failed",
         {"wave": "rest", "reason": "alarm gate: api-5xx in ALARM", "level": "error"},
         "prod/api  alarm gate: api-5xx in ALARM"),
        ("approval_waiting",
         {"timeout_s": 7200, "level": "warning",
          "approve_with": "ecs-deploy-many approve 20261202-0700-ab12 rest"},
         "prod/api  waits for its wave's approval: ecs-deploy-many approve 20261202-0700-ab12 "
         "rest (within 2h 00m)"),
        ("approved", {"by": "alice@ci"}, "prod/api  its wave was approved by alice@ci"),
        ("ecs_event", {"message": "(service api) was unable to place a task. Reason: none."},
         "prod/api  ECS: was unable to place a task. Reason: none."),
        ("revision_kept", {"family": "api", "reason": "in use by prod/web", "level": "warning"},
         "prod/api  warning: revision kept family=api reason='in use by prod/web'"),
        # what the live view or the summary says already: only in JSON and with -v
        ("progress", {"running": 1, "desired": 2}, ""),
        ("registered", {"new_task_definition": f"{ARN}/api:7"}, ""),
        ("service_updated", {"deployment_id": "ecs-svc/1"}, ""),
        ("ecs_event", {"message": "(service api) has started 2 tasks: (task 1) (task 2)."}, ""),
        ("ecs_event", {"message": "(service api) has reached a steady state."}, ""),
    ],
)  # fmt: skip
def test_a_console_line_says_what_happened_in_words(
    event: str, fields: dict[str, Any], shown: str
) -> None:
    assert line(event, **fields) == (f"21:23:57 {shown}" if shown else "")


def test_a_trouble_message_of_ecs_is_shown_once_per_target() -> None:
    lines = ConsoleLines(verbose=False, colors=False)
    message = "(service api) was unable to place a task."

    def shown(target: str) -> bool:
        event = {**API, "target": target, "message": message, "event": "ecs_event", **STAMP}
        try:
            lines.select(None, "info", event)
        except structlog.DropEvent:
            return False
        return True

    assert [shown("prod/api"), shown("prod/api"), shown("prod/web")] == [True, False, True]


def test_with_verbose_every_event_and_field_is_shown_whole() -> None:
    text = line("progress", verbose=True, width=40, running=1, desired=2, state="1/2 running")
    assert text == (
        "21:23:57 prod/api  progress cluster=prod service=api region=eu-west-1 wave=rest "
        "step=wait running=1 desired=2 state='1/2 running'"
    )


def test_a_line_is_cut_to_the_terminal_width() -> None:
    text = line("ecs_event", width=60, message="(service api) was unable to place a task " * 5)
    assert text == "21:23:57 prod/api  ECS: was unable to place a task (service…"
    assert len(text) == 60


def test_identity_leaves_out_what_is_not_known() -> None:
    """`ecs-deploy` has no wave, and its region may come from the environment."""
    target = Target(name="web", cluster="prod", service="web")
    fields = target_fields(TargetEvent(target, "wait", "progress", 0.0))
    assert fields == {"target": "web", "cluster": "prod", "service": "web", "step": "wait"}


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    yield out
    structlog.reset_defaults()


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def test_lines_are_stamped_on_the_run_clock(json_lines: io.StringIO) -> None:
    """A rehearsal's clock runs ahead of the wall clock; its logs and reports agree."""
    clock = ManualClock(start=2_000_000_000.0)
    configure_logging("json", stream=json_lines, clock=clock)  # type: ignore[arg-type]
    target = Target(name="web", cluster="prod", service="web", wave="all")
    log_observer()(TargetEvent(target, "wait", "progress", 2_000_000_123.5))
    structlog.get_logger("test").info("no_target")
    first, second = (json.loads(text) for text in json_lines.getvalue().splitlines())
    assert first["timestamp"] == iso(2_000_000_123.5) == "2033-05-18T03:35:23.500000Z"
    assert list(first)[-3:] == ["event", "level", "timestamp"]
    assert second["timestamp"] == iso(2_000_000_000.0)


def test_a_traceback_is_masked_like_every_other_value(json_lines: io.StringIO) -> None:
    configure_logging("json", stream=json_lines, redactor=Redactor(["hunter2-password"]))
    try:
        raise ValueError("bad value hunter2-password")
    except ValueError as error:
        structlog.get_logger("test").error("unexpected_error", exc_info=error)
    logged = json.loads(json_lines.getvalue())
    assert "ValueError: bad value ***" in logged["exception"]
    assert "hunter2" not in json_lines.getvalue()
