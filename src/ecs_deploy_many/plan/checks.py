"""Small composable checks that turn plain YAML data into typed values or located issues.

A check takes ``(value, path, issues)`` and returns the value to use, or ``INVALID``
after recording why. Checks never stop at the first problem: a mapping check runs every
field, so one load reports everything wrong with a plan.

A ``null`` value of a known key is not checked: in a plan, null means "not set here",
and the caller decides what that falls back to. Anywhere else (a list item, a container's
image) null is just a wrong value.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from ecs_deploy_many.plan.issues import Issues, KeyPath

__all__ = [
    "INT32_MAX",
    "INVALID",
    "Check",
    "Interpolated",
    "boolean",
    "describe",
    "did_you_mean",
    "fields",
    "integer",
    "list_of",
    "mapping_of",
    "number",
    "one_of",
    "string",
]


class _Invalid:
    """Marks a value that was given but rejected, so later checks do not pile on."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Final = _Invalid()


class Interpolated(str):
    """A string produced by ``${VAR}`` interpolation.

    Environment values are text, so where a number or a boolean is expected such a
    string is read as one; anywhere else it is just the string it spells.
    """

    def as_number(self) -> int | float | None:
        for kind in (int, float):
            try:
                return kind(self.strip())
            except ValueError:
                pass
        return None

    def as_boolean(self) -> bool | None:
        return {"true": True, "false": False}.get(self.strip().lower())


Check = Callable[[Any, KeyPath, Issues], Any]

_LISTED = 8
"""An unknown key in a mapping with at most this many keys lists them all."""

INT32_MAX: Final = 2**31 - 1
"""ECS's integers are 32-bit; no count or percentage in a plan goes beyond."""

_SHOWN = 40
"""Longer values are cut in messages: a 400-digit number need not be echoed whole."""


def describe(value: object) -> str:
    """How a wrong value reads in a message: ``'three'``, ``true``, ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        text = repr(value)
        return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}... ({len(text):,} characters)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the closest known word (ignoring case), or nothing."""
    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f"; did you mean {by_lower[close[0]]!r}?" if close else ""


def _run(check: Check, value: Any, path: KeyPath, issues: Issues) -> Any:
    """Apply ``check``, unless the value was already rejected while reading the YAML."""
    return value if value is INVALID else check(value, path, issues)


def _wrong(expected: str, value: Any, path: KeyPath, issues: Issues) -> _Invalid:
    issues.add(path, f"expected {expected}, got {describe(value)}")
    return INVALID


def string(value: Any, path: KeyPath, issues: Issues) -> Any:
    if not isinstance(value, str):
        return _wrong("a string", value, path, issues)
    if not value:
        issues.add(path, "must not be empty")
        return INVALID
    return str(value)


def boolean(value: Any, path: KeyPath, issues: Issues) -> Any:
    if isinstance(value, Interpolated) and value.as_boolean() is not None:
        return value.as_boolean()
    return value if isinstance(value, bool) else _wrong("true or false", value, path, issues)


def integer(minimum: int | None = None, maximum: int | None = None) -> Check:
    """Whole numbers only (``true`` is not 1), optionally within bounds, and at most INT32_MAX."""
    expected = _bounded("an integer", minimum, maximum)
    ceiling = INT32_MAX if maximum is None else min(maximum, INT32_MAX)

    def check(value: Any, path: KeyPath, issues: Issues) -> Any:
        if isinstance(value, Interpolated) and isinstance(value.as_number(), int):
            value = value.as_number()
        if isinstance(value, bool) or not isinstance(value, int):
            return _wrong(expected, value, path, issues)
        if minimum is not None and value < minimum:
            return _wrong(expected, value, path, issues)
        if value > ceiling:
            return _wrong(_bounded("an integer", minimum, ceiling), value, path, issues)
        return value

    return check


def number(minimum: float = 0.0, *, inclusive: bool = False, unit: str = "") -> Check:
    """A finite number, greater than (or equal to) ``minimum``; returned as float."""
    kind = f"a number of {unit}" if unit else "a number"
    expected = f"{kind} {'>=' if inclusive else '>'} {minimum:g}"

    def check(value: Any, path: KeyPath, issues: Issues) -> Any:
        if isinstance(value, Interpolated) and value.as_number() is not None:
            value = value.as_number()
        amount = _finite(value)
        if amount is None or amount < minimum or (amount == minimum and not inclusive):
            return _wrong(expected, value, path, issues)
        return amount

    return check


def _finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (not a boolean), else None.

    An integer too large for a float (``1`` and 400 zeros) is not one.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        as_float = float(value)
    except OverflowError:
        return None
    return as_float if math.isfinite(as_float) else None


def one_of(*choices: str) -> Check:
    def check(value: Any, path: KeyPath, issues: Issues) -> Any:
        if value in choices:
            return str(value)
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        issues.add(path, f"expected one of {', '.join(choices)}, got {describe(value)}{hint}")
        return INVALID

    return check


def list_of(item: Check) -> Check:
    """A list whose every item passes ``item``; INVALID if any does not."""

    def check(value: Any, path: KeyPath, issues: Issues) -> Any:
        if not isinstance(value, list):
            return _wrong("a list", value, path, issues)
        items = [_run(item, v, (*path, i), issues) for i, v in enumerate(value)]
        return INVALID if any(v is INVALID for v in items) else items

    return check


def mapping_of(item: Check) -> Check:
    """A mapping with free keys (container names, ...) whose values pass ``item``."""

    def check(value: Any, path: KeyPath, issues: Issues) -> Any:
        if not isinstance(value, dict):
            return _wrong("a mapping", value, path, issues)
        items = {k: _run(item, v, (*path, k), issues) for k, v in value.items()}
        return INVALID if any(v is INVALID for v in items.values()) else items

    return check


def fields(
    table: Mapping[str, Check],
    *,
    required: Iterable[str] = (),
    hints: Mapping[str, str] | None = None,
) -> Callable[[Any, KeyPath, Issues], Any]:
    """A mapping with known keys: returns the keys given, each checked (null kept as None).

    An unknown key is reported with the closest known one, or with ``hints[key]`` when a
    known mistake deserves its own explanation.
    """
    needed = tuple(required)

    def check(value: Any, path: KeyPath, issues: Issues) -> Any:
        if not isinstance(value, dict):
            return _wrong("a mapping", value, path, issues)
        result: dict[str, Any] = {}
        for key, item in value.items():
            where = (*path, key)
            if key in table:
                result[key] = None if item is None else _run(table[key], item, where, issues)
            elif hints and key in hints:
                issues.add(where, hints[key])
            else:
                hint = did_you_mean(key, table)
                if not hint and len(table) <= _LISTED:
                    hint = f"; known keys: {', '.join(table)}"
                issues.add(where, f"unknown key{hint}")
        for key in needed:
            if result.get(key) is None:
                issues.add((*path, key), "required")
                result[key] = INVALID
        return result

    return check


def _bounded(kind: str, minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"{kind} from {minimum} to {maximum}"
    if minimum is not None:
        return f"{kind} >= {minimum}"
    return kind if maximum is None else f"{kind} <= {maximum}"
