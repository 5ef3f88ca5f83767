"""The plan's ``schedule:``: when a run may deploy (release windows) and when never (freezes).

This module reads and checks the section; ``jobs.windows`` decides what it allows at a
given instant. Times are wall-clock times in an IANA time zone, checked with the
standard library's ``zoneinfo`` as the plan loads, like every cron expression, so a bad
zone or expression is a ``file:line`` error and never a surprise at deploy time.

    schedule:
      timezone: Europe/Berlin            # for every entry without its own
      windows:                           # none: always allowed (freezes still apply)
        - {days: mon-thu, start: "09:00", end: "17:00"}
        - {days: [fri], start: "22:00", end: "02:00", timezone: UTC}  # crosses midnight
      freezes:
        - {start: "0 18 * * 5", end: "0 8 * * 1", reason: weekend}     # recurring, cron
        - {from: 2026-12-20T00:00, until: 2027-01-04T08:00, reason: year end}  # one-off
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from ecs_deploy_many.plan.checks import INVALID, describe, fields, string
from ecs_deploy_many.plan.issues import Issues, KeyPath

__all__ = [
    "DAY_NAMES",
    "MINUTES_PER_DAY",
    "Freeze",
    "OneOffFreeze",
    "RecurringFreeze",
    "Schedule",
    "Window",
    "schedule",
]

DAY_NAMES: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Days as a window names them, in ``date.weekday()`` order."""
MINUTES_PER_DAY: Final = 24 * 60
_TIME = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])|24:00")
_CRON_FIELDS = 5


@dataclass(frozen=True)
class Window:
    """A release window: on each of ``days``, from ``start`` to ``end`` in ``zone``.

    Times are minutes after local midnight; an ``end`` at or before ``start`` is on the
    next day (the window crosses midnight), and ``days`` name the day it opens.
    """

    days: frozenset[int]
    start: int
    end: int
    zone: ZoneInfo

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start


@dataclass(frozen=True)
class RecurringFreeze:
    """A freeze from each time cron expression ``start`` fires until ``end`` next fires."""

    start: str
    end: str
    zone: ZoneInfo
    reason: str | None = None


@dataclass(frozen=True)
class OneOffFreeze:
    """A freeze from one wall-clock time until another, in ``zone``."""

    start: datetime
    """Naive: the wall-clock time in ``zone``."""
    end: datetime
    zone: ZoneInfo
    reason: str | None = None


Freeze = RecurringFreeze | OneOffFreeze


@dataclass(frozen=True)
class Schedule:
    """When a run may deploy: inside any window (or always, with none), never in a freeze."""

    zone: ZoneInfo
    """The zone messages show instants in: the schedule's ``timezone``, else the first
    entry's, else UTC."""
    windows: tuple[Window, ...] = ()
    freezes: tuple[Freeze, ...] = ()


def _refuse(message: str, path: KeyPath, issues: Issues) -> Any:
    issues.add(path, message)
    return INVALID


def timezone(value: Any, path: KeyPath, issues: Issues) -> Any:
    """An IANA zone name (``Europe/Berlin``), as ``zoneinfo`` knows it on this machine."""
    text = string(value, path, issues)
    if text is INVALID:
        return INVALID
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        return _refuse(
            f"unknown time zone {describe(text)}: use an IANA name such as Europe/Berlin,"
            " America/New_York or UTC",
            path,
            issues,
        )


def days(value: Any, path: KeyPath, issues: Issues) -> Any:
    """``mon-fri``, ``[mon, wed, fri-sun]`` or ``"sat,sun"``; a range may wrap (``fri-mon``)."""
    items = value if isinstance(value, list) else str(value).split(",")
    if isinstance(value, bool | int | float) or not items:
        return _refuse(f"expected days such as mon-fri, got {describe(value)}", path, issues)
    chosen: set[int] = set()
    for item in items:
        bounds = str(item).strip().lower().split("-")
        if len(bounds) > 2 or any(b not in DAY_NAMES for b in bounds):
            return _refuse(
                f"{describe(item)} is not a day or a range of days: use mon, tue, wed, thu,"
                " fri, sat, sun, or a range such as mon-fri",
                path,
                issues,
            )
        first, last = DAY_NAMES.index(bounds[0]), DAY_NAMES.index(bounds[-1])
        chosen.update(d % 7 for d in range(first, first + (last - first) % 7 + 1))
    return frozenset(chosen)


def clock_time(value: Any, path: KeyPath, issues: Issues) -> Any:
    """``"HH:MM"`` as minutes after midnight (``"24:00"``: the end of the day)."""
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 17:30 as the sexagesimal number 1050.
        return _refuse(
            f"expected a time such as '17:30' in quotes, got the number {value}"
            " (YAML reads 17:30 unquoted as a number)",
            path,
            issues,
        )
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return _refuse(f"expected a time as 'HH:MM', got {describe(value)}", path, issues)
    return MINUTES_PER_DAY if value == "24:00" else int(match[1]) * 60 + int(match[2])


