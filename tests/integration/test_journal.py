"""The run journal of a fleet run against the simulator: in a directory and in S3 (moto).

The engine runs in-process with the journal among its observers, as the CLI wires it;
what is read back is compared with what the run emitted, and with what ECS holds.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aioboto3
import anyio
import pytest

from ecs_deploy_many.cli.journaling import journal_start
from ecs_deploy_many.cli.many import cli
from ecs_deploy_many.core.errors import JournalError
from ecs_deploy_many.core.events import EventName, TargetEvent, fan_out
from ecs_deploy_many.core.redact import Redactor
from ecs_deploy_many.deploy.engine import FleetRun, RunResult, RunVerdict
from ecs_deploy_many.deploy.pipeline import RunContext
from ecs_deploy_many.journal import (
    DirectoryLocation,
    JournalLocation,
    JournalWriter,
    S3Location,
    load_run,
    new_run_id,
    open_journal,
)
from ecs_deploy_many.journal import stores as journal_stores
from ecs_deploy_many.plan import parse_plan
from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import FAST_TIMINGS, ecs_client, sim_pool
from tests.integration.interrupted_runs import Changes
from tests.moto_server import moto_server

pytestmark = pytest.mark.anyio

REGION = "eu-west-1"
ORIGINAL = "arn:aws:ecs:eu-west-1:123456789012:task-definition/{}:1"
FLEET = Fleet.model_validate(
    {
        "region": REGION,
        "timings": FAST_TIMINGS,
        "behaviour": {"images": [{"match": "*:broken*", "outcome": "fail_to_start"}]},
        "task_definitions": {
            name: {
                "containerDefinitions": [{"name": "app", "image": "example/app:1", "memory": 128}]
            }
            for name in ("api", "web", "worker")
        },
        "clusters": [
            {
                "name": "prod",
                "services": [
                    {"name": name, "task_definition": name, "desired_count": 2}
                    for name in ("api", "web", "worker")
                ],
            }
        ],
    }
)
PLAN = """\
version: 1
defaults: {cluster: prod, region: eu-west-1, timeout: 60, rollback: true}
failure_budget: 5
on_failure: continue
targets:
  - {service: api, image: "example/app:2"}
  - {service: web, image: "example/app:broken"}
  - {service: worker, image: "example/app:2", depends_on: [prod/web]}
