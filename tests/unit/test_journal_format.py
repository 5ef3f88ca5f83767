"""The journal's records and where they live: run ids, targets as data, reading back."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

import pytest

from ecs_deploy_many.core.clock import ScaledClock
from ecs_deploy_many.core.errors import JournalError
from ecs_deploy_many.core.events import EventName, TargetEvent
from ecs_deploy_many.core.redact import Redactor
from ecs_deploy_many.core.scope import AwsScope
from ecs_deploy_many.core.target import Target, target_as_data, target_from_data
from ecs_deploy_many.deploy.engine import RunResult
from ecs_deploy_many.journal import (
    DirectoryLocation,
    RunJournal,
    RunStart,
    RunStarted,
    S3Location,
    TargetRecord,
    find_run,
    list_runs,
    load_run,
    locate,
    new_run_id,
    open_journal,
    stores,
    target_digest,
)
from ecs_deploy_many.plan.model import Plan

pytestmark = pytest.mark.anyio

API = Target(
    "prod/api",
    cluster="prod",
    service="api",
    image="example/api:2",
    containers=MappingProxyType({"sidecar": "example/proxy:3"}),
    desired_count=3,
    timeout=600.0,
    progress_deadline=120.0,
    rollback=True,
    task_definition_body={"family": "api", "containerDefinitions": [{"name": "app"}]},
    network_configuration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}},
    scope=AwsScope("eu-west-1", profile="prod", assume_role="arn:aws:iam::1:role/deploy"),
    depends_on=("migrate",),
    allow_failure=True,
    wave="core",
)
MIGRATE = Target("migrate", cluster="prod", task_definition="migrate", run_task=True)
START = RunStart(
    plan="plan.yaml",
    plan_digest="sha256:0",
    targets=[MIGRATE, API],
    waves=[{"name": "core", "targets": ["migrate", "prod/api"], "bake": 0.0}],
    policy={"max_parallel": 5, "per_cluster": None, "failure_budget": {}, "on_failure": "halt"},
)


def test_a_target_as_data_comes_back_equal_through_json() -> None:
    data = json.loads(json.dumps(target_as_data(API)))
    assert target_from_data(data) == API
    assert target_from_data(json.loads(json.dumps(target_as_data(MIGRATE)))) == MIGRATE


def test_a_target_digest_changes_with_any_field() -> None:
    assert target_digest(API) == target_digest(target_from_data(target_as_data(API)))
    assert target_digest(API) != target_digest(Target(**{**API.__dict__, "image": "x:3"}))


def test_run_ids_sort_by_start_and_differ_within_a_second() -> None:
    early = new_run_id(datetime(2026, 12, 2, 3, 15, 0, tzinfo=UTC))
    late = new_run_id(datetime(2026, 12, 2, 3, 15, 1, tzinfo=UTC))
    assert early.startswith("20261202T031500Z-")
    assert sorted([late, early]) == [early, late]
    same = {new_run_id(datetime(2026, 12, 2, 3, 15, 0, tzinfo=UTC)) for _ in range(50)}
    assert len(same) == 50


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"ECS_DEPLOY_MANY_STATE_DIR": "/s", "XDG_STATE_HOME": "/x"}, Path("/s")),
        ({"XDG_STATE_HOME": "/x"}, Path("/x/ecs-deploy-many/runs")),
        ({}, Path.home() / ".local/state/ecs-deploy-many/runs"),
    ],
)
def test_the_default_location_is_the_users_state_directory(
    environ: dict[str, str], expected: Path
) -> None:
    assert locate(None, environ) == DirectoryLocation(expected)


def test_a_journal_option_names_a_directory_or_an_s3_prefix() -> None:
    assert locate("s3://bucket/team/runs/", {}) == S3Location("bucket", "team/runs")
    assert locate("s3://bucket", {}) == S3Location("bucket", "")
    assert locate("journals", {}) == DirectoryLocation(Path("journals"))
    with pytest.raises(JournalError, match="name a bucket"):
        locate("s3:///runs", {})


async def journal_two_events(location: DirectoryLocation, run_id: str) -> Path:
    """A run journal with ``run_started``, two events of ``API`` and ``run_finished``."""
    clock = ScaledClock()
    async with open_journal(
        location, START, run_id=run_id, clock=clock, redactor=Redactor(), on_failure=print
    ) as journal:
        journal(TargetEvent(API, "resolve", EventName.RESOLVED, 1.0, {"old_task_definition": "a"}))
        journal(TargetEvent(API, "update", EventName.STEP_STARTED, 2.0, {}, "debug"))
        journal.finish(RunResult(Plan(Path("plan.yaml"), (MIGRATE, API), ()), finished_at=3.0))
    (path,) = (location.path / run_id).glob("*.jsonl")
    return path


async def test_a_line_cut_short_by_a_kill_is_skipped(tmp_path: Path) -> None:
    location = DirectoryLocation(tmp_path)
    run_id = new_run_id()
    path = await journal_two_events(location, run_id)
    whole = path.read_bytes()
    last_line_start = whole.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(whole[: last_line_start + 25])  # killed while writing run_finished

    run = await load_run(location, run_id)
    assert run.finished is None
    assert run.verdict == "unfinished"
    assert [e.event for e in run.events] == [EventName.RESOLVED, EventName.STEP_STARTED]
    history = run.histories["prod/api"]
    assert (history.old_task_definition, history.update_started) == ("a", True)
    assert run.targets == (MIGRATE, API)


async def test_a_malformed_line_elsewhere_is_an_error_naming_file_and_line(
    tmp_path: Path,
) -> None:
    location = DirectoryLocation(tmp_path)
    run_id = new_run_id()
    path = await journal_two_events(location, run_id)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([lines[0], b"{not json\n", *lines[1:]]))
    with pytest.raises(JournalError, match=rf"{path}:2: not a journal record"):
        await load_run(location, run_id)

    record = json.loads(lines[1])
    for changed, problem in [
        ({"v": 9}, "journal format version 9, not 1"),
        ({"event": "teleported"}, "an event this version does not know: 'teleported'"),
        ({"facts": None}, "event record with a wrong at or facts"),
        ({"event": "target_finished", "facts": {}}, "target_finished without a valid 'status'"),
    ]:
        line = json.dumps({**record, **changed}).encode()
        path.write_bytes(b"".join([lines[0], line + b"\n", lines[2]]))
        with pytest.raises(JournalError, match=rf"^{path}:2: {problem}$"):
            await load_run(location, run_id)
    del record["target"]
    path.write_bytes(b"".join([lines[0], json.dumps(record).encode() + b"\n"]))
    with pytest.raises(JournalError, match=rf"^{path}:2: event record without 'target'$"):
        await load_run(location, run_id)


async def test_runs_are_listed_newest_first_and_found_by_a_prefix(tmp_path: Path) -> None:
    location = DirectoryLocation(tmp_path)
    old = new_run_id(datetime(2026, 1, 1, tzinfo=UTC))
    new = new_run_id(datetime(2026, 2, 1, tzinfo=UTC))
    for run_id in (old, new):
        await journal_two_events(location, run_id)
    (tmp_path / "not-a-run").mkdir()

    assert [listed.run_id for listed in await list_runs(location)] == [new, old]
    assert [listed.run_id for listed in await list_runs(location, limit=1)] == [new]
    assert await find_run(location, "202601") == old
    with pytest.raises(JournalError, match="names 2 runs"):
        await find_run(location, "2026")
    with pytest.raises(JournalError, match="no run 2025"):
        await find_run(location, "2025")


async def test_a_journal_that_cannot_be_created_is_an_error_before_the_run(
    tmp_path: Path,
) -> None:
    (tmp_path / "file").write_text("")
    location = DirectoryLocation(tmp_path / "file" / "runs")
    with pytest.raises(JournalError, match=r"cannot write the run journal at .*file/runs"):
        async with open_journal(
            location, START, run_id=new_run_id(), clock=ScaledClock(), redactor=Redactor(),
            on_failure=print,
        ):  # fmt: skip
            pytest.fail("the journal opened")


async def test_every_record_is_written_at_once_and_transitions_reach_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGKILL loses no record the observer was given; a power loss no transition."""
    synced: list[int] = []
    fsync = os.fsync
    monkeypatch.setattr(stores.os, "fsync", lambda fd: synced.append(fd) or fsync(fd))
    location = DirectoryLocation(tmp_path)
    run_id = new_run_id()
    async with open_journal(
        location, START, run_id=run_id, clock=ScaledClock(), redactor=Redactor(), on_failure=print
    ) as journal:
        synced.clear()
        journal(TargetEvent(API, "wait", EventName.PROGRESS, 1.0, {"running": 1}))
        assert not synced  # routine: flushed, not synced
        assert [e.event for e in (await load_run(location, run_id)).events] == [EventName.PROGRESS]
        journal(TargetEvent(API, "update", EventName.STEP_STARTED, 2.0, {}, "debug"))
        assert len(synced) == 1  # before UpdateService goes out
        journal(TargetEvent(API, "update", EventName.SERVICE_UPDATED, 3.0, {"deployment_id": "d"}))
        assert len(synced) == 2  # and after


def test_a_changed_plan_is_told_apart_from_the_run(tmp_path: Path) -> None:
    """What a later command (a resume) is told changed since the run."""
    started = RunStarted(
        run_id="20261202T031500Z-1a2b3c", plan="plan.yaml", plan_digest="sha256:1",
        targets=tuple(TargetRecord(t, target_digest(t)) for t in (MIGRATE, API)),
        waves=(), policy={}, options={}, shard="1/1", runner="abcdef", host="ci",
        pid=1, version="0", started="2026-12-02T03:15:00Z", at=0.0,
    )  # fmt: skip
    run = RunJournal("20261202T031500Z-1a2b3c", started, runners=(started,), events=())
    assert run.changes("sha256:1", [MIGRATE, API]) == []
    assert run.changes("sha256:2", [MIGRATE, API]) == ["the plan file plan.yaml changed"]
    changed_api = Target(**{**API.__dict__, "image": "example/api:3"})
    web = Target("prod/web", cluster="prod", service="web")
    assert run.changes("sha256:2", [changed_api, web]) == [
        "target prod/web is new",
        "target migrate is no longer selected",
        "target prod/api changed",
    ]
