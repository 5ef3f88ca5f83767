"""`ecs-deploy-many PLAN` journals its run; `runs` lists runs and `show RUN` rebuilds its outputs.

Runs rehearse in-process (``--simulate``); journals go to the test's state directory
(``ECS_DEPLOY_MANY_STATE_DIR``, set for every test) unless ``--journal`` says otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aioboto3
import asyncclick as click
import pytest

from ecs_deploy_many.journal import stores
from ecs_deploy_many.sim.fleet import load_fleet
from ecs_deploy_many.sim.server import Simulator
from tests.e2e.test_fleet_cli import FLEET, PLAN, many
from tests.integration.test_journal import DiskFillingUp
from tests.moto_server import moto_server

pytestmark = pytest.mark.anyio

# api succeeds, web is rolled back, mailer is skipped: every kind of outcome.
FAILING_PLAN = PLAN.replace("example/web:${RELEASE}", "example/web:broken").replace(
    '{cluster: jobs, service: mailer, image: "example/mailer:${RELEASE}"}',
    '{cluster: jobs, service: mailer, image: "example/mailer:${RELEASE}", depends_on: [prod/web]}',
)
FAILING_PLAN = FAILING_PLAN.replace("rollback: true}", "rollback: true}\nfailure_budget: 3")
RUN_LINE = re.compile(
    r"^run (\d{8}T\d{6}Z-[0-9a-f]{6})(: journal at .+| \(not journaled\))$", re.MULTILINE
)


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "plan.yaml").write_text(FAILING_PLAN)
    (tmp_path / "fleet.yaml").write_text(FLEET)
    monkeypatch.setenv("RELEASE", "2.0")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def outputs(prefix: str) -> list[str]:
    return ["--report", f"{prefix}.json", "--junit", f"{prefix}.xml", "--html", f"{prefix}.html"]


async def rehearse(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Exit code, summary (stdout) and the run id printed at the start."""
    capsys.readouterr()
    code = await many(
        "plan.yaml", "--simulate", "--speed", "100", "--fleet", "fleet.yaml",
        "--log-format", "json", *args,
    )  # fmt: skip
    captured = capsys.readouterr()
    found = RUN_LINE.search(captured.err)
    assert found, captured.err[:2000]
    return code, captured.out, found[1]


def read(path: str) -> Any:
    text = Path(path).read_text()
    return json.loads(text) if path.endswith(".json") else text


async def test_show_rebuilds_the_summary_and_reports_from_the_journal_alone(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, summary, run_id = await rehearse(capsys, *outputs("run"))
    assert code == 1
    report = read("run.json")
    assert report["run_id"] == run_id
    assert {t["name"]: t["status"] for t in report["targets"]} == {
        "migrate": "succeeded",
        "prod/api": "succeeded",
        "prod/web": "rolled_back",
        "jobs/mailer": "skipped",
    }
    web = next(t for t in report["targets"] if t["name"] == "prod/web")
    assert web["service_events"]
    assert web["failed_step"] == "wait"

    # The plan changes afterwards: show does not read it.
    (files / "plan.yaml").write_text("version: 1\ntargets: []\n")
    code = await many("show", run_id[:20], *outputs("shown"))
    assert code == 0
    captured = capsys.readouterr()
    assert captured.out == summary
    assert f"run {run_id} of plan.yaml" in captured.err
    assert read("shown.json") == report
    assert read("shown.xml") == read("run.xml")
    assert read("shown.html") == read("run.html")


async def test_runs_lists_runs_newest_first_with_verdict_and_counts(
    files: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, _, failed = await rehearse(capsys)
    (files / "plan.yaml").write_text(PLAN)
    _, _, succeeded = await rehearse(capsys)
    _, _, killed = await rehearse(capsys)
    # A kill before the end: no run_finished, and the record in flight cut short.
    (journal,) = (tmp_path / "runs" / killed).glob("*.jsonl")
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:-3]) + lines[-3][:30])

    assert await many("runs") == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == [killed, succeeded, failed]
    by_id = {line.split()[0]: line for line in listed}
    assert "  plan.yaml  " in by_id[failed]
    assert by_id[failed].endswith("  failed  4 targets: 2 succeeded, 1 rolled back, 1 skipped")
    assert by_id[succeeded].endswith("  succeeded  4 targets: 4 succeeded")
    assert "  unfinished  4 targets: " in by_id[killed]
    assert await many("runs", "--limit", "1") == 0
    assert capsys.readouterr().out.split()[0] == killed

    # What the killed run had not finished shows as interrupted, with what it had done.
    assert await many("show", killed, "--report", "killed.json") == 0
    assert capsys.readouterr().out.startswith("run interrupted in ")
    report = read("killed.json")
    assert report["result"] == "interrupted"
    assert len(report["targets"]) == 4
    cut = [t for t in report["targets"] if t["status"] == "interrupted"]
    assert cut
    assert all("the journal ends before this target finished" in t["error"] for t in cut)
    assert all(t["new_task_definition"] for t in cut)