"""
OPTIONS: dict[str, Any] = {
    "only": (),
    "exclude": (),
    "dependencies": None,
    "max_parallel": None,
    "simulate": False,
    "endpoint_url": None,
}


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


async def journaled_run(
    sim: Simulator,
    plan_path: Path,
    locations: list[JournalLocation],
    run_id: str,
    on_failure: Callable[[str], None] = print,
) -> tuple[RunResult, list[TargetEvent], list[JournalWriter]]:
    """Run the plan at ``plan_path`` with a journal at each of ``locations``."""
    plan = parse_plan(PLAN, source=plan_path, environ={})
    start = journal_start(plan, str(plan_path), OPTIONS, simulated_at=None)
    emitted: list[TargetEvent] = []
    async with AsyncExitStack() as stack:
        journals = [
            await stack.enter_async_context(
                open_journal(
                    location, start, run_id=run_id, clock=sim.clock, redactor=Redactor(),
                    on_failure=on_failure,
                )
            )
            for location in locations
        ]  # fmt: skip
        pool = await stack.enter_async_context(sim_pool(sim))
        run = FleetRun(plan, RunContext(pool, sim.clock, fan_out(*journals, emitted.append)))
        result = await run.run()
        for journal in journals:
            journal.finish(result)
    return result, emitted, journals


@pytest.fixture
def plan_path(tmp_path: Path) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN)
    return path


class DiskFillingUp:
    """The ``os`` module as the journal's store sees it, the disk full after ``after``
    fsyncs: the deploys and the other outputs still have their disk."""

    def __init__(self, after: int) -> None:
        self._left = after

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def fsync(self, descriptor: int) -> None:
        self._left -= 1
        if self._left < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        os.fsync(descriptor)


def as_journaled(event: TargetEvent) -> tuple[Any, ...]:
    facts = json.loads(json.dumps(dict(event.facts), default=str))
    return (event.target.name, event.step, event.event, event.level, event.at, facts)


async def test_the_journal_holds_every_event_of_the_run_in_order(
    plan_path: Path, tmp_path: Path
) -> None:
    location = DirectoryLocation(tmp_path / "runs")
    run_id = new_run_id()
    async with Simulator(FLEET, speed=40, listen=False) as sim:
        result, emitted, _ = await journaled_run(sim, plan_path, [location], run_id)
        async with ecs_client(sim) as ecs:
            described = await ecs.describe_services(cluster="prod", services=["api"])
    statuses = {name: str(r.status) for name, r in result.results.items()}
    assert statuses == {
        "prod/api": "succeeded",
        "prod/web": "rolled_back",
        "prod/worker": "skipped",
    }

    run = await load_run(location, run_id)
    journaled = [(e.target, e.step, e.event, e.level, e.at, dict(e.facts)) for e in run.events]
    assert journaled == [as_journaled(event) for event in emitted]
    assert any(event.level == "debug" for event in run.events)
    assert run.finished is not None
    assert (run.finished.verdict, run.finished.counts["rolled_back"]) == ("failed", 1)

    # Before and after each change, in the order it happened.
    api = [(e.step, e.event) for e in run.events if e.target == "prod/api"]
    transitions = [
        ("resolve", EventName.RESOLVED),
        ("register", EventName.STEP_STARTED),
        ("register", EventName.REGISTERED),
        ("update", EventName.STEP_STARTED),
        ("update", EventName.SERVICE_UPDATED),
        ("wait", EventName.DEPLOYMENT_COMPLETED),
        ("done", EventName.TARGET_FINISHED),
    ]
    positions = [api.index(transition) for transition in transitions]
    assert positions == sorted(positions)

    history = run.histories["prod/api"]
    service = described["services"][0]
    assert history.old_task_definition == ORIGINAL.format("api")
    assert history.old_desired_count == 2
    assert history.new_task_definition == service["taskDefinition"] != ORIGINAL.format("api")
    assert history.deployment_id == service["deployments"][0]["id"]
    assert str(history.status) == "succeeded"
    web = run.histories["prod/web"]
    assert (web.rolled_back_to, str(web.status)) == (ORIGINAL.format("web"), "rolled_back")
    assert not run.histories["prod/worker"].changed_service


async def test_a_journal_failing_mid_run_never_stops_the_deploys(
    plan_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills up a few transitions in (two directories, run_started, then two
    transitions are synced): the run goes on and says why its journal stopped, and what
    was journaled reads back as the start of the run."""
    monkeypatch.setattr(journal_stores, "os", DiskFillingUp(after=5))
    failures: list[str] = []
    location = DirectoryLocation(tmp_path / "runs")
    run_id = new_run_id()
    async with Simulator(FLEET, speed=40, listen=False) as sim:
        result, emitted, (journal,) = await journaled_run(
            sim, plan_path, [location], run_id, on_failure=failures.append
        )

    assert str(result.results["prod/api"].status) == "succeeded"
    assert result.verdict is RunVerdict.FAILED  # web's rollback, as without a journal
    assert journal.error is not None
    assert "could not be written: No space left on device" in journal.error
    assert failures == [journal.error]  # said once
    run = await load_run(location, run_id)
    assert run.finished is None
    assert 0 < len(run.events) < len(emitted) / 2
    journaled = [(e.target, e.step, e.event, e.level, e.at, dict(e.facts)) for e in run.events]
    assert journaled == [as_journaled(e) for e in emitted[: len(run.events)]]


