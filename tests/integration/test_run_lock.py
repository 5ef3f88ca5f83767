"""The run lock in DynamoDB (moto's server) and on the command line, against a simulator
over HTTP: one of two runs started together deploys, the other exits 73 naming the
holder; a killed holder is taken over only once its lease expired; a stolen lease
halts a run; a missing table stops it before any call to ECS; ``lock status|break``.

Every test waits on moto's server (or on runs in other processes), so runs on a
real-time loop; the lease is compared with the clock a lock is given, which the
store-level tests step by hand.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aioboto3
import anyio
import anyio.lowlevel
import pytest

from ecs_deploy_many.cli.many import cli
from ecs_deploy_many.core.errors import LockError, LockHeld
from ecs_deploy_many.jobs.lock import DynamoStore, RunLock, open_store
from ecs_deploy_many.plan.model import LockSpec
from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import FAST_TIMINGS, REGION
from tests.moto_server import create_pk_table, moto_server

pytestmark = [pytest.mark.anyio, pytest.mark.real_time, pytest.mark.usefixtures("aws_credentials")]

TABLE = "release-locks"
FLEET = Fleet.model_validate(
    {
        "region": REGION,
        "timings": FAST_TIMINGS,
        "task_definitions": {
            name: {
                "containerDefinitions": [{"name": name, "image": f"repo/{name}:1", "memory": 64}]
            }
            for name in ("api", "web")
        },
        "clusters": [
            {
                "name": "prod",
                "services": [
                    {"name": "api", "task_definition": "api", "desired_count": 2},
                    {"name": "web", "task_definition": "web", "desired_count": 2},
                ],
            }
        ],
    }
)


def write_plan(lock: str, *, bake: float) -> None:
    """plan.yaml in the working directory: api in a first wave, web in a second."""
    Path("plan.yaml").write_text(f"""\
version: 1
lock: {lock}
defaults: {{region: {REGION}}}
waves:
  - {{name: first, targets: [api], bake: {bake:g}}}
  - {{name: second, targets: [web]}}
targets:
  - {{name: api, cluster: prod, service: api, image: "repo/api:2"}}
  - {{name: web, cluster: prod, service: web, image: "repo/web:2"}}
""")


def read_json(path: str) -> Any:
    return json.loads(Path(path).read_text())


async def first_line(process: anyio.abc.Process) -> bytes:
    """The first line ``process`` prints, however its pipe splits it."""
    assert process.stdout is not None
    line = b""
    while not line.endswith(b"\n"):
        line += await process.stdout.receive()
    return line


class SteppedClock:
    """Lease time stepped by the test; waits on other processes stay real."""

    speed = 1.0

    def __init__(self, at: float) -> None:
        self.at = at

    def now(self) -> float:
        return self.at

    async def sleep(self, seconds: float) -> None:
        self.at += seconds
        await anyio.lowlevel.checkpoint()

    def fail_after(self, seconds: float | None) -> anyio.CancelScope:
        return anyio.fail_after(10)  # type: ignore[return-value]

    def move_on_after(self, seconds: float | None, *, shield: bool = False) -> anyio.CancelScope:
        return anyio.move_on_after(10, shield=shield)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
async def table(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """A fresh lock table, which every DynamoDB client reaches by the environment."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_url)
    await create_pk_table(TABLE, REGION)
    yield TABLE
    async with dynamodb() as client:
        await client.delete_table(TableName=TABLE)


def dynamodb() -> Any:
    return aioboto3.Session().client("dynamodb", region_name=REGION)


async def items() -> dict[str, dict[str, Any]]:
    async with dynamodb() as client:
        scanned = await client.scan(TableName=TABLE)
    return {
        item["pk"]["S"]: {k: v.get("S", v.get("N")) for k, v in item.items()}
        for item in scanned["Items"]
    }


@pytest.fixture
async def sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Simulator]:
    monkeypatch.chdir(tmp_path)
    async with Simulator(FLEET, speed=100) as running:
        yield running


def run_args(sim: Simulator, *args: str) -> list[str]:
    return [*args, "--endpoint-url", sim.endpoint_url, "--speed", "100", "--log-format", "json"]


# -- the store and its rules, on DynamoDB ----------------------------------------------