async def test_read_only_modes_and_no_journal_write_no_journal(
    files: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for mode in ("--dry-run", "--validate"):
        assert await many("plan.yaml", "--simulate", "--fleet", "fleet.yaml", mode) == 0
    code, _, run_id = await rehearse(capsys, "--no-journal", "--report", "run.json")
    assert code == 1
    assert read("run.json")["run_id"] == run_id
    assert not (tmp_path / "runs").exists()
    with pytest.raises(click.UsageError, match="--journal and --no-journal contradict"):
        await many("plan.yaml", "--journal", "elsewhere", "--no-journal")


async def test_a_journal_failing_mid_run_is_said_reported_and_fails_the_run(
    files: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every target succeeds, but the run cannot be resumed from its journal: exit 1."""
    (files / "plan.yaml").write_text(PLAN)
    monkeypatch.setattr(stores, "os", DiskFillingUp(after=6))
    capsys.readouterr()
    code = await many(
        "plan.yaml", "--simulate", "--speed", "100", "--fleet", "fleet.yaml",
        "--log-format", "json", "--report", "run.json",
    )  # fmt: skip
    assert code == 1
    report = read("run.json")
    assert set(report["counts"].items()) >= {("succeeded", 4)}
    assert report["result"] == "succeeded"
    assert "could not be written: No space left on device" in report["journal_error"]
    err = capsys.readouterr().err
    loud = [line for line in err.splitlines() if line.startswith("error: the run journal")]
    assert len(loud) == 1
    assert "the deploys go on" in loud[0]


async def test_show_of_an_unknown_run_is_a_clear_error(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await many("show", "20250101T000000Z-abcdef") == 2
    assert "error: no run 20250101T000000Z-abcdef in " in capsys.readouterr().err


@pytest.mark.real_time
async def test_a_journal_that_cannot_be_created_stops_the_run_before_any_ecs_call(
    files: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-key-for-the-simulator")
    (files / "not-a-directory").write_text("")
    async with Simulator(load_fleet(files / "fleet.yaml"), speed=100) as sim:
        code = await many(
            "plan.yaml", "--endpoint-url", sim.endpoint_url, "--speed", "100",
            "--journal", "not-a-directory/runs",
        )  # fmt: skip
        calls = sim.stats().total_calls
    assert code == 2
    err = capsys.readouterr().err
    assert "error: cannot write the run journal at not-a-directory/runs" in err
    assert "nothing was changed" in err
    assert calls == 0


# -- S3 ------------------------------------------------------------------------------


@pytest.fixture
def moto_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-key-for-moto")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with moto_server() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", url)
        yield url


@pytest.mark.real_time
@pytest.mark.usefixtures("moto_url")
async def test_a_run_journaled_in_s3_shows_its_own_report(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with aioboto3.Session().client("s3") as s3:
        await s3.create_bucket(Bucket="journals")
    code, summary, run_id = await rehearse(
        capsys, "--journal", "s3://journals/ci", "--report", "run.json"
    )
    assert code == 1
    assert await many("runs", "--journal", "s3://journals/ci") == 0
    assert capsys.readouterr().out.startswith(f"{run_id}  plan.yaml  ")
    assert await many("show", run_id, "--journal", "s3://journals/ci/", "--report", "s3.json") == 0
    assert capsys.readouterr().out == summary
    assert read("s3.json") == read("run.json")
    assert not (files / "runs").exists()  # nothing journaled locally
