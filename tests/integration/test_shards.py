"""Two shards of one run against one simulator, sharing a failure budget in moto's DynamoDB.

The shards run in-process side by side, each a ``FleetRun`` with its own clients,
journal and run record, as two CI jobs would. Timing: shard 1's broken target fails
within about 90 simulated seconds (its deadline, then its rollback), while shard 2 bakes
its first wave (a healthy rollout of some 50 seconds, with 300 allowed) for 600 more
before its second wave may start, so shard 2's second wave
starts (or not) long after shard 1's failure is in the run record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aioboto3
import anyio
import pytest

from ecs_deploy_many.cli.journaling import journal_start
from ecs_deploy_many.cli.many import cli
from ecs_deploy_many.core.errors import RunTableError
from ecs_deploy_many.core.redact import Redactor
from ecs_deploy_many.core.result import Status
from ecs_deploy_many.deploy.engine import FleetRun, RunResult, RunVerdict
from ecs_deploy_many.deploy.pipeline import RunContext
from ecs_deploy_many.journal import DirectoryLocation, load_run, new_run_id, open_journal
from ecs_deploy_many.journal.run_table import open_run_table
from ecs_deploy_many.observe.report import run_report
from ecs_deploy_many.plan import Plan, parse_plan, shard
from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import FAST_TIMINGS, sim_pool
from tests.moto_server import create_pk_table, moto_server

pytestmark = [pytest.mark.anyio, pytest.mark.real_time]

REGION = "eu-west-1"
FLEET = Fleet.model_validate(
    {
        "region": REGION,
        "timings": FAST_TIMINGS,
        "behaviour": {"images": [{"match": "*:broken*", "outcome": "fail_to_start"}]},
        "task_definitions": {
            name: {
                "containerDefinitions": [{"name": "app", "image": "example/app:1", "memory": 128}]
            }
            for name in ("api", "worker", "web")
        },
        "clusters": [
            {
                "name": cluster,
                "services": [
                    {"name": name, "task_definition": name, "desired_count": 1}
                    for name in ("api", "worker", "web")
                ],
            }
            for cluster in ("blue", "green")
        ],
    }
)
# Two groups of two targets: blue (shard 1, by the groups' order) and green (shard 2).
PLAN = """\
version: 1
defaults: {region: eu-west-1, timeout: 300, rollback: true}
failure_budget: 0
targets:
  - {cluster: blue, service: api, image: "example/app:broken", timeout: 60}
  - {cluster: green, service: api, image: "example/app:2"}
  - {cluster: blue, service: worker, image: "example/app:2"}
  - {cluster: green, service: web, image: "example/app:2"}
waves:
  - {name: first, targets: [blue/api, green/api], bake: 600}
  - {name: second, targets: ["*"]}