async def test_a_run_killed_mid_write_resumes_from_its_journal(
    plan_path: Path, tmp_path: Path
) -> None:
    """Killed just after api's UpdateService went out, mid-way through the next record:
    the histories read back continue the run, and no service is updated twice."""
    location = DirectoryLocation(tmp_path / "runs")
    run_id = new_run_id()
    plan = parse_plan(PLAN.replace("example/app:broken", "example/app:2"), environ={})
    start = journal_start(plan, str(plan_path), OPTIONS, simulated_at=None)
    async with Simulator(FLEET, speed=40, listen=False) as sim:
        changes = Changes(sim)
        async with (
            open_journal(
                location, start, run_id=run_id, clock=sim.clock, redactor=Redactor(),
                on_failure=print,
            ) as journal,
            sim_pool(sim) as pool,
        ):  # fmt: skip
            with anyio.CancelScope() as killed:

                def kill_after_api_updated(event: TargetEvent) -> None:
                    if event.target.name == "prod/api" and event.event is EventName.SERVICE_UPDATED:
                        killed.cancel()
                        # Nothing the process did on its way out reaches a killed journal.
                        journal.failed(RuntimeError("killed"))

                context = RunContext(pool, sim.clock, fan_out(journal, kill_after_api_updated))
                await FleetRun(plan, context).run()
        (path,) = (location.path / run_id).glob("*.jsonl")
        with path.open("ab") as cut_short:
            cut_short.write(b'{"v":1,"seq":99,"record":"event","at":')

        earlier = await load_run(location, run_id)
        assert earlier.finished is None
        assert earlier.histories["prod/api"].deployment_id
        assert changes.updates["api"] == 1
        async with sim_pool(sim) as pool:
            context = RunContext(pool, sim.clock, lambda event: None)
            result = await FleetRun(plan, context, earlier.histories).run()
    assert result.verdict is RunVerdict.SUCCEEDED
    assert {str(r.status) for r in result.results.values()} == {"succeeded"}
    assert dict(changes.updates) == {"api": 1, "web": 1, "worker": 1}


