"""Structured logs: structlog set up once by the CLI, fed by the run's events.

Every line carries the target's identity (target, cluster, service or task_definition,
region, wave), the step, the event name, a UTC timestamp and the facts of the step.
Secrets never reach a line: values of secret-looking keys are masked and every known
secret string (access keys, session tokens, task-definition environment values) is
replaced wherever it appears.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal, TextIO

import structlog

from ecs_deploy_many.observe.events import Observer, TargetEvent

__all__ = ["LogFormat", "Redactor", "configure_logging", "log_observer"]

LogFormat = Literal["auto", "json", "console"]
MASK = "***"
SECRET_KEY = re.compile(r"secret|password|token|credential|access_key", re.IGNORECASE)
# Long enough not to mask ordinary words that happen to equal a short secret.
MIN_SECRET_LENGTH = 4


class Redactor:
    """A structlog processor that masks secrets in every value of an event dict."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Remember more secret strings (e.g. a task definition's environment values)."""
        self._secrets.update(s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH)

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, MASK)
            return value
        if isinstance(value, dict):
            return {k: MASK if _secret_key(k) else self.scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub(v) for v in value]
        return value

    def __call__(
        self, logger: Any, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in event_dict.items():
            event_dict[key] = MASK if _secret_key(key) and value else self.scrub(value)
        return event_dict


def _secret_key(key: Any) -> bool:
    return isinstance(key, str) and bool(SECRET_KEY.search(key))


def configure_logging(
    log_format: LogFormat = "auto",
    *,
    verbose: bool = False,
    redactor: Redactor | None = None,
    stream: TextIO | None = None,
) -> None:
    """Configure structlog for the process; only the CLI calls this."""
    out = stream or sys.stderr
    console = log_format == "console" or (log_format == "auto" and out.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=out.isatty())
        if console
        else structlog.processors.JSONRenderer(sort_keys=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            redactor or Redactor(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(10 if verbose else 20),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=True,
    )


def target_fields(event: TargetEvent) -> dict[str, Any]:
    """The identity fields every line about a target carries."""
    target = event.target
    fields: dict[str, Any] = {"target": target.name, "cluster": target.cluster}
    if target.service:
        fields["service"] = target.service
    else:
        fields["task_definition"] = target.task_definition
    fields["region"] = target.scope.region
    fields["wave"] = target.wave
    fields["step"] = event.step
    return fields


def log_observer() -> Observer:
    """An observer writing one structlog line per event."""
    log = structlog.get_logger("ecs_deploy_many")

    def observe(event: TargetEvent) -> None:
        facts = {k: v for k, v in event.facts.items() if v is not None}
        getattr(log, event.level)(event.event, **target_fields(event), **facts)

    return observe
