"""Structured logs: structlog set up once by the CLI, fed by the run's events.

Every line about a target carries its identity (target, cluster, service or
task_definition, region, wave), the step, the event name, the level, a UTC timestamp and
the facts of the step; the README's Logs section lists the names, which are stable.
Secrets never reach a line: values of secret-looking keys are masked and every known
secret string (access keys, session tokens, a task definition's secret references and
secret-looking environment values) is replaced wherever it appears.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import structlog

from ecs_deploy_many.clock import Clock, real_clock
from ecs_deploy_many.observe.console import ConsoleLines
from ecs_deploy_many.observe.events import Observer, TargetEvent

__all__ = [
    "LogFormat",
    "Redactor",
    "configure_logging",
    "log_observer",
    "run_redactor",
    "task_definition_secrets",
]

LogFormat = Literal["auto", "json", "console"]
MASK = "***"
SECRET_KEY = re.compile(r"secret|password|token|credential|access_key", re.IGNORECASE)
# Environment variable names whose values are secrets: DB_PASSWORD, API_KEY, AUTH_TOKEN.
SECRET_VARIABLE = re.compile(r"secret|passw|token|credential|private|dsn|key$", re.IGNORECASE)
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


def task_definition_secrets(definition: Mapping[str, Any]) -> list[str]:
    """The strings of a task definition (a RegisterTaskDefinition body) never to show.

    Every ``secrets`` and log ``secretOptions`` reference, private registry credentials,
    and the value of each environment variable whose name looks secret. Other environment
    values are configuration (``prod``, ``eu-west-1``, ``info``) that also names clusters,
    regions and levels: masking those would blank the identity of every line.
    """
    found: list[Any] = []
    for container in definition.get("containerDefinitions") or []:
        log_options = (container.get("logConfiguration") or {}).get("secretOptions") or []
        for reference in [*(container.get("secrets") or []), *log_options]:
            found.append(reference.get("valueFrom"))
        found.append((container.get("repositoryCredentials") or {}).get("credentialsParameter"))
        for variable in container.get("environment") or []:
            if SECRET_VARIABLE.search(str(variable.get("name", ""))):
                found.append(variable.get("value"))
    # A number where ECS wants a string is echoed by the client's error ("value: 5432").
    return [str(v) for v in found if isinstance(v, str | int | float) and not isinstance(v, bool)]


def run_redactor(
    environ: Mapping[str, str],
    *,
    definitions: Iterable[Mapping[str, Any]] = (),
    keys: Iterable[str] = (),
) -> Redactor:
    """A redactor for one run: the AWS secrets in ``environ``, ``keys`` given as flags,
    and the secrets of the task definitions the run was handed as files."""
    redactor = Redactor(keys)
    redactor.add([environ.get("AWS_SECRET_ACCESS_KEY", ""), environ.get("AWS_SESSION_TOKEN", "")])
    for definition in definitions:
        redactor.add(task_definition_secrets(definition))
    return redactor


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
            # Tracebacks are text before the redactor, which masks secrets in them too.
            structlog.processors.format_exc_info,
            redactor or Redactor(),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(10 if verbose else 20),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=True,
    )


def _stamp(clock: Clock) -> Any:
    """A processor adding ``timestamp``: when the event said it happened, else now."""

    def stamp(
        logger: Any, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        at = event_dict.pop(_AT, None)
        moment = datetime.fromtimestamp(clock.now() if at is None else at, UTC)
        event_dict["timestamp"] = moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
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
