"""The run lock's rules on virtual time: refusal naming the holder, takeover only after a
lease expired, the heartbeat, waiting, losing the lock; the file lock across descriptors
and processes; the plan's ``lock:`` key."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from ecs_deploy_many.core.clock import Clock, ScaledClock
from ecs_deploy_many.core.errors import LockError, LockHeld, PlanError
from ecs_deploy_many.jobs.lock import FileStore, Holder, MemoryStore, RunLock
from ecs_deploy_many.plan import parse_plan
from ecs_deploy_many.plan.model import LockSpec

PLAN_PATH = "/plans/release.yaml"


def locks(clock: Clock, lease: float = 60.0) -> tuple[RunLock, RunLock]:
    """Two runs' locks on one in-process table, as two runners on one DynamoDB table."""
    table: dict[str, Holder] = {}
    return (
        RunLock(MemoryStore("release", table), clock, lease=lease),
        RunLock(MemoryStore("release", table), clock, lease=lease),
    )


@pytest.mark.anyio
async def test_a_second_run_is_refused_and_told_who_holds_the_lock() -> None:
    clock = ScaledClock()
    first, second = locks(clock)
    held = await first.acquire("run-a", PLAN_PATH)
    with pytest.raises(LockHeld) as refused:
        await second.acquire("run-b", PLAN_PATH)
    message = str(refused.value)
    assert "in-process lock release" in message
    assert f"run run-a on host {held.host} (pid {os.getpid()}), plan {PLAN_PATH}" in message
    assert "since " in message
    assert ", lease until " in message
    assert second.holder is None


@pytest.mark.anyio
async def test_a_dead_holders_lease_is_taken_over_only_after_it_expired() -> None:
    clock = ScaledClock()
    first, second = locks(clock)
    await first.acquire("run-a", PLAN_PATH)  # and no heartbeat: its runner died
    await clock.sleep(59)
    with pytest.raises(LockHeld):
        await second.acquire("run-b", PLAN_PATH)
    await clock.sleep(2)
    taken = await second.acquire("run-b", PLAN_PATH)
    assert taken.run_id == "run-b"
    lost: list[str] = []
    await first.keep(lost.append)  # the old holder's next heartbeat
    assert len(lost) == 1
    assert lost[0].startswith("the lease was taken over by run run-b")
    assert first.lost == lost[0]
    assert not await first.release()  # only the owner removes it
    assert (await second.store.read()) == taken


@pytest.mark.anyio
async def test_the_heartbeat_keeps_the_lock_past_its_lease() -> None:
    clock = ScaledClock()
    first, second = locks(clock)
    await first.acquire("run-a", PLAN_PATH)
    lost: list[str] = []
    async with anyio.create_task_group() as group:
        group.start_soon(first.keep, lost.append)
        await clock.sleep(600)
        with pytest.raises(LockHeld):
            await second.acquire("run-b", PLAN_PATH)
        group.cancel_scope.cancel()
    assert lost == []
    assert await first.release()
    await second.acquire("run-b", PLAN_PATH)


@pytest.mark.anyio
async def test_lock_wait_waits_for_the_holder_to_let_go() -> None:
    clock = ScaledClock()
    first, second = locks(clock)
    await first.acquire("run-a", PLAN_PATH)
    told: list[Holder] = []
    async with anyio.create_task_group() as group:

        async def finish_after(seconds: float) -> None:
            await clock.sleep(seconds)
            await first.release()

        group.start_soon(finish_after, 32)
        started = clock.now()
        await second.acquire("run-b", PLAN_PATH, wait=120, on_wait=told.append)
        waited = clock.now() - started
    assert 32 <= waited <= 32 + 5  # the next poll after the release
    assert [holder.run_id for holder in told] == ["run-a"]


@pytest.mark.anyio
async def test_lock_wait_gives_up_when_the_wait_ends() -> None:
    clock = ScaledClock()
    first, second = locks(clock, lease=600)
    await first.acquire("run-a", PLAN_PATH)
    started = clock.now()
    with pytest.raises(LockHeld, match="held by run run-a"):
        await second.acquire("run-b", PLAN_PATH, wait=12)
    assert clock.now() - started == pytest.approx(12)


class _Unreachable(MemoryStore):
    """The in-process store, unreachable from ``after`` on (as DynamoDB can be)."""

    def __init__(self, clock: Clock, after: float) -> None:
        super().__init__("release")
        self._clock, self._after = clock, after

    async def renew(self, holder: Holder, expires: float) -> None:
        if self._clock.now() >= self._after:
            raise LockError("cannot reach the lock table locks: connection refused")
        await super().renew(holder, expires)


@pytest.mark.anyio
async def test_an_unreachable_store_loses_the_lock_only_once_the_lease_ran_out() -> None:
    clock = ScaledClock()
    start = clock.now()
    lock = RunLock(_Unreachable(clock, after=start + 25), clock, lease=60)
    await lock.acquire("run-a", PLAN_PATH)
    lost: list[str] = []
    await lock.keep(lost.append)  # renewed at 20 (until 80), then refused from 40 on
    assert clock.now() - start >= 80
    assert clock.now() - start < 80 + 20
    assert len(lost) == 1
    assert "unreachable until the lease ran out: cannot reach the lock table locks" in lost[0]


