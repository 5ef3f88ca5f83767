"""Release windows and freezes from the command line, in-process against a simulator.

A run's clock starts at the real time, so these plans are frozen in ways that hold at
any real time: a freeze over all foreseeable time, or one that ends an hour from the
moment the test writes the plan. What happens at a window's edge, at instants chosen to
the second, is tested on the engine with an injected clock (tests/integration).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import asyncclick as click
import pytest

from ecs_deploy_many.sim.server import Simulator
from tests.e2e.test_fleet_cli import FLEET, PLAN, many
from tests.e2e.test_run_commands import RUN_LINE, report_of, revisions, sim

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]
__all__ = ["sim"]  # a fixture, used by name

FROZEN = """\
schedule:
  timezone: Europe/Berlin
  windows: [{days: mon-sun, start: "00:00", end: "24:00"}]
  freezes: [{from: 2000-01-01, until: 2100-01-01T00:00, reason: change board}]
"""
REFUSED = (
    "inside the freeze from Sat 2000-01-01 00:00 CET until Fri 2100-01-01 00:00 CET: change"
    " board; next opening at Fri 2100-01-01 00:00 CET"
)


def frozen_until(until: datetime) -> str:
    return (
        "schedule:\n  freezes:\n"
        f"    - {{from: 2000-01-01, until: '{until:%Y-%m-%dT%H:%M}', timezone: UTC}}\n"
    )


def write_plan(schedule: str, *, timeout: int = 120) -> None:
    Path("plan.yaml").write_text(PLAN.replace("timeout: 120", f"timeout: {timeout}") + schedule)


def write_fleet(name: str, text: str) -> None:
    Path(name).write_text(text)


async def run(
    sim: Simulator, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of one command aimed at ``sim``."""
    capsys.readouterr()
    code = await many(
        *args, "--endpoint-url", sim.endpoint_url, "--speed", "100", "--log-format", "json"
    )
    out, err = capsys.readouterr()
    return code, out, err


