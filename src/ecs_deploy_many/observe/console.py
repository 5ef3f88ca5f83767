"""Log lines for a person at a terminal: the events one acts on, one short line each.

JSON lines carry every event with every fact, for machines. A console line is for a
person watching a run: the time, the target and what happened in words, cut to the
terminal's width. Without ``-v`` only what a person may act on is shown: a target
starting and finishing, rollbacks, ECS events that report trouble (each message once
per target), and anything at warning level or above. With ``-v`` every event is shown
with all its fields, uncut.
"""

from __future__ import annotations

import re
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

__all__ = ["ConsoleLines", "ecs_event_matters", "format_duration", "short_revision"]

_MILESTONES = frozenset(
    {
        "target_started",
        "target_finished",
        "rollback_started",
        "rolled_back",
        "rolled_back_by_ecs",
        "bake_regressed",
        "alarm_gate_failed",
        "approved",
    }
)
_LOUD = frozenset({"warning", "error", "critical"})
# ECS service events worth a person's attention; the routine ones ("has started 2
# tasks", "has reached a steady state", "deployment completed") stay in the JSON log.
_TROUBLE = re.compile(
    r"unable|fail|unhealthy|error|roll|circuit|insufficient|throttl|denied|timed out|"
    r"due to|exceed",
    re.IGNORECASE,
)
_SERVICE_PREFIX = re.compile(r"^\(service [^)]*\) ")
# What a console line says about its target already; the JSON line keeps these.
_IDENTITY = ("cluster", "service", "task_definition", "region", "wave", "step")
_COLOURS = {"warning": "33", "error": "31", "critical": "31", "ok": "32"}
_WELL = ("succeeded", "unchanged")


def ecs_event_matters(message: str) -> bool:
    """Whether an ECS service event reports trouble (placement, health, rollback...)."""
    return bool(_TROUBLE.search(message))


def short_revision(arn: Any) -> str:
    """``family:revision`` of a task-definition ARN; anything else as it is."""
    return str(arn).rsplit("/", 1)[-1]


def format_duration(seconds: float | None) -> str:
    """``4.2s``, ``42s``, ``2m 05s``, ``1h 02m``: precise when short, brief when long."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


class ConsoleLines:
    """A structlog processor pair: ``select`` drops routine lines, the call renders one.

    ``width`` gives the terminal's width when lines should fit it (None: never cut).
    """

    def __init__(
        self, *, verbose: bool, colors: bool, width: Callable[[], int | None] = lambda: None
    ) -> None:
        self._verbose = verbose
        self._colors = colors
        self._width = width
        self._ecs_events_shown: set[tuple[str, str]] = set()

    def select(
        self, logger: Any, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """Drop what a person need not see (never with ``-v``)."""
        if self._verbose or event_dict.get("level") in _LOUD:
            return event_dict
        event = event_dict.get("event")
        if event == "ecs_event":
            seen = (str(event_dict.get("target", "")), str(event_dict.get("message", "")))
            if ecs_event_matters(seen[1]) and seen not in self._ecs_events_shown:
                self._ecs_events_shown.add(seen)
                return event_dict
            raise structlog.DropEvent
        if event in _MILESTONES or "target" not in event_dict:
            return event_dict
        raise structlog.DropEvent

    def __call__(self, logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> str:
        fields = dict(event_dict)
        stamp = str(fields.pop("timestamp", ""))
        time = stamp[11:19] if len(stamp) >= 19 else stamp
        level = str(fields.pop("level", method))
        target = fields.pop("target", None)
        exception = fields.pop("exception", None)
        if self._verbose:
            text = _verbose_text(fields, level)
        else:
            for key in _IDENTITY:
                fields.pop(key, None)
            text = _text(fields, level)
        parts: list[tuple[str, str | None]] = [
            (f"{time} ", "2"),
            (f"{target}  " if target else "", "1"),
        ]
        width = None if self._verbose else self._width()
        used = sum(len(part) for part, _ in parts)
        if width is not None and used + len(text) > width:
            text = text[: max(0, width - used - 1)] + "…"
        parts.append((text, _colour(level, event_dict)))
        line = "".join(self._paint(part, style) for part, style in parts)
        return f"{line}\n{exception}" if exception else line

    def _paint(self, text: str, style: str | None) -> str:
        return f"\x1b[{style}m{text}\x1b[0m" if self._colors and style and text else text


def _colour(level: str, event_dict: MutableMapping[str, Any]) -> str | None:
    """Red for errors, yellow for warnings, green for a target that finished well."""
    if level in _COLOURS:
        return _COLOURS[level]
    finished = event_dict.get("event") == "target_finished"
    return _COLOURS["ok"] if finished and event_dict.get("status") in _WELL else None


def _text(fields: dict[str, Any], level: str) -> str:
    """What happened, in words, with the few facts that matter."""
    event = str(fields.pop("event", ""))
    if event == "target_started":
        return "started"
    if event == "target_finished":
        return _finished(fields)
    if event == "rollback_started":
        return f"rolling back to {short_revision(fields.get('to_task_definition'))}: " + str(
            fields.get("reason", "")
        )
    if event == "rolled_back":
        return f"rolled back to {short_revision(fields.get('to_task_definition'))}"
    if event == "rolled_back_by_ecs":
        reason = str(fields.get("reason", ""))
        # a service deployment's verdict says so itself: "ECS rolled back: alarm ..."
        if reason.startswith("ECS rolled back"):
            return reason
        return f"ECS rolled the deployment back: {reason}"
    if event == "deployment_stopped":
        return f"stopped {fields.get('service_deployment_arn')}: ECS rolls it back"
    if event == "service_deployment" and level in _LOUD:
        return f"{level}: {fields.get('reason', '')}"
    if event == "timeout_too_short":
        return f"warning: {fields.get('reason', '')}"
    if event in ("bake_regressed", "alarm_gate_failed"):
        return str(fields.get("reason", "failed during the bake"))
    if event == "approval_waiting":
        return (
            f"waits for its wave's approval: {fields.get('approve_with')} "
            f"(within {format_duration(fields.get('timeout_s'))})"
        )
    if event == "approved":
        return f"its wave was approved by {fields.get('by')}"
    if event == "ecs_event":
        return "ECS: " + _SERVICE_PREFIX.sub("", str(fields.get("message", "")))
    if event == "unexpected_error":
        return f"unexpected error: {fields.get('error', '')} (traceback below)"
    words = event.replace("_", " ")
    if level in _LOUD:
        words = f"{level}: {words}"
    return " ".join([words, *(f"{key}={_value(value)}" for key, value in fields.items())])


def _finished(fields: dict[str, Any]) -> str:
    status = str(fields.get("status", "finished")).replace("_", " ")
    elapsed = fields.get("elapsed_s")
    took = format_duration(float(elapsed)) if isinstance(elapsed, int | float) else ""
    text = f"{status} in {took}" if took else status
    error = fields.get("error")
    if error:
        return f"{text}: {' '.join(str(error).split())}"
    new = fields.get("new_task_definition")
    return f"{text} ({short_revision(new)})" if new else text


def _verbose_text(fields: dict[str, Any], level: str) -> str:
    event = str(fields.pop("event", ""))
    if level in _LOUD:
        event = f"{level}: {event}"
    return " ".join([event, *(f"{key}={_value(value)}" for key, value in fields.items())])


def _value(value: Any) -> str:
    text = str(value)
    return repr(text) if not text or any(c.isspace() for c in text) else text
