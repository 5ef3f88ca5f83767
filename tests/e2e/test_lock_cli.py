"""A plan's local file lock on the command line, in-process against a simulator over HTTP
on virtual time: which commands take it, refusal (73) naming the holder, ``--lock-wait``,
``resume`` and ``rollback`` taking it too, ``lock status|break``, and ``--simulate``
leaving the file alone."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from ecs_deploy_many.cli.lock import lock_directory
from ecs_deploy_many.core.clock import ScaledClock
from ecs_deploy_many.jobs.lock import FileStore, RunLock
from ecs_deploy_many.plan import load_plan
from ecs_deploy_many.sim.server import Simulator
from tests.e2e.helpers import plan_world
from tests.e2e.test_fleet_cli import FLEET, PLAN, many

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]

LOCKED_PLAN = PLAN.replace("version: 1\n", "version: 1\nlock: true\n")
RUN_LINE = re.compile(r"^run (\d{8}T\d{6}Z-[0-9a-f]{6}): journal at ", re.MULTILINE)


@pytest.fixture
async def sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Simulator]:
    async with plan_world(tmp_path, monkeypatch, LOCKED_PLAN, FLEET) as running:
        yield running


def the_plans_lock(tmp_path: Path) -> FileStore:
    """The plan's lock file, as another run on this host would take it."""
    spec = load_plan(tmp_path / "plan.yaml", environ={"RELEASE": "2.0"}).lock
    assert spec is not None
    return FileStore(lock_directory() / f"{spec.name}.lock")


async def command(
    sim: Simulator, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    capsys.readouterr()
    code = await many(
        *args, "--endpoint-url", sim.endpoint_url, "--speed", "100", "--log-format", "json"
    )
    return code, capsys.readouterr().err


async def test_a_held_lock_refuses_changing_runs_and_never_read_only_ones(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = RunLock(the_plans_lock(tmp_path), ScaledClock(), lease=60)
    held = await other.acquire("20260101T000000Z-abcdef", "/elsewhere/plan.yaml")

    code, err = await command(sim, capsys, "plan.yaml")
    assert code == 73
    assert f"is held by run 20260101T000000Z-abcdef on host {held.host}" in err
    assert "plan /elsewhere/plan.yaml, since " in err
    assert "`ecs-deploy-many lock break plan.yaml --reason TEXT`" in err
    assert not sim.stats().updates
    assert not RUN_LINE.search(err)  # no journal either

    code, err = await command(sim, capsys, "plan.yaml", "--dry-run")
    assert code == 0, err
    assert await many("plan.yaml", "--validate") == 0
    status = ("status", "plan.yaml", "--endpoint-url", sim.endpoint_url, "--log-format", "json")
    assert await many(*status) == 0

    capsys.readouterr()
    assert await many("lock", "status", "plan.yaml") == 73
    assert capsys.readouterr().out.startswith(f"held: file {the_plans_lock(tmp_path).path}: run ")

    code, err = await command(sim, capsys, "plan.yaml", "--lock-wait", "20")
    assert code == 73
    assert "waiting up to 20 s for the run lock (file " in err

    async def let_go_after(seconds: float) -> None:
        await anyio.sleep(seconds / 100)  # the runs' clock runs at 100x
        await other.release()

    async with anyio.create_task_group() as group:
        group.start_soon(let_go_after, 60)
        code, err = await command(sim, capsys, "plan.yaml", "--lock-wait", "600")
    assert code == 0, err[-2000:]
    assert sorted(sim.stats().updates.values()) == [1, 1, 1]
    capsys.readouterr()
    assert await many("lock", "status", "plan.yaml") == 0  # released at the end
    assert capsys.readouterr().out.startswith("free: file ")


async def test_rollback_takes_the_plans_lock_too(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = await command(sim, capsys, "plan.yaml")
    assert code == 0, err[-2000:]
    run = RUN_LINE.search(err)
    assert run
    other = RunLock(the_plans_lock(tmp_path), ScaledClock(), lease=60)
    await other.acquire("20260101T000000Z-abcdef", "/elsewhere/plan.yaml")
    updates = sim.stats().updates

    code, err = await command(sim, capsys, "rollback", run[1], "--reason", "bad release")
    assert code == 73
    assert "is held by run 20260101T000000Z-abcdef" in err
    code, err = await command(sim, capsys, "resume", run[1])
    assert code == 73
    assert sim.stats().updates == updates

    capsys.readouterr()
    assert await many("lock", "break", "plan.yaml", "--reason", "stuck runner") == 0
    out = capsys.readouterr().out
    assert "held by run 20260101T000000Z-abcdef" in out
    assert out.endswith("reason: stuck runner\n")
    code, err = await command(sim, capsys, "rollback", run[1], "--reason", "bad release")
    assert code == 0, err[-2000:]


async def test_a_rehearsal_takes_an_in_process_lock_and_leaves_the_file_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "plan.yaml").write_text(LOCKED_PLAN)
    (tmp_path / "fleet.yaml").write_text(FLEET)
    monkeypatch.setenv("RELEASE", "2.0")
    other = RunLock(the_plans_lock(tmp_path), ScaledClock(), lease=60)
    await other.acquire("20260101T000000Z-abcdef", "/elsewhere/plan.yaml")
    code = await many(
        str(tmp_path / "plan.yaml"), "--simulate", "--speed", "100",
        "--fleet", str(tmp_path / "fleet.yaml"), "--log-format", "json",
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err[-2000:]
    assert "the run lock is in the process (its table or file untouched)" in err
    assert ": holds the run lock (in-process lock plan-" in err
    holder = await the_plans_lock(tmp_path).read()
    assert holder is not None
    assert holder.run_id == "20260101T000000Z-abcdef"
