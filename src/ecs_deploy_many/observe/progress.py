"""The live progress view: what a run is doing right now, on a terminal.

``ProgressView`` observes the run's events and keeps one row per target that started.
``render_progress`` draws it, a pure function of that state and the run clock's time,
so tests read the view without a terminal. ``show_progress`` puts it on the terminal
while a run goes on: a rich ``Live`` on stderr, redrawn by a sibling task that is
cancelled when the run ends. Log lines go through the same console (``log_stream``) and
print above the view, so they never tear it.

The view appears only when stdout and stderr are both terminals and logs are not JSON:
a CI log or a pipe gets log lines and the summary, never cursor movement.
"""

from __future__ import annotations

import io
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TextIO, cast

import anyio
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Column, Table
from rich.text import Text

from ecs_deploy_many.core.clock import Clock
from ecs_deploy_many.core.events import EventName, Step, TargetEvent
from ecs_deploy_many.core.result import Status
from ecs_deploy_many.observe.console import format_duration
from ecs_deploy_many.observe.log import LogFormat
from ecs_deploy_many.observe.summary import status_style

__all__ = [
    "ProgressView",
    "TargetProgress",
    "log_stream",
    "progress_console",
    "render_progress",
    "rows_for_height",
    "show_progress",
]

REFRESH_S = 0.25
"""Real seconds between redraws: smooth enough to read, cheap enough at fleet size."""
MIN_ROWS = 3


_NEEDS_ATTENTION = frozenset(str(status) for status in Status if status.needs_attention)


@dataclass
class TargetProgress:
    """A target that started (or was settled without starting), as the view shows it."""

    name: str
    wave: str | None
    step: Step
    started_at: float
    running: int | None = None
    """Running tasks of the deployment this step waits for."""
    desired: int | None = None
    stage: str | None = None
    """Where ECS's service deployment stands, as the wait put it (``BAKE_TIME, 4m left``)."""
    status: str | None = None
    """The final status, once the target finished."""
    finished_at: float | None = None

    def elapsed(self, now: float) -> float:
        return (now if self.finished_at is None else self.finished_at) - self.started_at


class ProgressView:
    """Where each target of a run is; an ``Observer`` of the run's events."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._targets: dict[str, TargetProgress] = {}

    def __call__(self, event: TargetEvent) -> None:
        target = event.target
        row = self._targets.get(target.name)
        finishing = event.event == EventName.TARGET_FINISHED
        # A finished target moves again when rollback_all takes it back.
        if row is None or (row.status is not None and not finishing):
            row = self._targets[target.name] = TargetProgress(
                target.name, target.wave, event.step, event.at
            )
        if event.step != row.step:
            row.step, row.running, row.desired, row.stage = event.step, None, None, None
        if event.event == EventName.PROGRESS:
            row.running = event.facts.get("running")
            row.desired = event.facts.get("desired")
            row.stage = event.facts.get("state") if event.facts.get("stage") else None
        if finishing:
            row.status = str(event.facts.get("status", ""))
            row.finished_at = event.at

    @property
    def in_flight(self) -> list[TargetProgress]:
        """Targets on their way, the longest-running first."""
        rows = [row for row in self._targets.values() if row.status is None]
        return sorted(rows, key=lambda row: row.started_at)

    @property
    def finished(self) -> list[TargetProgress]:
        """Finished targets, failures first, then the most recent."""
        rows = [row for row in self._targets.values() if row.status is not None]
        return sorted(
            rows, key=lambda row: (row.status not in _NEEDS_ATTENTION, -(row.finished_at or 0))
        )

    def statistics(self) -> dict[str, int]:
        """Targets waiting, in flight, and finished in each status seen so far."""
        finished = Counter(row.status for row in self._targets.values() if row.status)
        return {
            "in flight": len(self._targets) - finished.total(),
            "waiting": max(0, self.total - len(self._targets)),
            **{status: finished[status] for status in Status if finished[status]},
        }


def render_progress(view: ProgressView, now: float, *, max_rows: int) -> RenderableType:
    """The view at ``now``: at most ``max_rows`` target rows above the running totals.

    In-flight targets come first; finished ones fill the rows left over, failures first,
    and the rest are only counted, so a fleet of any size stays on one screen.
    """
    in_flight = view.in_flight
    if len(in_flight) > max_rows:  # the last row says how many more there are
        shown, more = in_flight[: max_rows - 1], len(in_flight) - (max_rows - 1)
    else:
        shown, more = in_flight + view.finished[: max_rows - len(in_flight)], 0

    table = Table(
        "target",
        "wave",
        "step",
        Column("tasks", justify="right"),
        Column("elapsed", justify="right"),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for row in shown:
        tasks = f"{row.running}/{row.desired}" if row.desired is not None else ""
        if row.status:
            state = Text(row.status, style=status_style(row.status))
        else:
            state = Text(f"{row.step} · {row.stage}" if row.stage else row.step)
        table.add_row(
            Text(row.name), Text(row.wave or ""), state, tasks, format_duration(row.elapsed(now))
        )
    if more:
        table.add_row(Text(f"... {more} more in flight", style="dim"))
    counts = [(f"{n} {label}", status_style(label)) for label, n in view.statistics().items() if n]
    return Group(table, Text(" · ").join(Text(text, style=style) for text, style in counts))


def rows_for_height(height: int) -> int:
    """Target rows for a terminal ``height`` lines tall: half of it goes to log lines."""
    return max(MIN_ROWS, height // 2 - 3)


def progress_console(log_format: LogFormat) -> Console | None:
    """The console the view draws on (stderr), or None where the view must not appear."""
    if log_format == "json" or not (sys.stdout.isatty() and sys.stderr.isatty()):
        return None
    console = Console(stderr=True)
    return None if console.is_dumb_terminal else console


class _ConsoleLines(io.TextIOBase):
    """Whole lines printed through a console, so a live view on it redraws below them."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._partial = ""

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        if lines:
            # soft_wrap: the terminal wraps a long line; rich would break it into two.
            self._console.print(Text("\n").join(map(Text.from_ansi, lines)), soft_wrap=True)
        return len(text)

    def isatty(self) -> bool:
        return self._console.is_terminal

    @property
    def width(self) -> int:
        """The console's width, which log lines fit on a terminal."""
        return self._console.width


def log_stream(console: Console) -> TextIO:
    """A stream for log lines that prints them above the live view instead of through it."""
    return cast(TextIO, _ConsoleLines(console))


@asynccontextmanager
async def show_progress(
    view: ProgressView, clock: Clock, console: Console | None
) -> AsyncIterator[None]:
    """Show ``view`` on ``console`` (None: nowhere) while the body runs.

    A sibling task redraws it every ``REFRESH_S``; it is cancelled when the body ends,
    however it ends, and the view is cleared so what is printed next stands alone. An
    error of the body leaves as itself, not inside the redraw's task group.
    """
    if console is None:
        yield
        return

    def draw() -> RenderableType:
        return render_progress(view, clock.now(), max_rows=rows_for_height(console.size.height))

    failure: Exception | None = None
    with Live(console=console, get_renderable=draw, auto_refresh=False, transient=True) as live:
        async with anyio.create_task_group() as group:
            group.start_soon(_redraw, live)
            try:
                yield
            except Exception as error:  # raised again below, unwrapped
                failure = error
            finally:
                group.cancel_scope.cancel()
    if failure is not None:
        raise failure


async def _redraw(live: Live) -> None:
    while True:
        live.refresh()
        await anyio.sleep(REFRESH_S)