async def test_a_lease_in_dynamodb_is_refused_taken_over_once_expired_and_kept_by_its_owner(
    table: str,
) -> None:
    clock = SteppedClock(1_800_000_000.0)
    spec = LockSpec(name="checkout", table=table, region=REGION, lease=60)
    async with open_store(spec, Path("unused")) as store_a, open_store(spec, Path()) as store_b:
        first = RunLock(store_a, clock, lease=60)
        second = RunLock(store_b, clock, lease=60)
        held = await first.acquire("run-a", "/plans/release.yaml")
        with pytest.raises(LockHeld) as refused:
            await second.acquire("run-b", "/plans/release.yaml")
        assert str(refused.value) == (
            f"the run lock (DynamoDB table {table}, item lock#checkout) is held by "
            f"{held.describe(clock.now())}"
        )
        assert "lease until 2027-01-15T08:01:00Z" in str(refused.value)
        item = (await items())["lock#checkout"]
        assert item["run_id"] == "run-a"
        assert item["host"] == held.host
        assert item["plan"] == "/plans/release.yaml"
        assert float(item["lease_expires"]) == clock.now() + 60

        await clock.sleep(59)
        with pytest.raises(LockHeld):
            await second.acquire("run-b", "/plans/release.yaml")
        await clock.sleep(2)
        taken = await second.acquire("run-b", "/plans/release.yaml")

        lost: list[str] = []
        await first.keep(lost.append)  # its renewal is refused: not the owner any more
        assert lost == [f"the lease was taken over by {taken.describe()}"]
        assert not await first.release()  # nor may it remove the new owner's lock
        assert (await items())["lock#checkout"]["run_id"] == "run-b"

        async with anyio.create_task_group() as group:  # the owner's heartbeat renews
            group.start_soon(second.keep, lost.append)
            await anyio.sleep(0.5)
            group.cancel_scope.cancel()
        assert float((await items())["lock#checkout"]["lease_expires"]) > taken.started + 60
        assert await second.release()
        assert "lock#checkout" not in await items()


async def test_a_missing_table_is_named_with_the_fix(
    moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_url)
    spec = LockSpec(name="checkout", table="no-such-table", region=REGION)
    async with open_store(spec, Path()) as store:
        with pytest.raises(LockError, match="the lock table no-such-table does not exist: create"):
            await RunLock(store, SteppedClock(0), lease=60).acquire("run-a", "p")


HOLDER_SCRIPT = """
import asyncio, sys
from pathlib import Path
from ecs_deploy_many.core.clock import real_clock
from ecs_deploy_many.jobs.lock import RunLock, open_store
from ecs_deploy_many.plan.model import LockSpec

async def main():
    spec = LockSpec(name="checkout", table=sys.argv[1], region="eu-west-1", lease=30)
    async with open_store(spec, Path()) as store:
        lock = RunLock(store, real_clock(), lease=30)
        await lock.acquire("run-killed", "release.yaml")
        print("held", flush=True)
        await lock.keep(print)

asyncio.run(main())
"""


async def test_a_holder_killed_with_sigkill_is_taken_over_only_after_its_lease_expired(
    table: str,
) -> None:
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-c", HOLDER_SCRIPT, table]
    async with await anyio.open_process(command, env=environ) as holder:
        assert await first_line(holder) == b"held\n"
        holder.send_signal(signal.SIGKILL)
        await holder.wait()
    expires = float((await items())["lock#checkout"]["lease_expires"])
    clock = SteppedClock(expires - 1)  # its lease still runs, though no one renews it
    spec = LockSpec(name="checkout", table=table, region=REGION, lease=30)
    async with open_store(spec, Path()) as store:
        lock = RunLock(store, clock, lease=30)
        with pytest.raises(LockHeld, match=rf"run run-killed on host .* \(pid {holder.pid}\)"):
            await lock.acquire("run-b", "release.yaml")
        await clock.sleep(2)
        assert (await lock.acquire("run-b", "release.yaml")).run_id == "run-b"
    assert (await items())["lock#checkout"]["run_id"] == "run-b"


# -- the command line ------------------------------------------------------------------

RUN_LINE = re.compile(r"run (\d{8}T\d{6}Z-[0-9a-f]{6}): holds the run lock")


async def test_of_two_runs_started_together_one_deploys_and_the_other_exits_73(
    table: str, sim: Simulator, tmp_path: Path
) -> None:
    # Each process's clock runs 100x from its own start: a long lease keeps their
    # clocks' drift from expiring it. The holder bakes 1,000 simulated seconds (10 real
    # ones), so the other, however much later a loaded machine starts it, meets the lock.
    write_plan(f"{{table: {table}, lease: 3600}}", bake=1000)
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [
        sys.executable,
        "-c",
        "from ecs_deploy_many.cli.many import main; main()",
        *run_args(sim, "plan.yaml"),
    ]
    outcomes: list[tuple[int, str]] = []

    async def one_run() -> None:
        done = await anyio.run_process(command, env=environ, check=False)
        outcomes.append((done.returncode, done.stderr.decode()))

    async with anyio.create_task_group() as group:
        group.start_soon(one_run)
        group.start_soon(one_run)
    codes = sorted(code for code, _ in outcomes)
    assert codes == [0, 73], outcomes
    deployed = next(err for code, err in outcomes if code == 0)
    refused = next(err for code, err in outcomes if code == 73)
    holder = RUN_LINE.search(deployed)
    assert holder
    assert f"is held by run {holder[1]} on host " in refused
    assert f"plan {tmp_path / 'plan.yaml'}, since " in refused
    assert ", lease until " in refused
    assert "nothing was changed; wait for the lock with --lock-wait SECONDS" in refused
    assert "journal at" not in refused  # refused before its journal, and before ECS
    assert sorted(sim.stats().updates.values()) == [1, 1]  # one UpdateService per service
    assert "lock#plan" not in await items()  # released at the end


