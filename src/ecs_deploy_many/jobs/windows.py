"""Release windows and freezes: may a run deploy at this instant, and until when?

Pure decisions on the plan's ``schedule`` (``plan.schedule``) at an aware instant, and
one watcher that halts a run when its window closes or a freeze begins.

Wall-clock times (a window's start and end, a one-off freeze's dates) become instants in
their zone by one rule, the one cron follows on Debian (and so in the cron library that
times recurring freezes):

- A time the clocks skip (02:30 on a spring-forward night in Europe/Berlin) means the
  moment they jump (03:00 local): a window opening at 02:30 opens at 03:00, one closing
  at 02:30 closes at 03:00.
- A time the clocks show twice (02:30 on a fall-back night) means its first occurrence:
  a window closing at 02:30 closes the first time the clock reads 02:30.

So on those nights a window is an hour shorter or longer than on other days, exactly as
the wall clock on the office's wall says, and no instant is ever in doubt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from cronsim import CronSim

from ecs_deploy_many.core.clock import Clock
from ecs_deploy_many.plan.schedule import (
    MINUTES_PER_DAY,
    OneOffFreeze,
    RecurringFreeze,
    Schedule,
    Window,
)

__all__ = ["Decision", "close_on_schedule", "decide", "local_instant", "shown"]

_SEARCH_STEPS: Final = 1000
"""How many windows and freezes the search for the next opening steps over before it
gives up (a recurring freeze that always covers every window never opens)."""
_CLOCK_CHANGE: Final = timedelta(hours=3)
"""More than any clock change of a time zone (daylight saving moves clocks by 2 hours at most)."""
_WEEK_AND_A_DAY: Final = timedelta(days=8)


@dataclass(frozen=True)
class Decision:
    """What the schedule says at ``at``.

    Allowed: ``closes_at`` is the first instant it no longer is (None: never). Not
    allowed: ``why`` says what forbids it and ``opens_at`` when it is next allowed
    (None: not in the foreseeable future).
    """

    at: datetime
    allowed: bool
    zone: ZoneInfo
    why: str = ""
    opens_at: datetime | None = None
    closes_at: datetime | None = None
    freeze_begins: bool = False
    """Allowed: what ends it at ``closes_at`` is a freeze, not the window closing."""
    freeze_reason: str | None = None

    def __str__(self) -> str:
        if self.allowed:
            if self.closes_at is None:
                return "allowed (no window closes and no freeze begins)"
            closing = "a freeze begins" if self.freeze_begins else "the release window closes"
            reason = f": {self.freeze_reason}" if self.freeze_reason else ""
            return f"allowed until {shown(self.closes_at, self.zone)} ({closing}{reason})"
        return f"not allowed: {self.why}; {self.next_opening}"

    @property
    def next_opening(self) -> str:
        if self.opens_at is None:
            return "no opening in the foreseeable future"
        return f"next opening at {shown(self.opens_at, self.zone)}"

    @property
    def closed(self) -> str:
        """Why a run that was allowed until ``closes_at`` stopped: a halt's reason."""
        assert self.closes_at is not None
        when = shown(self.closes_at, self.zone)
        if not self.freeze_begins:
            return f"the release window closed at {when}"
        return f"a freeze began at {when}" + (
            f": {self.freeze_reason}" if self.freeze_reason else ""
        )


def shown(instant: datetime, zone: ZoneInfo) -> str:
    """``Fri 2026-03-27 18:00 CET``: an instant as people in ``zone`` read it."""
    return instant.astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z")


def decide(schedule: Schedule, at: datetime | float) -> Decision:
    """Whether ``schedule`` allows deploying at ``at`` (aware, or epoch seconds)."""
    now = _utc(at)
    in_force = [(freeze, *_active(freeze, now)) for freeze in schedule.freezes]
    blocking = [(freeze, start, end) for freeze, start, end in in_force if start is not None]
    in_window = not schedule.windows or _window_close(schedule.windows, now) is not None
    if not blocking and in_window:
        return _allowed(schedule, now)
    if blocking:
        freeze, start, end = blocking[0]
        assert start is not None
        why = f"inside {_freeze_text(freeze, start, end, schedule.zone)}"
    else:
        why = "outside every release window"
    return Decision(now, False, schedule.zone, why=why, opens_at=_next_opening(schedule, now))


