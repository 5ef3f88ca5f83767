"""Options both commands share, spelled once, and what they set up."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sized
from typing import TYPE_CHECKING, Any, TypeVar

import asyncclick as click

if TYPE_CHECKING:
    from rich.console import Console

    from ecs_deploy_many.core.clock import Clock
    from ecs_deploy_many.core.redact import Redactor
    from ecs_deploy_many.observe.log import LogFormat

__all__ = ["count", "log_options", "say", "start_logging", "stop_deployments_option"]

F = TypeVar("F", bound=Callable[..., Any])


def log_options(command: F) -> F:
    """``--log-format`` and ``-v/--verbose``."""
    command = click.option(
        "-v",
        "--verbose",
        is_flag=True,
        help="Log every event with all its facts, and AWS request detail.",
    )(command)
    return click.option(
        "--log-format",
        type=click.Choice(["auto", "json", "console"]),
        default="auto",
        show_default=True,
        help="Log lines on stderr; auto is console on a terminal, else JSON. Console lines "
        "are short and show what a person acts on (every event with -v); JSON lines carry "
        "every event and fact. On a terminal, and unless json, a live progress view sits "
        "below them.",
    )(command)


def stop_deployments_option(command: F) -> F:
    """``--stop-deployments-on-interrupt``: never the default."""
    return click.option(
        "--stop-deployments-on-interrupt",
        is_flag=True,
        help="When SIGINT/SIGTERM interrupts a deployment still under way, have ECS stop "
        "it and roll it back (StopServiceDeployment, stopType ROLLBACK). Without it, an "
        "interrupted deployment goes on in ECS.",
    )(command)


def start_logging(
    options: Mapping[str, Any], redactor: Redactor, clock: Clock | None = None
) -> Console | None:
    """Configure logs as ``log_options`` asked; return the live view's console, if any.

    When there is a live view, log lines print through its console, above it. Lines are
    stamped on ``clock``, the run's (the real clock when not given).
    """
    from ecs_deploy_many.observe.log import configure_logging
    from ecs_deploy_many.observe.progress import log_stream, progress_console

    log_format: LogFormat = options["log_format"]
    console = progress_console(log_format)
    configure_logging(
        log_format,
        verbose=options["verbose"],
        redactor=redactor,
        stream=log_stream(console) if console else None,
        clock=clock,
    )
    return console


def say(message: str) -> None:
    """A line on stderr while the run goes on.

    ``sys.stderr`` as it is now: while the live view is up it is rich's proxy, which
    prints above the view (``err=True`` would reach the terminal behind it and tear it).
    """
    click.echo(message, file=sys.stderr)


def count(items: Sized, noun: str) -> str:
    """``1 target``, ``2 targets``."""
    return f"{len(items)} {noun}{'s' * (len(items) != 1)}"
