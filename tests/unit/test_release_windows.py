"""Release windows and freezes: the ``schedule:`` grammar, and decisions at fixed instants.

Instants are written in UTC; the comments say what the local wall clock reads. The DST
nights: Europe/Berlin springs forward on 2026-03-29 (02:00 CET -> 03:00 CEST, 01:00Z)
and falls back on 2026-10-25 (03:00 CEST -> 02:00 CET, 01:00Z); America/New_York on
2026-03-08 (02:00 EST -> 03:00 EDT, 07:00Z) and 2026-11-01 (02:00 EDT -> 01:00 EST, 06:00Z).
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import anyio
import pytest

from ecs_deploy_many.core.clock import ScaledClock
from ecs_deploy_many.core.errors import PlanError
from ecs_deploy_many.jobs.windows import close_on_schedule, decide
from ecs_deploy_many.plan import parse_plan
from ecs_deploy_many.plan.schedule import Schedule

HEAD = 'version: 1\ntargets: [{cluster: c, service: s, image: "app:1"}]\nschedule:\n'


def schedule(body: str) -> Schedule:
    plan = parse_plan(HEAD + textwrap.indent(textwrap.dedent(body), "  "), environ={})
    assert plan.schedule is not None
    return plan.schedule


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


BERLIN_OFFICE = """
timezone: Europe/Berlin
windows:
  - {days: mon-fri, start: "09:00", end: "17:00"}