async def test_a_run_in_a_freeze_touches_nothing_and_exits_75(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    write_plan(FROZEN)
    before = await revisions(sim)
    calls = sim.stats().total_calls
    code, _, err = await run(sim, capsys, "plan.yaml", "--report", "r.json")
    assert code == 75
    assert f"not allowed: {REFUSED}" in err
    assert "plan.yaml: nothing was changed (--wait-for-window waits" in err
    assert sim.stats().total_calls == calls  # not one call to ECS
    assert await revisions(sim) == before
    assert not await anyio.Path("r.json").exists()
    assert not await anyio.Path("runs").exists()  # not even a journal


async def test_waiting_gives_up_after_max_seconds_on_the_runs_clock(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    write_plan(FROZEN)
    started = anyio.current_time()
    code, _, err = await run(sim, capsys, "plan.yaml", "--wait-for-window", "600")
    assert code == 75
    assert "; waiting for it (at most 600 s)" in err
    assert f"not allowed: {REFUSED} (after waiting 600 s)" in err
    # 600 s on a clock at 100x is 6 s of the loop's (virtual) time.
    assert anyio.current_time() - started == pytest.approx(6, abs=0.5)
    assert sim.stats().total_calls == 0


async def test_waiting_without_a_limit_deploys_once_the_freeze_ends(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    until = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=1)
    write_plan(frozen_until(until))
    started = anyio.current_time()
    code, _, err = await run(sim, capsys, "plan.yaml", "--wait-for-window", "--report", "r.json")
    assert code == 0, err[-2000:]
    assert "; waiting for it\n" in err
    # The hour (less what had passed of the minute) at 100x: 35.4 to 36 s of loop time.
    assert anyio.current_time() - started >= 35
    assert report_of("r.json")["result"] == "succeeded"
    assert time.time() < until.timestamp()  # the wait took no real time
    assert (await revisions(sim))["api"].endswith(":2")


async def test_ignoring_the_windows_needs_a_reason_that_reaches_logs_and_report(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    write_plan(FROZEN)
    with pytest.raises(click.UsageError, match="--ignore-windows needs --reason TEXT"):
        await run(sim, capsys, "plan.yaml", "--ignore-windows")
    with pytest.raises(click.UsageError, match="--reason only applies with --ignore-windows"):
        await run(sim, capsys, "plan.yaml", "--reason", "hotfix")
    with pytest.raises(click.UsageError, match="contradict"):
        await run(
            sim, capsys, "plan.yaml", "--ignore-windows", "--reason", "x", "--wait-for-window"
        )
    assert sim.stats().total_calls == 0

    reason = "hotfix for INC-4711, approved by the change board"
    code, _, err = await run(
        sim, capsys, "plan.yaml", "--ignore-windows", "--reason", reason, "--report", "r.json"
    )
    assert code == 0, err[-2000:]
    report = report_of("r.json")
    assert report["windows_ignored"] == reason
    assert report["result"] == "succeeded"
    [warning] = [
        line
        for line in map(json.loads, (text for text in err.splitlines() if text.startswith("{")))
        if line["event"] == "release_windows_ignored"
    ]
    assert warning["level"] == "warning"
    assert warning["reason"] == reason
    assert warning["schedule"] == f"not allowed: {REFUSED}"
    # ``show`` writes the same report from the journal.
    run_id = RUN_LINE.search(err)[1]  # type: ignore[index]
    assert await many("show", run_id, "--report", "shown.json") == 0
    assert report_of("shown.json")["windows_ignored"] == reason


async def test_resume_obeys_the_windows_and_rollback_ignores_them(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    write_plan(FROZEN)
    code, _, err = await run(sim, capsys, "plan.yaml", "--ignore-windows", "--reason", "r")
    assert code == 0, err[-2000:]
    run_id = RUN_LINE.search(err)[1]  # type: ignore[index]
    calls = sim.stats().total_calls

    code, _, err = await run(sim, capsys, "resume", run_id, "--report", "resumed.json")
    assert code == 75
    assert f"not allowed: {REFUSED}" in err
    assert sim.stats().total_calls == calls

    code, _, err = await run(
        sim, capsys, "resume", run_id, "--ignore-windows", "--reason", "finish it"
    )
    assert code == 0, err[-2000:]

    code, _, err = await run(sim, capsys, "rollback", run_id, "--reason", "bad release")
    assert code == 0, err[-2000:]
    assert "release windows and freezes do not apply" in err
    assert (await revisions(sim))["api"].endswith(":1")


async def test_dry_run_validate_and_status_only_report_the_schedule(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    write_plan(FROZEN)
    code, out, _ = await run(sim, capsys, "plan.yaml", "--dry-run")
    assert code == 0
    assert "\nrelease schedule at " in out
    assert out.rstrip().endswith(f"not allowed: {REFUSED}")
    code = await many("status", "plan.yaml", "--endpoint-url", sim.endpoint_url)
    assert code == 0
    assert capsys.readouterr().out.rstrip().endswith(f"not allowed: {REFUSED}")
    assert sim.stats().updates == {}
    capsys.readouterr()
    assert await many("validate", "plan.yaml") == 0
    assert capsys.readouterr().out.rstrip().endswith(f"not allowed: {REFUSED}")


@pytest.mark.usefixtures("sim")  # the plan's directory
async def test_a_rehearsal_reports_the_schedule_and_runs_anyway(
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_plan(FROZEN)
    capsys.readouterr()
    code = await many(
        "plan.yaml", "--simulate", "--speed", "100", "--fleet", "fleet.yaml",
        "--report", "r.json", "--log-format", "json",
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err[-2000:]
    assert f"not allowed: {REFUSED}: a real run now would exit 75; the rehearsal runs" in err
    assert report_of("r.json")["result"] == "succeeded"


@pytest.mark.usefixtures("sim")  # the plan's directory
async def test_a_freeze_beginning_mid_rehearsal_halts_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Allowed now, a freeze begins 2 to 3 minutes later, while each service takes 5."""
    begins = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=3)
    ends = begins + timedelta(days=1)
    write_plan(
        "schedule:\n  freezes:\n"
        f"    - {{from: '{begins:%Y-%m-%dT%H:%M}', until: '{ends:%Y-%m-%dT%H:%M}',"
        " timezone: UTC, reason: release train}\n",
        timeout=900,
    )
    write_fleet("slow.yaml", FLEET.replace("health_grace: 10", "health_grace: 300"))
    capsys.readouterr()
    code = await many(
        "plan.yaml", "--simulate", "--speed", "100", "--fleet", "slow.yaml", "--max-parallel",
        "1", "--report", "r.json", "--log-format", "json",
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1, err[-2000:]  # halted like any run, not 75: a retry must not restart it
    closed = f"a freeze began at {begins:%a %Y-%m-%d %H:%M} UTC: release train"
    assert f"{closed}: starting nothing new; in-flight targets finish" in err
    report = report_of("r.json")
    assert report["halted"] == closed
    skipped = [t for t in report["targets"] if t["status"] == "skipped"]
    assert skipped
    assert all(t["error"] == closed for t in skipped)
    assert not [t for t in report["targets"] if t["status"] not in ("skipped", "succeeded")]
