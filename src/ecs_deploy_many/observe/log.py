"""Structured logs: structlog set up once by the CLI, fed by the run's events.

Every line about a target carries its identity (target, cluster, service or
task_definition, region, wave), the step, the event name, the level, a UTC timestamp and
the facts of the step; the README's Logs section lists the names, which are stable.
Secrets never reach a line: every line passes through ``core.redact.Redactor``.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

import structlog

from ecs_deploy_many.core.clock import Clock, real_clock, utc_iso
from ecs_deploy_many.core.events import Observer, TargetEvent
from ecs_deploy_many.core.redact import Redactor
from ecs_deploy_many.observe.console import ConsoleLines

__all__ = ["LogFormat", "configure_logging", "log_observer"]

LogFormat = Literal["auto", "json", "console"]

_AT = "_at"
"""The key by which an event's own time reaches the time stamp."""


def configure_logging(
    log_format: LogFormat = "auto",
    *,
    verbose: bool = False,
    redactor: Redactor | None = None,
    stream: TextIO | None = None,
    clock: Clock | None = None,
) -> None:
    """Configure structlog for the process; only the CLI calls this.

    Lines are stamped on ``clock`` (the run's: simulated in a rehearsal), and a target's
    events at the moment the run's clock gave them, so logs and reports agree.
    """
    out = stream or sys.stderr
    renderer: Any = structlog.processors.JSONRenderer(sort_keys=False)
    select: list[Any] = []
    if log_format == "console" or (log_format == "auto" and out.isatty()):
        lines = ConsoleLines(
            verbose=verbose, colors=out.isatty(), width=lambda: _terminal_width(out)
        )
        renderer, select = lines, [lines.select]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            *select,
            _stamp(clock or real_clock()),
            redactor or Redactor(),  # it formats tracebacks first, and masks them too
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(10 if verbose else 20),
        logger_factory=structlog.PrintLoggerFactory(out),
        # Not cached: a module's logger would keep the first configuration's stream for
        # good, and a process that configures again (a test, an embedding program)
        # would log to a stream that may be closed by then.
        cache_logger_on_first_use=False,
    )


def _stamp(clock: Clock) -> Any:
    """A processor adding ``timestamp``: when the event said it happened, else now."""

    def stamp(
        logger: Any, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        at = event_dict.pop(_AT, None)
        event_dict["timestamp"] = utc_iso(
            clock.now() if at is None else at, timespec="microseconds"
        )
        return event_dict

    return stamp


def _terminal_width(out: TextIO) -> int | None:
    """The width of the terminal ``out`` writes to; None off a terminal."""
    if not out.isatty():
        return None
    width = getattr(out, "width", None)  # the live view's console knows its own
    if width:
        return int(width)
    try:
        return os.get_terminal_size(out.fileno()).columns
    except (OSError, ValueError):  # no descriptor, or not a terminal after all
        return shutil.get_terminal_size().columns


def target_fields(event: TargetEvent) -> dict[str, Any]:
    """The identity fields of a line about a target; an unknown one is left out, not null."""
    target = event.target
    kind = "service" if target.service else "task_definition"
    fields = {
        "target": target.name,
        "cluster": target.cluster,
        kind: target.service or target.task_definition,
        "region": target.scope.region,
        "wave": target.wave,
        "step": event.step,
    }
    return {key: value for key, value in fields.items() if value is not None}


def log_observer() -> Observer:
    """An observer writing one structlog line per event."""
    log = structlog.get_logger("ecs_deploy_many")

    def observe(event: TargetEvent) -> None:
        fields = target_fields(event)
        # Unknown facts are left out, not null; identity wins over a fact of the same name.
        fields.update((k, v) for k, v in event.facts.items() if v is not None and k not in fields)
        getattr(log, event.level)(event.event, **fields, **{_AT: event.at})

    return observe