# -- the file lock ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_file_lock_is_refused_from_another_descriptor_and_names_its_holder(
    tmp_path: Path,
) -> None:
    path = tmp_path / "locks" / "release.lock"
    clock = ScaledClock()
    first = RunLock(FileStore(path), clock, lease=60)
    second = RunLock(FileStore(path), clock, lease=60)
    held = await first.acquire("run-a", PLAN_PATH)
    assert held.lease_expires is None  # the OS frees it with its process: no lease
    with pytest.raises(LockHeld) as refused:
        await second.acquire("run-b", PLAN_PATH)
    assert f"file {path}" in str(refused.value)
    assert f"run run-a on host {held.host} (pid {os.getpid()})" in str(refused.value)
    assert ", lease" not in str(refused.value)
    assert await FileStore(path).read() == held
    assert await first.release()
    assert await FileStore(path).read() is None
    await second.acquire("run-b", PLAN_PATH)


@pytest.mark.anyio
async def test_a_broken_file_lock_is_lost_by_its_holder_and_free_for_the_next(
    tmp_path: Path,
) -> None:
    path = tmp_path / "release.lock"
    clock = ScaledClock()
    first = RunLock(FileStore(path), clock, lease=30)
    await first.acquire("run-a", PLAN_PATH)
    broken = await FileStore(path).break_lock("stuck", "ops@host", clock.now())
    assert broken is not None
    assert broken.run_id == "run-a"
    second = RunLock(FileStore(path), clock, lease=30)
    await second.acquire("run-b", PLAN_PATH)
    lost: list[str] = []
    await first.keep(lost.append)
    assert lost == [f"the lock file {path} was removed (ecs-deploy-many lock break)"]
    assert not await first.release()
    holder = await FileStore(path).read()
    assert holder is not None
    assert holder.run_id == "run-b"


HOLDER_SCRIPT = """
import asyncio, sys
from pathlib import Path
from ecs_deploy_many.core.clock import real_clock
from ecs_deploy_many.jobs.lock import FileStore, RunLock

async def main():
    await RunLock(FileStore(Path(sys.argv[1])), real_clock(), lease=60).acquire("run-a", "p")
    print("held", flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


@pytest.mark.anyio
@pytest.mark.real_time
async def test_a_file_lock_held_by_another_process_is_freed_when_it_is_killed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "release.lock"
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-c", HOLDER_SCRIPT, str(path)]
    async with await anyio.open_process(command, env=environ) as holder:
        assert holder.stdout is not None
        line = b""
        while not line.endswith(b"\n"):  # however the pipe splits it
            line += await holder.stdout.receive()
        assert line == b"held\n"
        lock = RunLock(FileStore(path), ScaledClock(), lease=60)
        with pytest.raises(LockHeld, match=f"run run-a on host .* \\(pid {holder.pid}\\)"):
            await lock.acquire("run-b", PLAN_PATH)
        holder.send_signal(signal.SIGKILL)
        await holder.wait()
        assert await lock.acquire("run-b", PLAN_PATH)


# -- the plan's key --------------------------------------------------------------------


def lock_of(text: str) -> LockSpec | None:
    plan = parse_plan(
        textwrap.dedent(text), source="/plans/nightly release.yaml", environ={"TABLE": "locks"}
    )
    return plan.lock


TARGETS = "targets: [{cluster: c, service: s, image: 'r/app:1'}]\n"


@pytest.mark.parametrize("given", ["true", "{}"])
def test_lock_true_is_a_file_lock_named_after_the_plans_path(given: str) -> None:
    spec = lock_of(f"version: 1\nlock: {given}\n{TARGETS}")
    assert spec is not None
    assert spec.table is None
    assert spec.lease == 60
    assert spec.name.startswith("nightly-release-")
    assert len(spec.name) == len("nightly-release-") + 12
    other = parse_plan(
        f"version: 1\nlock: true\n{TARGETS}", source="/other/nightly release.yaml", environ={}
    )
    assert other.lock is not None
    assert other.lock.name != spec.name


def test_a_dynamodb_lock_is_named_after_the_plans_file_unless_named() -> None:
    assert lock_of(f"version: 1\nlock: {{table: '${{TABLE}}'}}\n{TARGETS}") == LockSpec(
        name="nightly-release", table="locks"
    )
    given = "lock: {name: checkout, table: locks, region: eu-west-1, lease: 30}"
    assert lock_of(f"version: 1\n{given}\n{TARGETS}") == LockSpec(
        name="checkout", table="locks", region="eu-west-1", lease=30
    )


def test_no_lock_without_the_key_or_with_false() -> None:
    assert lock_of(f"version: 1\n{TARGETS}") is None
    assert lock_of(f"version: 1\nlock: false\n{TARGETS}") is None


def test_a_wrong_lock_is_refused_with_its_line() -> None:
    text = (
        "version: 1\nlock:\n  tabel: locks\n  lease: 2\n  name: 'two words'\n"
        "  region: mars-1\n" + TARGETS
    )
    with pytest.raises(PlanError) as caught:
        lock_of(text)
    problems = [str(issue) for issue in caught.value.issues]
    assert any(
        p.startswith("/plans/nightly release.yaml:3: lock.tabel: unknown key") for p in problems
    )
    assert any(":4: lock.lease:" in p and ">= 5" in p for p in problems)
    assert any(":5: lock.name:" in p and "not a valid lock name" in p for p in problems)
    assert any(":6: lock.region:" in p for p in problems)
    assert len(problems) == 4
