"""The live view as a pure function of its state: rows, collapse at fleet size, totals."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console
from tests.clocks import ManualClock

from ecs_deploy_many.core.events import Step, TargetEvent
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.observe.progress import (
    ProgressView,
    log_stream,
    progress_console,
    render_progress,
    rows_for_height,
    show_progress,
)

START = 1_800_000_000.0


def service(name: str, wave: str = "rest") -> Target:
    return Target(name=f"prod/{name}", cluster="prod", service=name, wave=wave)


def event(target: Target, step: Step, name: str, at: float, **facts: Any) -> TargetEvent:
    return TargetEvent(target, step, name, START + at, facts)


def started(view: ProgressView, target: Target, at: float = 0.0) -> None:
    view(event(target, "resolve", "target_started", at))


def finished(view: ProgressView, target: Target, status: str, at: float) -> None:
    view(event(target, "done", "target_finished", at, status=status))


def screen(view: ProgressView, at: float, max_rows: int = 10) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(
        render_progress(view, START + at, max_rows=max_rows)
    )
    return [line.rstrip() for line in out.getvalue().splitlines()]


def test_a_row_per_target_in_flight_with_its_step_tasks_and_elapsed_time() -> None:
    view = ProgressView(total=3)
    api, web = service("api", wave="canary"), service("web")
    started(view, api)
    view(event(api, "wait", "progress", 20, running=1, desired=2))
    started(view, web, at=30)
    lines = screen(view, at=95)
    assert lines[0].split() == ["target", "wave", "step", "tasks", "elapsed"]
    assert lines[2].split() == ["prod/api", "canary", "wait", "1/2", "1m", "35s"]
    assert lines[3].split() == ["prod/web", "rest", "resolve", "1m", "05s"]
    assert lines[-1] == "2 in flight · 1 waiting"


def test_the_step_shows_where_ecs_service_deployment_stands() -> None:
    view = ProgressView(total=1)
    api = service("api")
    started(view, api)
    view(
        event(
            api,
            "wait",
            "progress",
            20,
            running=2,
            desired=2,
            stage="BAKE_TIME",
            state="BAKE_TIME, 4m left",
        )
    )
    assert screen(view, at=30)[2].split() == [
        "prod/api",
        "rest",
        "wait",
        "·",
        "BAKE_TIME,",
        "4m",
        "left",
        "2/2",
        "30s",
    ]
    view(event(api, "wait", "progress", 40, running=2, desired=2, stage=None, state="2/2"))
    assert screen(view, at=41)[2].split() == ["prod/api", "rest", "wait", "2/2", "41s"]


def test_tasks_belong_to_the_step_that_counts_them() -> None:
    """The new deployment's counts are not shown as the rollback's."""
    view = ProgressView(total=1)
    api = service("api")
    started(view, api)
    view(event(api, "wait", "progress", 10, running=0, desired=2))
    view(event(api, "rollback", "rollback_started", 60, reason="no progress"))
    assert screen(view, at=61)[2].split() == ["prod/api", "rest", "rollback", "1m", "01s"]
    view(event(api, "rollback", "progress", 70, running=2, desired=2))
    assert screen(view, at=71)[2].split()[2:4] == ["rollback", "2/2"]


def test_finished_targets_show_their_status_and_count_in_the_totals() -> None:
    view = ProgressView(total=4)
    api, web, search = service("api"), service("web"), service("search")
    for target in (api, web, search):
        started(view, target)
    finished(view, api, "succeeded", at=100)
    finished(view, search, "rolled_back", at=50)
    lines = screen(view, at=120)
    assert [line.split()[0] for line in lines[2:5]] == ["prod/web", "prod/search", "prod/api"]
    assert lines[3].split() == ["prod/search", "rest", "rolled_back", "50s"]
    assert lines[-1] == "1 in flight · 1 waiting · 1 succeeded · 1 rolled_back"


def test_a_skipped_target_counts_though_it_never_started() -> None:
    view = ProgressView(total=2)
    finished(view, service("web"), "skipped", at=5)
    assert view.statistics() == {"in flight": 0, "waiting": 1, "skipped": 1}


def test_at_fleet_size_finished_targets_collapse_into_counts() -> None:
    view = ProgressView(total=500)
    targets = [service(f"svc{i:03d}") for i in range(300)]
    for i, target in enumerate(targets):
        started(view, target, at=i)
    for target in targets[:270]:
        finished(view, target, "failed" if target.name.endswith("7") else "succeeded", at=400)
    lines = screen(view, at=500, max_rows=8)
    rows = lines[2:-1]
    assert len(rows) == 8
    # the oldest in-flight targets, then a line for the rest; no finished row fits
    assert [row.split()[0] for row in rows[:7]] == [t.name for t in targets[270:277]]
    assert rows[7].strip() == "... 23 more in flight"
    assert lines[-1] == "30 in flight · 200 waiting · 243 succeeded · 27 failed"


def test_left_over_rows_show_failures_first_then_the_latest() -> None:
    view = ProgressView(total=20)
    targets = [service(f"svc{i:02d}") for i in range(20)]
    for i, target in enumerate(targets):
        started(view, target)
        status = "failed" if i == 3 else "succeeded"
        finished(view, target, status, at=10 + i)
    rows = screen(view, at=60, max_rows=3)[2:-1]
    assert [row.split()[0] for row in rows] == ["prod/svc03", "prod/svc19", "prod/svc18"]


def test_a_target_rolled_back_after_it_finished_is_in_flight_again() -> None:
    """rollback_all takes succeeded services back after they finished."""
    view = ProgressView(total=1)
    api = service("api")
    started(view, api)
    finished(view, api, "succeeded", at=100)
    view(event(api, "rollback", "rollback_started", 300, reason="the run halted"))
    assert view.statistics() == {"in flight": 1, "waiting": 0}
    assert screen(view, at=330)[2].split() == ["prod/api", "rest", "rollback", "30s"]
    finished(view, api, "rolled_back", at=400)
    assert view.statistics() == {"in flight": 0, "waiting": 0, "rolled_back": 1}


@pytest.mark.parametrize(("height", "rows"), [(10, 3), (24, 9), (50, 22)])
def test_rows_leave_half_the_screen_to_log_lines(height: int, rows: int) -> None:
    assert rows_for_height(height) == rows


def test_no_view_for_json_logs_or_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    # under pytest's capture neither stream is a terminal
    assert progress_console("auto") is None
    assert progress_console("console") is None
    assert progress_console("json") is None


def test_log_lines_print_whole_through_the_console() -> None:
    out = io.StringIO()
    stream = log_stream(Console(file=out, color_system=None, width=20))
    stream.write("2026 [info] target_")
    assert out.getvalue() == ""  # nothing until the line is whole
    stream.write("started cluster=prod service=api\n\x1b[32mcoloured\x1b[0m\n")
    # a line longer than the console is not broken by it, and colours become styles
    assert out.getvalue() == "2026 [info] target_started cluster=prod service=api\ncoloured\n"


@pytest.mark.anyio
async def test_an_error_of_the_run_leaves_the_view_as_itself() -> None:
    """Not wrapped in the redraw's task group: the caller's handlers see what happened."""
    console = Console(file=io.StringIO(), force_terminal=True, width=80, height=24)
    view = ProgressView(total=1)

    async def run_with_a_bug() -> None:
        async with show_progress(view, ManualClock(), console):  # type: ignore[arg-type]
            started(view, service("api"))
            raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        await run_with_a_bug()