async def test_a_stolen_lease_halts_the_run_and_it_exits_1(
    table: str, sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # The heartbeat (every 100 simulated s, 1 s at speed 100, each renewal allowed as
    # long) must see the theft while api's wave bakes: 600 simulated s leave it 6 real
    # seconds. A shorter lease would leave a loaded machine's moto too little real time.
    write_plan(f"{{table: {table}, name: shop, lease: 300}}", bake=600)

    async def steal_once_api_deploys() -> None:
        for _ in range(3000):  # until api's UpdateService
            if sim.stats().updates:
                break
            await anyio.sleep(0.01)
        async with dynamodb() as client:
            await client.put_item(
                TableName=TABLE,
                Item={
                    "pk": {"S": "lock#shop"},
                    "owner_token": {"S": "thief"},
                    "run_id": {"S": "run-thief"},
                    "host": {"S": "elsewhere"},
                    "pid": {"N": "7"},
                    "plan": {"S": "other.yaml"},
                    "started": {"N": "1800000000"},
                    "lease_expires": {"N": "4000000000"},
                },
            )

    async with anyio.create_task_group() as group:
        group.start_soon(steal_once_api_deploys)
        code = await cli.main(
            run_args(sim, "plan.yaml", "--report", "report.json"),
            "ecs-deploy-many",
            standalone_mode=False,
        )
    err = capsys.readouterr().err
    assert code == 1, err[-3000:]
    assert (
        "error: lost the run lock: the lease was taken over by run run-thief on host elsewhere"
        in err
    )
    report = read_json("report.json")
    statuses = {t["name"]: (t["status"], t.get("error")) for t in report["targets"]}
    assert statuses["api"][0] == "succeeded"  # in flight: it finished
    assert statuses["web"][0] == "skipped"
    assert "lost the run lock" in statuses["web"][1]
    assert "lost the run lock" in json.dumps(report)
    updated = {arn.rpartition("/")[2]: n for arn, n in sim.stats().updates.items()}
    assert updated == {"api": 1}
    assert (await items())["lock#shop"]["run_id"] == "run-thief"  # not released: not ours


async def test_a_missing_lock_table_stops_the_run_before_any_call_to_ecs(
    moto_url: str,
    sim: Simulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_url)
    write_plan("{table: nowhere}", bake=0)
    code = await cli.main(run_args(sim, "plan.yaml"), "ecs-deploy-many", standalone_mode=False)
    err = capsys.readouterr().err
    assert code == 2
    missing = "error: the lock table nowhere does not exist: create a table with a string"
    assert missing in err
    assert "plan.yaml: nothing was changed" in err
    assert sim.stats().calls == {} or not any(sim.stats().calls.values())


async def test_lock_status_and_break_name_the_holder_and_record_the_reason(
    table: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write_plan(f"{{table: {table}, name: shop}}", bake=0)
    spec = LockSpec(name="shop", table=table, region=REGION)
    async with open_store(spec, Path()) as store:
        assert isinstance(store, DynamoStore)
        held = await RunLock(store, SteppedClock(4_000_000_000.0), lease=60).acquire(
            "run-a", "/plans/release.yaml"
        )

    async def lock_command(*args: str) -> int:
        code = await cli.main(["lock", *args], "ecs-deploy-many", standalone_mode=False)
        return code if isinstance(code, int) else 0

    assert await lock_command("status", "plan.yaml") == 73
    out = capsys.readouterr().out
    assert out == f"held: DynamoDB table {table}, item lock#shop: {held.describe()}\n"

    assert await lock_command("break", "plan.yaml", "--reason", "runner gone") == 0
    out = capsys.readouterr().out
    assert out.startswith(
        f"broke the run lock (DynamoDB table {table}, item lock#shop) held by run run-a"
    )
    assert out.endswith("reason: runner gone\n")
    stored = await items()
    assert "lock#shop" not in stored
    (record,) = (v for k, v in stored.items() if k.startswith("lockbreak#shop#"))
    assert record["reason"] == "runner gone"
    assert record["run_id"] == "run-a"
    assert "@" in record["broken_by"]
    assert "owner_token" not in record

    assert await lock_command("status", "plan.yaml") == 0
    assert capsys.readouterr().out == f"free: DynamoDB table {table}, item lock#shop\n"
