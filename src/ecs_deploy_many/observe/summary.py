"""The end-of-run summary: what a person reads first when a run is over.

The verdict with how many targets ended how, then every failed or rolled-back target
with a one-line reason, then the slowest targets. The terminal table here, the GitHub
step summary and the JUnit messages read the same selections (``problems``,
``slowest``, ``reason``), so they never disagree. Error text can echo anything a call
was given, so every reason goes through the run's ``Redactor``.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from typing import TextIO

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Column, Table
from rich.text import Text

from ecs_deploy_many.core.redact import Redactor
from ecs_deploy_many.core.result import Status, TargetResult
from ecs_deploy_many.deploy.engine import RunResult, RunVerdict
from ecs_deploy_many.observe.console import format_duration

__all__ = [
    "SLOWEST",
    "count_statuses",
    "format_duration",
    "headline",
    "print_summary",
    "problems",
    "reason",
    "run_duration",
    "slowest",
    "status_label",
    "status_style",
    "summary_line",
    "summary_table",
]

SLOWEST = 5
"""How many of the slowest targets a summary names."""
# Off a terminal rich would wrap at 80 columns; tables are only as wide as their content,
# so a wide limit keeps each reason on one line in CI logs without widening the tables.
_PIPE_WIDTH = 240
# rich pads every cell to its column's width, the last one too; a line ends at its text.
_TRAILING_BLANKS = re.compile(r"[ \t]+((?:\x1b\[[0-9;]*m)*)$", re.MULTILINE)
_STYLES: dict[str, str] = {
    Status.SUCCEEDED: "green",
    Status.UNCHANGED: "green",
    Status.FAILED: "bold red",
    Status.ROLLED_BACK: "yellow",
    Status.SKIPPED: "dim",
    Status.INTERRUPTED: "magenta",
    Status.UNKNOWN: "bold magenta",
}
_VERDICT_STYLES: dict[str, str] = {
    RunVerdict.SUCCEEDED: "bold green",
    RunVerdict.FAILED: "bold red",
    RunVerdict.INTERRUPTED: "bold magenta",
}


def problems(run: RunResult) -> list[TargetResult]:
    """Failed, rolled-back and unknown targets, in plan order."""
    return [result for result in run.results.values() if result.status.counts_as_failure]


def slowest(run: RunResult, count: int = SLOWEST) -> list[TargetResult]:
    """The ``count`` targets that took longest; targets never deployed have no time."""
    timed = [result for result in run.results.values() if result.duration_s is not None]
    return sorted(timed, key=lambda result: result.duration_s or 0.0, reverse=True)[:count]


def reason(result: TargetResult, redactor: Redactor | None = None) -> str:
    """The target's error on one line, masked: a client error's detail is on its second."""
    return " ".join(str((redactor or Redactor()).scrub(result.error or "")).split())


def status_label(result: TargetResult) -> str:
    """The status, saying when a failure did not count because the target may fail."""
    allowed = result.target.allow_failure and not result.status.ok
    return f"{result.status} (allowed to fail)" if allowed else str(result.status)


def status_style(status: str) -> str:
    """The rich style a status is shown in."""
    return _STYLES.get(status, "")


def run_duration(run: RunResult) -> float | None:
    """How long the run took, on its clock; None before it finished."""
    if run.started_at is None or run.finished_at is None:
        return None
    return run.finished_at - run.started_at


def count_statuses(run: RunResult) -> str:
    """How the targets ended: ``11 succeeded, 1 rolled back (allowed to fail)``."""
    allowed = Counter(
        str(result.status)
        for result in run.results.values()
        if result.target.allow_failure and not result.status.ok
    )
    parts = []
    for status, count in run.statistics().items():
        if not count:
            continue
        part = f"{count} {status.replace('_', ' ')}"
        if allowed[status]:
            some = "" if allowed[status] == count else f"{allowed[status]} "
            part += f" ({some}allowed to fail)"
        parts.append(part)
    return ", ".join(parts)


def headline(run: RunResult, *, simulated_at: float | None = None) -> Text:
    """The verdict, how long the run took and how its targets ended, on one line.

    ``simulated_at``: the speed of the simulator whose clock timed the run, when it was
    one (a rehearsal, or ``--endpoint-url`` with ``--speed``), so no one takes its
    durations for real ones.
    """
    took = format_duration(run_duration(run))
    if took and simulated_at is not None:
        took += f" (simulated at {simulated_at:g}x)"
    total = len(run.results)
    return Text.assemble(
        (f"run {run.verdict}", _VERDICT_STYLES[run.verdict]),
        f" in {took}" if took else "",
        f": {total} target{'s' * (total != 1)}: {count_statuses(run)}",
    )


def summary_table(
    run: RunResult, *, redactor: Redactor | None = None, simulated_at: float | None = None
) -> RenderableType:
    """The summary: the headline, why the run halted, failed targets, the slowest."""
    parts: list[RenderableType] = [headline(run, simulated_at=simulated_at)]
    if run.halted:
        parts.append(Text(str((redactor or Redactor()).scrub(run.halted)), style="yellow"))

    failed = problems(run)
    if failed:
        table = _table("failed or rolled back", "wave", "status", "reason")
        for result in failed:
            table.add_row(
                Text(result.target.name),
                Text(result.target.wave or ""),
                Text(status_label(result), style=status_style(result.status)),
                Text(reason(result, redactor)),
            )
        parts += [Text(), table]

    slow = slowest(run)
    if slow:
        table = _table("slowest", "wave", "status", Column("took", justify="right"))
        for result in slow:
            table.add_row(
                Text(result.target.name),
                Text(result.target.wave or ""),
                Text(str(result.status), style=status_style(result.status)),
                format_duration(result.duration_s),
            )
        parts += [Text(), table]
    return Group(*parts)


def _table(*columns: str | Column) -> Table:
    return Table(*columns, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)


def print_summary(
    run: RunResult,
    *,
    redactor: Redactor | None = None,
    file: TextIO | None = None,
    simulated_at: float | None = None,
) -> None:
    """Print the summary table on ``file`` (stdout), in colour only on a terminal."""
    out = file or sys.stdout
    console = Console(file=out, highlight=False, width=None if out.isatty() else _PIPE_WIDTH)
    with console.capture() as captured:
        console.print(summary_table(run, redactor=redactor, simulated_at=simulated_at))
    out.write(_TRAILING_BLANKS.sub(r"\1", captured.get()))
    out.flush()


def summary_line(result: TargetResult, *, redactor: Redactor | None = None) -> str:
    """One target's outcome on one line: ``api: succeeded in 32s (arn:...:api:7)``."""
    took = format_duration(result.duration_s)
    timing = f" in {took}" if took else ""
    if result.status.ok:
        return f"{result.target.name}: {result.status}{timing} ({result.new_task_definition})"
    return f"{result.target.name}: {status_label(result)}{timing}: {reason(result, redactor)}"