def cron(value: Any, path: KeyPath, issues: Issues) -> Any:
    """A 5-field cron expression (minute hour day-of-month month day-of-week)."""
    text = string(value, path, issues)
    if text is INVALID:
        return INVALID
    if len(text.split()) != _CRON_FIELDS:
        return _refuse(
            f"expected a cron expression of 5 fields (minute hour day month weekday, such as"
            f" '0 18 * * fri'), got {describe(text)}",
            path,
            issues,
        )
    try:
        CronSim(text, datetime(2000, 1, 1))
    except CronSimError as error:
        return _refuse(f"bad cron expression {describe(text)}: {error}", path, issues)
    return text


def local_time(value: Any, path: KeyPath, issues: Issues) -> Any:
    """A wall-clock date and time (``2026-12-20T00:00``; a date alone is its midnight)."""
    moment: datetime | None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        try:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            moment = None
    if moment is None or moment.tzinfo is not None:
        return _refuse(
            f"expected a local date and time such as 2026-12-20T08:00 (the zone is the"
            f" entry's timezone), got {describe(value)}",
            path,
            issues,
        )
    return moment


_WINDOW = fields(
    {"days": days, "start": clock_time, "end": clock_time, "timezone": timezone},
    required=["days", "start", "end"],
)
_FREEZE_KEYS = {
    "start": cron,
    "end": cron,
    "from": local_time,
    "until": local_time,
    "timezone": timezone,
    "reason": string,
}
_FREEZE = fields(_FREEZE_KEYS)


def _entries(value: Any, path: KeyPath, issues: Issues) -> Any:
    """The list itself; each entry is checked on its own, once the zone is known."""
    if isinstance(value, list):
        return value
    return _refuse(f"expected a list, got {describe(value)}", path, issues)


_SCHEDULE = fields({"timezone": timezone, "windows": _entries, "freezes": _entries})


def schedule(value: Any, path: KeyPath, issues: Issues) -> Any:
    """The ``schedule:`` section as a ``Schedule``; INVALID when any part is wrong."""
    given = _SCHEDULE(value, path, issues)
    if given is INVALID:
        return INVALID
    default_zone = given.get("timezone")
    windows = [
        _window(_WINDOW(entry, where, issues), where, default_zone, issues)
        for where, entry in _each(given.get("windows"), (*path, "windows"))
    ]
    freezes = [
        _freeze(_FREEZE(entry, where, issues), where, default_zone, issues)
        for where, entry in _each(given.get("freezes"), (*path, "freezes"))
    ]
    if INVALID in (default_zone, given.get("windows"), given.get("freezes"), *windows, *freezes):
        return INVALID
    zones = [default_zone, *(entry.zone for entry in [*windows, *freezes])]
    return Schedule(next(filter(None, zones), ZoneInfo("UTC")), tuple(windows), tuple(freezes))


def _each(entries: Any, path: KeyPath) -> list[tuple[KeyPath, Any]]:
    listed = entries if isinstance(entries, list) else []
    return [((*path, i), entry) for i, entry in enumerate(listed)]


def _zone(entry: dict[str, Any], path: KeyPath, default: Any, issues: Issues) -> Any:
    zone = entry.get("timezone") or default
    if zone is None:
        return _refuse(
            "no time zone: give this entry a timezone, or the schedule one", path, issues
        )
    return zone


def _window(entry: Any, path: KeyPath, default_zone: Any, issues: Issues) -> Any:
    if not isinstance(entry, dict) or INVALID in entry.values():
        return INVALID
    zone = _zone(entry, path, default_zone, issues)
    start, end = entry["start"], entry["end"]
    if start == MINUTES_PER_DAY:
        return _refuse("a window cannot start at 24:00: write '00:00'", (*path, "start"), issues)
    if start == end:
        return _refuse(
            "start and end are the same time: for a whole day write start: '00:00', end: '24:00'",
            (*path, "end"),
            issues,
        )
    return INVALID if zone is INVALID else Window(entry["days"], start, end, zone)


def _freeze(entry: Any, path: KeyPath, default_zone: Any, issues: Issues) -> Any:
    if not isinstance(entry, dict) or INVALID in entry.values():
        return INVALID
    recurring, one_off = ("start", "end"), ("from", "until")
    kind = recurring if any(k in entry for k in recurring) else one_off
    other = one_off if kind is recurring else recurring
    mixed = [k for k in other if k in entry]
    if mixed:
        return _refuse(
            f"a freeze is either recurring (start and end: cron expressions) or one-off (from"
            f" and until: dates); this one has both kinds ({', '.join(mixed)})",
            path,
            issues,
        )
    missing = [k for k in kind if entry.get(k) is None]
    for key in missing:
        issues.add((*path, key), "required")
    zone = _zone(entry, path, default_zone, issues)
    if missing or zone is INVALID:
        return INVALID
    reason = entry.get("reason")
    if kind is recurring:
        return RecurringFreeze(entry["start"], entry["end"], zone, reason)
    if entry["until"] <= entry["from"]:
        return _refuse("must be after from", (*path, "until"), issues)
    return OneOffFreeze(entry["from"], entry["until"], zone, reason)
