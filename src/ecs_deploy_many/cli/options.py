"""Options both commands share, spelled once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import asyncclick as click

__all__ = ["log_options"]

F = TypeVar("F", bound=Callable[..., Any])


def log_options(command: F) -> F:
    """``--log-format`` and ``-v/--verbose``."""
    command = click.option("-v", "--verbose", is_flag=True, help="Log AWS request detail.")(command)
    return click.option(
        "--log-format",
        type=click.Choice(["auto", "json", "console"]),
        default="auto",
        show_default=True,
        help="Log lines on stderr; auto is console on a terminal, else JSON.",
    )(command)