def local_instant(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """The instant (UTC) a wall clock in ``zone`` reads ``minutes`` after ``day``'s
    midnight (past 24:00: on later days), by the rule in this module's docstring."""
    day += timedelta(days=minutes // MINUTES_PER_DAY)
    minutes %= MINUTES_PER_DAY
    return _instant(datetime.combine(day, time(minutes // 60, minutes % 60)), zone)


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """A naive wall-clock time in ``zone`` as a UTC instant (first occurrence; a skipped
    time is the moment of the jump)."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # Skipped: fold=1 reads it with the offset after the jump, which lands before the
    # jump; fold=0 with the one before, which lands after it. The jump lies between.
    before = int(wall.replace(tzinfo=zone, fold=1).astimezone(UTC).timestamp())
    after = int(first.timestamp())
    offset_after = datetime.fromtimestamp(after, zone).utcoffset()
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == offset_after:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, UTC)


def _utc(at: datetime | float) -> datetime:
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError("a schedule decides at an aware instant, not a naive time")
        return at.astimezone(UTC)
    return datetime.fromtimestamp(at, UTC)


# -- windows -------------------------------------------------------------------------


def _occurrences(window: Window, around: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The window's openings, as [open, close) in UTC, from the local day before
    ``around`` (a window crossing midnight may still be open) to a week and a day after."""
    first = around.astimezone(window.zone).date() - timedelta(days=1)
    for day in (first + timedelta(days=n) for n in range(9)):
        if day.weekday() not in window.days:
            continue
        end = window.end + MINUTES_PER_DAY * window.crosses_midnight
        opens = local_instant(day, window.start, window.zone)
        closes = local_instant(day, end, window.zone)
        if opens < closes:  # both inside one skipped hour: no window that night
            yield opens, closes


_NEVER: Final = datetime.max.replace(tzinfo=UTC)


def _window_close(windows: tuple[Window, ...], now: datetime) -> datetime | None:
    """When the windows open at ``now`` close, following windows that overlap or abut;
    None when none is open, ``_NEVER`` when they cover every hour of the week."""
    closes: datetime | None = None
    moment = now
    for _ in range(_SEARCH_STEPS):
        ends = [c for w in windows for o, c in _occurrences(w, moment) if o <= moment < c]
        if not ends:
            return closes
        closes = moment = max(ends)
        if closes - now > _WEEK_AND_A_DAY:  # the weekly pattern covers every hour
            return _NEVER
    return _NEVER


def _next_window(windows: tuple[Window, ...], now: datetime) -> datetime | None:
    opens = [o for w in windows for o, _ in _occurrences(w, now) if o > now]
    return min(opens, default=None)


# -- freezes -------------------------------------------------------------------------


def _active(
    freeze: RecurringFreeze | OneOffFreeze, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """(start, end) of the freeze in force at ``now``, or (None, None) when none is.

    A recurring freeze is in force from each time ``start`` fires until ``end`` next
    fires; an end that never fires again leaves it in force (end None).
    """
    if isinstance(freeze, OneOffFreeze):
        start, end = _instant(freeze.start, freeze.zone), _instant(freeze.end, freeze.zone)
        return (start, end) if start <= now < end else (None, None)
    started = _fired(freeze.start, freeze.zone, now, reverse=True)
    ended = _fired(freeze.end, freeze.zone, now, reverse=True)
    if started is None or (ended is not None and ended >= started):
        return None, None
    return started, _fired(freeze.end, freeze.zone, now)


def _next_freeze(freeze: RecurringFreeze | OneOffFreeze, now: datetime) -> datetime | None:
    """When the freeze next begins after ``now`` (None: never again)."""
    if isinstance(freeze, OneOffFreeze):
        start = _instant(freeze.start, freeze.zone)
        return start if start > now else None
    return _fired(freeze.start, freeze.zone, now)


def _fired(
    expression: str, zone: ZoneInfo, now: datetime, *, reverse: bool = False
) -> datetime | None:
    """The cron expression's last firing at or before ``now`` (``reverse``), or its
    first after ``now``; None when there is none within the library's 50 years."""
    # The library starts from a wall time and ignores which pass of a repeated hour it
    # is, so it may begin on the wrong side of ``now``: start a little late going back,
    # and skip whatever lies on the wrong side.
    start = now.replace(microsecond=0) + (_CLOCK_CHANGE if reverse else timedelta(0))
    for fired in CronSim(expression, start.astimezone(zone), reverse=reverse):
        instant = fired.astimezone(UTC)
        if instant <= now if reverse else instant > now:
            return instant
    return None


def _freeze_text(
    freeze: RecurringFreeze | OneOffFreeze, start: datetime, end: datetime | None, zone: ZoneInfo
) -> str:
    until = f"until {shown(end, zone)}" if end is not None else "with no end"
    text = f"the freeze from {shown(start, zone)} {until}"
    return f"{text}: {freeze.reason}" if freeze.reason else text


# -- decisions -----------------------------------------------------------------------


def _allowed(schedule: Schedule, now: datetime) -> Decision:
    """Allowed at ``now``: until the windows close or a freeze begins, whichever first."""
    closes = _window_close(schedule.windows, now) if schedule.windows else None
    closes = None if closes == _NEVER else closes
    freeze: RecurringFreeze | OneOffFreeze | None = None
    for candidate in schedule.freezes:
        begins = _next_freeze(candidate, now)
        if begins is not None and (closes is None or begins < closes):
            closes, freeze = begins, candidate
    return Decision(
        now,
        True,
        schedule.zone,
        closes_at=closes,
        freeze_begins=freeze is not None,
        freeze_reason=freeze.reason if freeze is not None else None,
    )


def _next_opening(schedule: Schedule, now: datetime) -> datetime | None:
    """The first instant after ``now`` at which the schedule allows deploying."""
    moment: datetime | None = now
    for _ in range(_SEARCH_STEPS):
        if moment is None:
            return None
        ends = [_active(f, moment) for f in schedule.freezes]
        in_force = [(s, e) for s, e in ends if s is not None]
        if in_force:
            if any(e is None for _, e in in_force):
                return None
            moment = max(e for _, e in in_force if e is not None)
        elif schedule.windows and _window_close(schedule.windows, moment) is None:
            moment = _next_window(schedule.windows, moment)
        else:
            return moment
    return None


async def close_on_schedule(schedule: Schedule, clock: Clock, halt: Callable[[str], None]) -> None:
    """Call ``halt`` with the reason once the schedule stops allowing what it allows now
    (its window closes, a freeze begins); return at once if it allows nothing now."""
    decision = decide(schedule, clock.now())
    while decision.allowed and decision.closes_at is not None:
        await clock.sleep(decision.closes_at.timestamp() - clock.now())
        later = decide(schedule, clock.now())
        if not later.allowed:
            halt(decision.closed)
            return
        decision = later