"""


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
async def table(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new run table on moto's server, which DynamoDB clients reach by the environment."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_url)
    name = f"runs-{new_run_id().lower()[-6:]}"
    await create_pk_table(name)
    return name


async def run_record(table: str, run_id: str) -> dict[str, Any]:
    async with aioboto3.Session().client("dynamodb") as dynamodb:
        answer = await dynamodb.get_item(TableName=table, Key={"pk": {"S": f"run#{run_id}"}})
    item: dict[str, Any] = answer["Item"]
    return item


async def run_shard(
    sim: Simulator,
    plan: Plan,
    part: str,
    *,
    run_id: str,
    table: str,
    journals: Path,
    on_failure: list[str],
    before_run: Callable[[], Awaitable[None]] | None = None,
) -> RunResult:
    """One shard of ``plan``, journaled and sharing the run record, as ``--shard`` runs it
    (``before_run`` once the record is found)."""
    index, _, count = part.partition("/")
    mine = shard(plan, int(index), int(count))
    start = journal_start(mine, "plan.yaml", {"shard": part}, simulated_at=None)
    async with AsyncExitStack() as stack:
        shared = await stack.enter_async_context(
            open_run_table(
                table, run_id, shard=part, budget=mine.max_failures,
                on_failure=on_failure.append,
            )
        )  # fmt: skip
        journal = await stack.enter_async_context(
            open_journal(
                DirectoryLocation(journals), start, run_id=run_id, clock=sim.clock,
                redactor=Redactor(), on_failure=print,
            )
        )  # fmt: skip
        pool = await stack.enter_async_context(sim_pool(sim))
        if before_run is not None:
            await before_run()
        result = await FleetRun(mine, RunContext(pool, sim.clock, journal), shared=shared).run()
        journal.finish(result)
    return result


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    return parse_plan(PLAN, source=tmp_path / "plan.yaml", environ={})


async def test_a_failure_in_one_shard_halts_the_other(
    plan: Plan, table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert [t.name for t in shard(plan, 1, 2).targets] == ["blue/api", "blue/worker"]
    run_id, journals = new_run_id(), tmp_path / "runs"
    results: dict[str, RunResult] = {}
    lost: list[str] = []

    async def run(part: str) -> None:
        results[part] = await run_shard(
            sim, plan, part, run_id=run_id, table=table, journals=journals, on_failure=lost
        )

    async with (
        Simulator(FLEET, speed=100, listen=False) as sim,
        anyio.create_task_group() as group,
    ):
        group.start_soon(run, "1/2")
        group.start_soon(run, "2/2")

    first, second = results["1/2"], results["2/2"]
    assert lost == []
    statuses = {name: result.status for r in (first, second) for name, result in r.results.items()}
    assert statuses.pop("blue/api").counts_as_failure  # rolled back, or failed doing so
    assert statuses == {
        "blue/worker": Status.SKIPPED,  # its own shard halted
        "green/api": Status.SUCCEEDED,  # in flight (baking) when the run halted
        "green/web": Status.SKIPPED,  # the other shard's failure halted this one
    }
    reason = (
        "the run halted: 1 failed target(s) across its shards exceed the failure budget of "
        "0 (the last: blue/api, in shard 1/2)"
    )
    assert first.halted == second.halted == reason
    assert second.results["green/web"].error == reason
    assert (first.verdict, second.verdict) == (RunVerdict.FAILED, RunVerdict.FAILED)
    assert second.failures == 0  # halted by the other's failure, not its own

    record = await run_record(table, run_id)
    assert record["failures"] == {"N": "1"}
    assert record["budget"] == {"N": "0"}
    assert record["halted"] == {"S": reason}
    assert record["halted_by"] == {"S": "1/2"}

    # The journal of the run is both shards' together.
    journal = await load_run(DirectoryLocation(journals), run_id)
    assert [t.name for t in journal.targets] == [
        "blue/api", "blue/worker", "green/api", "green/web",
    ]  # fmt: skip
    assert (journal.shard_count, sorted(journal.shard_finishes)) == (2, [1, 2])
    assert journal.finished is not None
    assert journal.verdict == "failed"
    assert journal.finished.counts["skipped"] == 2
    assert journal.finished.counts["succeeded"] == 1

    capsys.readouterr()
    code = await cli.main(
        ["show", run_id, "--journal", str(journals), "--report", str(tmp_path / "r.json")],
        "ecs-deploy-many", standalone_mode=False,
    )  # fmt: skip
    assert code in (None, 0)
    shown = capsys.readouterr()
    assert "failed (2/2 shards finished)" in shown.err
    assert "4 targets: 1 succeeded, " in shown.out
    assert ", 2 skipped" in shown.out
    assert reason in shown.out


async def test_a_run_table_lost_mid_run_leaves_the_shard_its_own_budget(
    plan: Plan, table: str, tmp_path: Path
) -> None:
    lost: list[str] = []

    async def delete_table() -> None:
        async with aioboto3.Session().client("dynamodb") as dynamodb:
            await dynamodb.delete_table(TableName=table)

    async with Simulator(FLEET, speed=100, listen=False) as sim:
        result = await run_shard(
            sim, plan, "1/2", run_id=new_run_id(), table=table, journals=tmp_path / "runs",
            on_failure=lost, before_run=delete_table,
        )  # fmt: skip
    assert len(lost) == 1
    assert lost[0].startswith(f"the run table {table} could not be read: ")
    assert "ResourceNotFoundException" in lost[0]
    assert (
        result.shared_budget_error == f"{lost[0]}; this shard went on with its own failure budget"
    )
    # Its own budget still halts it.
    assert result.results["blue/api"].status.counts_as_failure
    assert result.results["blue/worker"].status is Status.SKIPPED
    assert result.halted == "the run halted: 1 failed target(s) exceed the failure budget of 0"
    report = run_report(result, plan_path="plan.yaml")
    assert report["shared_budget_error"] == result.shared_budget_error


async def test_the_first_halt_holds_and_every_shard_must_agree_on_the_budget(table: str) -> None:
    run_id = new_run_id()
    async with (
        open_run_table(table, run_id, shard="1/2", budget=3, on_failure=print) as first,
        open_run_table(table, run_id, shard="2/2", budget=3, on_failure=print) as second,
    ):
        assert await first.halted() is None
        assert [await first.count_failure(), await second.count_failure()] == [1, 2]
        assert await second.halt("shard 2's reason") == "shard 2's reason"
        assert await first.halt("shard 1's reason") == "shard 2's reason"  # set once
        assert await first.halted() == "shard 2's reason"
    record = await run_record(table, run_id)
    assert (record["failures"], record["halted_by"]) == ({"N": "2"}, {"S": "2/2"})

    with pytest.raises(RunTableError, match=r"tolerates 3 failure\(s\), this shard's plan 4"):
        async with open_run_table(table, run_id, shard="2/2", budget=4, on_failure=print):
            pytest.fail("a shard with another budget joined the run")