# -- S3, on moto's server -----------------------------------------------------------


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
async def bucket(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new bucket on moto's server, which every S3 client reaches by the environment."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_url)
    name = f"journals-{new_run_id().lower()[-6:]}"
    async with aioboto3.Session().client("s3", region_name="us-east-1") as s3:
        await s3.create_bucket(Bucket=name)
    return name


async def keys(bucket: str) -> dict[str, bytes]:
    async with aioboto3.Session().client("s3") as s3:
        listed = await s3.list_objects_v2(Bucket=bucket)
        found = {}
        for item in listed.get("Contents", []):
            answer = await s3.get_object(Bucket=bucket, Key=item["Key"])
            found[item["Key"]] = await answer["Body"].read()
        return found


async def show(run_id: str, journal: str, out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """What ``show`` prints; it writes its reports to ``out`` + ``.json``, ``.xml``, ``.html``."""
    capsys.readouterr()
    code = await cli.main(
        [
            "show", run_id, "--journal", journal, "--report", f"{out}.json",
            "--junit", f"{out}.xml", "--html", f"{out}.html",
        ],
        "ecs-deploy-many", standalone_mode=False,
    )  # fmt: skip
    assert code in (None, 0)
    return capsys.readouterr().out


@pytest.mark.real_time
async def test_directory_and_s3_journals_of_one_run_show_the_same(
    plan_path: Path, tmp_path: Path, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = new_run_id()
    directory = DirectoryLocation(tmp_path / "runs")
    s3 = S3Location(bucket, "team/runs")
    async with Simulator(FLEET, speed=40, listen=False) as sim:
        result, _, journals = await journaled_run(sim, plan_path, [directory, s3], run_id)
    assert [journal.error for journal in journals] == [None, None]
    assert result.verdict is RunVerdict.FAILED
    stored = await keys(bucket)
    assert stored, "batches written"
    assert all(key.startswith(f"team/runs/{run_id}/1of1-") for key in stored)
    assert len(stored) > 5  # sent as the run went, at each transition, not only at its end

    from_directory = await show(run_id, str(directory), tmp_path / "directory", capsys)
    from_s3 = await show(run_id, f"s3://{bucket}/team/runs", tmp_path / "s3", capsys)
    assert "run failed" in from_directory
    assert "prod/web" in from_directory
    assert from_s3 == from_directory
    for suffix in ("json", "xml", "html"):
        s3_report, directory_report = tmp_path / f"s3.{suffix}", tmp_path / f"directory.{suffix}"
        assert s3_report.read_text() == directory_report.read_text()


@pytest.mark.real_time
async def test_two_runners_of_one_run_never_overwrite_each_other_in_s3(
    plan_path: Path, bucket: str
) -> None:
    """Two runners journal the same run id under one prefix (shards, or a later command
    continuing the run): every batch of each is kept, and the reader merges both."""
    run_id = new_run_id()
    s3 = S3Location(bucket, "runs")
    async with Simulator(FLEET, speed=40, listen=False) as sim:
        await journaled_run(sim, plan_path, [s3, s3], run_id)
    stored = await keys(bucket)
    runners = {key.split("/")[2] for key in stored}
    assert len(runners) == 2
    for runner in runners:
        batches = sorted(key for key in stored if key.split("/")[2] == runner)
        assert batches[0].endswith("/000001.jsonl")
        assert len(batches) == int(batches[-1].rsplit("/", 1)[1].split(".")[0])  # no gap

    run = await load_run(s3, run_id)
    assert len(run.runners) == 2
    finished = [e for e in run.events if e.event is EventName.TARGET_FINISHED]
    assert len(finished) == 2 * 3  # each runner journaled the whole run

    # S3 itself refuses to replace a batch.
    first = min(stored)
    async with aioboto3.Session().client("s3") as client:
        with pytest.raises(client.exceptions.ClientError, match="PreconditionFailed"):
            await client.put_object(Bucket=bucket, Key=first, Body=b"{}\n", IfNoneMatch="*")
    assert (await keys(bucket))[first] == stored[first]


@pytest.mark.real_time
async def test_routine_records_reach_s3_within_the_flush_interval(
    plan_path: Path, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Progress alone sends no batch at once, but it does not wait for the run's end."""
    monkeypatch.setattr(journal_stores, "FLUSH_INTERVAL", 0.2)
    plan = parse_plan(PLAN, environ={})
    start = journal_start(plan, str(plan_path), OPTIONS, simulated_at=None)
    api = plan.targets[0]
    run_id = new_run_id()
    async with open_journal(
        S3Location(bucket, "runs"), start, run_id=run_id,
        clock=Simulator(FLEET, listen=False).clock, redactor=Redactor(), on_failure=print,
    ) as journal:  # fmt: skip
        assert len(await keys(bucket)) == 1  # run_started, before anything else
        journal(TargetEvent(api, "wait", EventName.PROGRESS, 1.0, {"running": 1}))
        assert len(await keys(bucket)) == 1
        await anyio.sleep(0.6)
        stored = await keys(bucket)
        assert len(stored) == 2
        assert b'"event":"progress"' in stored[max(stored)]


@pytest.mark.real_time
async def test_an_s3_journal_that_cannot_be_written_is_an_error_before_the_run(
    plan_path: Path, moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_url)
    plan = parse_plan(PLAN, environ={})
    start = journal_start(plan, str(plan_path), OPTIONS, simulated_at=None)
    with pytest.raises(JournalError, match="cannot write the run journal at s3://no-such-bucket"):
        async with open_journal(
            S3Location("no-such-bucket", "runs"), start, run_id=new_run_id(),
            clock=Simulator(FLEET, listen=False).clock, redactor=Redactor(),
            on_failure=lambda message: None,
        ):  # fmt: skip
            pytest.fail("the journal opened")
