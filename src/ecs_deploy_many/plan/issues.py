"""Collecting plan problems with their place, so the user sees all of them in one run."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NoReturn

from ecs_deploy_many.core.errors import PlanError, PlanIssue

__all__ = ["Issues", "KeyPath", "format_path"]

KeyPath = tuple[str | int, ...]
"""Where a value sits in the plan: ``("targets", 2, "desired_count")``."""

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def format_path(path: KeyPath) -> str:
    """``targets[2].desired_count``; keys that would read ambiguously are quoted."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


class Issues:
    """An ordered set of problems; lines come from the document unless given."""

    def __init__(self, source: str, lines: Mapping[KeyPath, int] | None = None) -> None:
        self.source = source
        self.lines: Mapping[KeyPath, int] = lines if lines is not None else {}
        self._found: dict[PlanIssue, None] = {}

    def add(self, path: KeyPath, message: str, *, line: int | None = None) -> None:
        """Record a problem at ``path``; a missing key takes its parent's line."""
        if line is None:
            line = self.line_of(path)
        self._found[PlanIssue(self.source, line, format_path(path), message)] = None

    def line_of(self, path: KeyPath) -> int | None:
        """The line of ``path``, or of the nearest enclosing value that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    def __bool__(self) -> bool:
        return bool(self._found)

    def raise_if_any(self) -> None:
        """Raise one PlanError with every problem, in file order, if there is any."""
        if self._found:
            self.fail()

    def fail(self) -> NoReturn:
        """Raise the problems found so far: the plan cannot be read any further."""
        raise PlanError(sorted(self._found, key=lambda issue: issue.line or 0))