"""

CASES = [
    # -- one window, ordinary days -------------------------------------------------
    pytest.param(
        BERLIN_OFFICE,
        "2026-12-02T10:00",  # Wed 11:00 CET
        "allowed until Wed 2026-12-02 17:00 CET (the release window closes)",
        id="inside-a-window",
    ),
    pytest.param(
        BERLIN_OFFICE,
        "2026-12-02T04:00",  # Wed 05:00 CET
        "not allowed: outside every release window; next opening at Wed 2026-12-02 09:00 CET",
        id="before-the-window",
    ),
    pytest.param(
        BERLIN_OFFICE,
        "2026-12-04T16:00",  # Fri 17:00 CET: the end is not inside
        "not allowed: outside every release window; next opening at Mon 2026-12-07 09:00 CET",
        id="at-the-end-over-the-weekend",
    ),
    pytest.param(
        BERLIN_OFFICE,
        "2026-12-07T08:00",  # Mon 09:00 CET: the start is inside
        "allowed until Mon 2026-12-07 17:00 CET (the release window closes)",
        id="at-the-start",
    ),
    # -- Europe/Berlin springs forward: 02:00-03:00 never happens -------------------
    pytest.param(
        "windows: [{days: sun, start: '02:30', end: '04:00', timezone: Europe/Berlin}]",
        "2026-03-29T00:59",  # 01:59 CET
        "not allowed: outside every release window; next opening at Sun 2026-03-29 03:00 CEST",
        id="berlin-spring-a-start-in-the-gap-opens-at-the-jump",
    ),
    pytest.param(
        "windows: [{days: sun, start: '02:30', end: '04:00', timezone: Europe/Berlin}]",
        "2026-03-29T01:00",  # 03:00 CEST
        "allowed until Sun 2026-03-29 04:00 CEST (the release window closes)",
        id="berlin-spring-open-from-the-jump",
    ),
    pytest.param(
        "windows: [{days: sun, start: '01:00', end: '02:30', timezone: Europe/Berlin}]",
        "2026-03-29T00:30",  # 01:30 CET
        "allowed until Sun 2026-03-29 03:00 CEST (the release window closes)",
        id="berlin-spring-an-end-in-the-gap-closes-at-the-jump",
    ),
    pytest.param(
        "windows: [{days: sun, start: '02:10', end: '02:50', timezone: Europe/Berlin}]",
        "2026-03-29T00:30",  # the whole window lies in the gap: none that night
        "not allowed: outside every release window; next opening at Sun 2026-04-05 02:10 CEST",
        id="berlin-spring-a-window-inside-the-gap-does-not-happen",
    ),
    pytest.param(
        "windows: [{days: sat, start: '20:00', end: '08:00', timezone: Europe/Berlin}]",
        "2026-03-29T05:59",  # Sun 07:59 CEST: the night was an hour shorter
        "allowed until Sun 2026-03-29 08:00 CEST (the release window closes)",
        id="berlin-spring-a-window-across-midnight-and-the-gap",
    ),
    # -- Europe/Berlin falls back: 02:00-03:00 happens twice ------------------------
    pytest.param(
        "windows: [{days: sun, start: '00:00', end: '02:30', timezone: Europe/Berlin}]",
        "2026-10-25T00:15",  # 02:15 CEST, the first time
        "allowed until Sun 2026-10-25 02:30 CEST (the release window closes)",
        id="berlin-fall-an-end-in-the-repeated-hour-is-the-first",
    ),
    pytest.param(
        "windows: [{days: sun, start: '00:00', end: '02:30', timezone: Europe/Berlin}]",
        "2026-10-25T01:15",  # 02:15 CET, the second time: the window has closed
        "not allowed: outside every release window; next opening at Sun 2026-11-01 00:00 CET",
        id="berlin-fall-the-second-pass-does-not-reopen",
    ),
    pytest.param(
        "windows: [{days: sun, start: '02:30', end: '04:00', timezone: Europe/Berlin}]",
        "2026-10-24T23:00",  # 01:00 CEST
        "not allowed: outside every release window; next opening at Sun 2026-10-25 02:30 CEST",
        id="berlin-fall-a-start-in-the-repeated-hour-is-the-first",
    ),
    pytest.param(
        "windows: [{days: sun, start: '02:30', end: '04:00', timezone: Europe/Berlin}]",
        "2026-10-25T01:45",  # 02:45 CET, the second pass: still open, 2.5 hours long
        "allowed until Sun 2026-10-25 04:00 CET (the release window closes)",
        id="berlin-fall-open-through-the-second-pass",
    ),
    # -- America/New_York --------------------------------------------------------------
    pytest.param(
        "windows: [{days: sun, start: '02:15', end: '03:30', timezone: America/New_York}]",
        "2026-03-08T06:30",  # 01:30 EST
        "not allowed: outside every release window; next opening at Sun 2026-03-08 03:00 EDT",
        id="new-york-spring-a-start-in-the-gap-opens-at-the-jump",
    ),
    pytest.param(
        "windows: [{days: mon-fri, start: '09:00', end: '17:00', timezone: America/New_York}]",
        "2026-03-06T23:00",  # Fri 18:00 EST; Monday is on EDT: 13:00Z, not 14:00Z
        "not allowed: outside every release window; next opening at Mon 2026-03-09 09:00 EDT",
        id="new-york-spring-next-opening-across-the-change",
    ),
    pytest.param(
        "windows: [{days: sun, start: '01:30', end: '02:00', timezone: America/New_York}]",
        "2026-11-01T06:15",  # 01:15 EST, the second pass: open since the first 01:30
        "allowed until Sun 2026-11-01 02:00 EST (the release window closes)",
        id="new-york-fall-open-through-the-repeated-hour",
    ),
    pytest.param(
        "windows: [{days: sun, start: '01:30', end: '02:00', timezone: America/New_York}]",
        "2026-11-01T05:15",  # 01:15 EDT, the first pass: not yet open
        "not allowed: outside every release window; next opening at Sun 2026-11-01 01:30 EDT",
        id="new-york-fall-opens-at-the-first-pass",
    ),
    # -- windows across midnight, several windows ---------------------------------------
    pytest.param(
        "windows: [{days: fri, start: '22:00', end: '02:00', timezone: UTC}]",
        "2026-12-05T01:00",  # Sat 01:00: opened Friday
        "allowed until Sat 2026-12-05 02:00 UTC (the release window closes)",
        id="across-midnight-open-after-midnight",
    ),
    pytest.param(
        "windows: [{days: fri, start: '22:00', end: '02:00', timezone: UTC}]",
        "2026-12-05T03:00",
        "not allowed: outside every release window; next opening at Fri 2026-12-11 22:00 UTC",
        id="across-midnight-closed",
    ),
    pytest.param(
        "windows: [{days: sat, start: '22:00', end: '02:00', timezone: UTC}]",
        "2026-12-05T01:00",  # Sat 01:00: Friday opened no window
        "not allowed: outside every release window; next opening at Sat 2026-12-05 22:00 UTC",
        id="across-midnight-days-name-the-opening-day",
    ),
    pytest.param(
        """
        timezone: Europe/Berlin
        windows:
          - {days: mon, start: "09:00", end: "12:00"}
          - {days: mon, start: "12:00", end: "15:00"}
          - {days: mon, start: "14:00", end: "16:00"}
          - {days: tue, start: "10:00", end: "11:00", timezone: America/New_York}
        """,
        "2026-12-07T09:00",  # Mon 10:00 CET
        "allowed until Mon 2026-12-07 16:00 CET (the release window closes)",
        id="several-windows-abutting-and-overlapping-close-together",
    ),
    pytest.param(
        """
        timezone: Europe/Berlin
        windows:
          - {days: mon, start: "09:00", end: "12:00"}
          - {days: tue, start: "10:00", end: "11:00", timezone: America/New_York}
        """,
        "2026-12-07T12:00",  # Mon 13:00 CET; Tue 10:00 EST is 16:00 CET
        "not allowed: outside every release window; next opening at Tue 2026-12-08 16:00 CET",
        id="several-windows-in-several-zones",
    ),
    pytest.param(
        "windows: [{days: mon-sun, start: '00:00', end: '24:00', timezone: UTC}]",
        "2026-12-07T23:59",
        "allowed (no window closes and no freeze begins)",
        id="whole-days-every-day-never-close",
    ),
    # -- freezes -----------------------------------------------------------------------
    pytest.param(
        "timezone: UTC",
        "2026-12-07T23:59",
        "allowed (no window closes and no freeze begins)",
        id="no-windows-no-freezes",
    ),
    pytest.param(
        BERLIN_OFFICE
        + "freezes: [{from: 2026-12-02T12:00, until: 2026-12-02T14:00, reason: board demo}]",
        "2026-12-02T09:00",  # Wed 10:00 CET
        "allowed until Wed 2026-12-02 12:00 CET (a freeze begins: board demo)",
        id="a-freeze-inside-a-window-closes-it",
    ),
    pytest.param(
        BERLIN_OFFICE
        + "freezes: [{from: 2026-12-02T12:00, until: 2026-12-02T14:00, reason: board demo}]",
        "2026-12-02T12:00",  # Wed 13:00 CET
        "not allowed: inside the freeze from Wed 2026-12-02 12:00 CET until Wed 2026-12-02"
        " 14:00 CET: board demo; next opening at Wed 2026-12-02 14:00 CET",
        id="inside-a-freeze-inside-a-window",
    ),
    pytest.param(
        BERLIN_OFFICE
        + "freezes: [{from: 2026-12-02T16:00, until: 2026-12-03T10:00, reason: incident}]",
        "2026-12-02T15:30",  # Wed 16:30 CET: the freeze outlasts the window
        "not allowed: inside the freeze from Wed 2026-12-02 16:00 CET until Thu 2026-12-03"
        " 10:00 CET: incident; next opening at Thu 2026-12-03 10:00 CET",
        id="a-freeze-overlapping-the-window-end",
    ),
    pytest.param(
        BERLIN_OFFICE
        + "freezes: [{from: 2026-12-18T18:00, until: 2027-01-04T08:00, reason: year end}]",
        "2026-12-21T10:00",  # Mon, within the window's hours
        "not allowed: inside the freeze from Fri 2026-12-18 18:00 CET until Mon 2027-01-04"
        " 08:00 CET: year end; next opening at Mon 2027-01-04 09:00 CET",
        id="a-freeze-ending-outside-a-window-opens-with-the-next-window",
    ),
    pytest.param(
        "freezes: [{start: '0 18 * * fri', end: '0 8 * * mon', timezone: Europe/Berlin}]",
        "2026-12-06T12:00",  # Sun
        "not allowed: inside the freeze from Fri 2026-12-04 18:00 CET until Mon 2026-12-07"
        " 08:00 CET; next opening at Mon 2026-12-07 08:00 CET",
        id="a-recurring-freeze-without-a-reason",
    ),
    pytest.param(
        """
        timezone: Europe/Berlin
        freezes: [{start: '0 18 * * fri', end: '0 8 * * mon', reason: weekend}]
        """,
        "2026-12-04T16:59",  # Fri 17:59 CET
        "allowed until Fri 2026-12-04 18:00 CET (a freeze begins: weekend)",
        id="a-recurring-freeze-about-to-begin",
    ),
    pytest.param(
        """
        timezone: Europe/Berlin
        freezes: [{start: '0 18 * * fri', end: '0 8 * * mon', reason: weekend}]
        """,
        "2026-12-07T07:00",  # Mon 08:00 CET: the end is not inside
        "allowed until Fri 2026-12-11 18:00 CET (a freeze begins: weekend)",
        id="a-recurring-freeze-at-its-end",
    ),
    pytest.param(
        """
        timezone: Europe/Berlin
        freezes: [{start: '30 2 * * *', end: '0 5 * * *', reason: backups}]
        """,
        "2026-03-29T00:59",  # 01:59 CET: cron, like the windows, fires 02:30 at the jump
        "allowed until Sun 2026-03-29 03:00 CEST (a freeze begins: backups)",
        id="berlin-spring-a-cron-freeze-in-the-gap-begins-at-the-jump",
    ),
    pytest.param(
        """
        timezone: America/New_York
        freezes: [{start: '30 1 * * *', end: '0 4 * * *', reason: backups}]
        """,
        "2026-11-01T06:15",  # 01:15 EST, the second pass: in force since the first 01:30
        "not allowed: inside the freeze from Sun 2026-11-01 01:30 EDT until Sun 2026-11-01"
        " 04:00 EST: backups; next opening at Sun 2026-11-01 04:00 EST",
        id="new-york-fall-a-cron-freeze-fires-once",
    ),
    pytest.param(
        "freezes: [{from: 2000-01-01, until: 2100-01-01T00:00, timezone: UTC}]",
        "2026-12-02T10:00",
        "not allowed: inside the freeze from Sat 2000-01-01 00:00 UTC until Fri 2100-01-01"
        " 00:00 UTC; next opening at Fri 2100-01-01 00:00 UTC",
        id="a-freeze-over-all-foreseeable-time",
    ),
    pytest.param(
        """
        timezone: UTC
        windows: [{days: sat, start: "10:00", end: "12:00"}]
        freezes: [{start: '0 0 * * sat', end: '0 0 * * sun'}]
        """,
        "2026-12-02T10:00",
        "not allowed: outside every release window; no opening in the foreseeable future",
        id="a-freeze-always-covering-the-only-window",
    ),
]


@pytest.mark.parametrize(("body", "at", "expected"), CASES)
def test_decisions_at_fixed_instants(body: str, at: str, expected: str) -> None:
    assert str(decide(schedule(body), utc(at))) == expected


def test_a_decision_takes_epoch_seconds_and_refuses_naive_times() -> None:
    office = schedule(BERLIN_OFFICE)
    at = utc("2026-12-02T10:00")
    assert decide(office, at.timestamp()) == decide(office, at)
    with pytest.raises(ValueError, match="aware"):
        decide(office, at.replace(tzinfo=None))


def errors(body: str) -> list[str]:
    text = HEAD + textwrap.indent(textwrap.dedent(body), "  ")
    with pytest.raises(PlanError) as caught:
        parse_plan(text, source="release.yaml", environ={})
    return [str(issue) for issue in caught.value.issues]


def test_every_schedule_mistake_is_located() -> None:
    # HEAD is lines 1-3: the schedule's keys start at line 4.
    assert errors(
        """\
          timezone: Europe/Berlinn
          windows:
            - {days: mon-fry, start: "9:00", end: 17:00}
            - {days: sat, start: "22:00", end: "22:00", timezone: UTC}
            - {days: sun, start: "24:00", end: "02:00", timezone: UTC}
          freezes:
            - {start: "0 18 * * 5 *", end: "0 8 * * 1", timezone: UTC}
            - {start: "0 18 * * 5", until: "2026-01-01", timezone: UTC}
            - {from: 2026-12-20T00:00, until: 2026-01-04T08:00, timezone: UTC}
            - {start: "0 25 * * 5", end: "0 8 * * mon", timezone: UTC}
            - {from: "2026-12-20T00:00+01:00", until: 2027-01-01, timezone: UTC}
            - {from: 2026-12-20, timezone: UTC}
            - {start: "0 18 * * 5", end: "0 8 * * 1"}
        """
    ) == [
        "release.yaml:4: schedule.timezone: unknown time zone 'Europe/Berlinn': use an IANA"
        " name such as Europe/Berlin, America/New_York or UTC",
        "release.yaml:6: schedule.windows[0].days: 'mon-fry' is not a day or a range of days:"
        " use mon, tue, wed, thu, fri, sat, sun, or a range such as mon-fri",
        "release.yaml:6: schedule.windows[0].end: expected a time such as '17:30' in quotes,"
        " got the number 1020 (YAML reads 17:30 unquoted as a number)",
        "release.yaml:7: schedule.windows[1].end: start and end are the same time: for a whole"
        " day write start: '00:00', end: '24:00'",
        "release.yaml:8: schedule.windows[2].start: a window cannot start at 24:00: write '00:00'",
        "release.yaml:10: schedule.freezes[0].start: expected a cron expression of 5 fields"
        " (minute hour day month weekday, such as '0 18 * * fri'), got '0 18 * * 5 *'",
        "release.yaml:11: schedule.freezes[1]: a freeze is either recurring (start and end:"
        " cron expressions) or one-off (from and until: dates); this one has both kinds (until)",
        "release.yaml:12: schedule.freezes[2].until: must be after from",
        "release.yaml:13: schedule.freezes[3].start: bad cron expression '0 25 * * 5': Bad hour",
        "release.yaml:14: schedule.freezes[4].from: expected a local date and time such as"
        " 2026-12-20T08:00 (the zone is the entry's timezone), got '2026-12-20T00:00+01:00'",
        "release.yaml:15: schedule.freezes[5].until: required",
    ]


def test_an_entry_without_a_zone_needs_the_schedule_one() -> None:
    assert errors("freezes: [{start: '0 18 * * 5', end: '0 8 * * 1'}]\n") == [
        "release.yaml:4: schedule.freezes[0]: no time zone: give this entry a timezone, or the"
        " schedule one",
    ]


def test_days_take_lists_ranges_and_wrapping_ranges() -> None:
    (window,) = schedule(
        "windows: [{days: [tue, fri-mon], start: '9:00', end: '24:00', timezone: UTC}]"
    ).windows
    assert window.days == {1, 4, 5, 6, 0}
    assert (window.start, window.end) == (9 * 60, 24 * 60)


@pytest.mark.anyio
async def test_the_watcher_halts_when_the_window_closes_on_the_injected_clock() -> None:
    office = schedule(BERLIN_OFFICE)
    clock = ScaledClock(60.0, start=utc("2026-12-04T15:50").timestamp())  # Fri 16:50 CET
    halted: list[tuple[str, float]] = []
    with anyio.fail_after(60):  # virtual seconds: 3,600 simulated
        await close_on_schedule(office, clock, lambda why: halted.append((why, clock.now())))
    ((why, at),) = halted
    assert why == "the release window closed at Fri 2026-12-04 17:00 CET"
    assert at == pytest.approx(utc("2026-12-04T16:00").timestamp(), abs=1)


@pytest.mark.anyio
async def test_the_watcher_names_a_freeze_that_begins() -> None:
    frozen = schedule(
        BERLIN_OFFICE + "freezes: [{from: 2026-12-02T12:00, until: 2026-12-02T14:00, reason: demo}]"
    )
    clock = ScaledClock(60.0, start=utc("2026-12-02T10:59").timestamp())  # Wed 11:59 CET
    halted: list[str] = []
    await close_on_schedule(frozen, clock, halted.append)
    assert halted == ["a freeze began at Wed 2026-12-02 12:00 CET: demo"]


@pytest.mark.anyio
async def test_the_watcher_returns_when_nothing_ever_closes() -> None:
    halted: list[str] = []
    clock = ScaledClock(1.0, start=utc("2026-12-02T10:00").timestamp())
    await close_on_schedule(schedule("timezone: UTC"), clock, halted.append)
    assert halted == []
