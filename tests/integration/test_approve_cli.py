"""`ecs-deploy-many approve RUN WAVE`, and a run's gates at the command line.

Commands run in-process; a run waiting for approval is approved by a second command
through the run's journal: a directory, or S3 on moto's server as from another machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aioboto3
import anyio
import asyncclick as click
import pytest

from ecs_deploy_many.cli.journaling import journal_start
from ecs_deploy_many.cli.many import cli
from ecs_deploy_many.core.redact import Redactor
from ecs_deploy_many.journal import DirectoryLocation, load_run, new_run_id, open_journal
from ecs_deploy_many.journal.approvals import read_approval
from ecs_deploy_many.plan import parse_plan
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import REGION, prod_fleet
from tests.moto_server import moto_server

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy-plans" / "gated-release.yaml"

PLAN = f"""\
version: 1
defaults: {{cluster: prod, region: {REGION}, timeout: 300}}
waves:
  - name: canary
    targets: [prod/a]
    alarms: {{prefix: api-}}
  - {{name: release, targets: ['*'], approval: {{timeout: 3600}}}}
targets:
  - {{service: a, image: "example/a:2"}}
  - {{service: b, image: "example/b:2"}}
"""


async def many(*args: str) -> int:
    code = await cli.main(list(args), "ecs-deploy-many", standalone_mode=False)
    return code if isinstance(code, int) else 0


@pytest.fixture
async def journaled(tmp_path: Path) -> tuple[str, str]:
    """A run of PLAN journaled in a directory (as a run's start writes it); its id and
    the directory."""
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(PLAN)
    plan = parse_plan(PLAN, source=plan_path, environ={})
    start = journal_start(plan, str(plan_path), {}, simulated_at=None)
    run_id, directory = new_run_id(), tmp_path / "runs"
    async with open_journal(
        DirectoryLocation(directory), start, run_id=run_id,
        clock=Simulator(listen=False).clock, redactor=Redactor(), on_failure=print,
    ):  # fmt: skip
        pass
    return run_id, str(directory)


async def test_approve_records_the_first_approval_once(
    journaled: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run_id, directory = journaled
    assert (
        await many("approve", run_id[:10], "release", "--journal", directory, "--note", "ok") == 0
    )
    assert f"approved wave release of run {run_id}" in capsys.readouterr().out
    first = await read_approval(DirectoryLocation(Path(directory)), run_id, "release")
    assert first is not None
    assert first.note == "ok"

    assert await many("approve", run_id, "release", "--journal", directory) == 0
    assert f"already approved by {first.by} at {first.at}" in capsys.readouterr().out
    assert await read_approval(DirectoryLocation(Path(directory)), run_id, "release") == first
    # the journal's own records read as before
    assert (await load_run(DirectoryLocation(Path(directory)), run_id)).run_id == run_id


@pytest.mark.parametrize(
    ("run", "wave", "message"),
    [
        ("20990101T000000Z-abcdef", "release", "20990101T000000Z-abcdef"),
        (None, "relase", "has no wave 'relase'; its waves: canary, release"),
        (None, "canary", "wave canary of run {run_id} asks for no approval"),
    ],
)
async def test_approve_refuses_an_unknown_run_or_wave(
    journaled: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
    run: str | None,
    wave: str,
    message: str,
) -> None:
    run_id, directory = journaled
    assert await many("approve", run or run_id, wave, "--journal", directory) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert message.format(run_id=run_id) in err
    assert await read_approval(DirectoryLocation(Path(directory)), run_id, wave) is None


async def test_a_run_with_an_approval_gate_needs_a_journal(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    with pytest.raises(click.UsageError, match="wave release needs an approval") as refused:
        await many(str(tmp_path / "plan.yaml"), "--no-journal")
    assert refused.value.exit_code == 2


async def test_a_rehearsal_approves_at_once_and_reads_no_alarm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    code = await many(
        str(tmp_path / "plan.yaml"), "--simulate", "--speed", "200", "--log-format", "json"
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "alarm gates are not read in a rehearsal (1 wave)" in err
    assert '"event": "approval_waiting"' in err
    assert '"by": "rehearsal"' in err


# -- from another machine: the journal in S3 ------------------------------------------


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with moto_server() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", url)
        yield "journals"


@pytest.mark.real_time
async def test_a_waiting_run_goes_on_once_approved_through_s3(
    tmp_path: Path, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async with aioboto3.Session().client("s3", region_name="us-east-1") as s3:
        await s3.create_bucket(Bucket=bucket)
    (tmp_path / "plan.yaml").write_text(PLAN)
    journal, run_id = f"s3://{bucket}/runs", new_run_id()
    codes: dict[str, int] = {}

    async def approve_once_waiting() -> None:
        while True:  # until the run journals that it waits
            await anyio.sleep(0.1)
            if await read_approval_events(bucket):
                break
        codes["approve"] = await many("approve", run_id, "release", "--journal", journal)

    async with Simulator(prod_fleet("a", "b"), speed=100) as sim, anyio.create_task_group() as tg:
        tg.start_soon(approve_once_waiting)
        codes["run"] = await many(
            str(tmp_path / "plan.yaml"), "--endpoint-url", sim.endpoint_url, "--speed", "100",
            "--journal", journal, "--run-id", run_id, "--log-format", "json",
        )  # fmt: skip
        updated = dict(sim.stats().updates)
    captured = capsys.readouterr()
    assert codes == {"approve": 0, "run": 0}, captured.err
    assert f"approved wave release of run {run_id}" in captured.out
    assert sum(updated.values()) == 2
    assert '"event": "approved"' in captured.err


async def read_approval_events(bucket: str) -> int:
    """How many journal batches in ``bucket`` hold an ``approval_waiting`` event."""
    async with aioboto3.Session().client("s3", region_name="us-east-1") as s3:
        listed = await s3.list_objects_v2(Bucket=bucket)
        found = 0
        for item in listed.get("Contents", []):
            body = await (await s3.get_object(Bucket=bucket, Key=item["Key"]))["Body"].read()
            found += b'"event":"approval_waiting"' in body
        return found


async def test_the_example_gated_release_rehearses(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """deploy-plans/gated-release.yaml, as its comment says: approved at once, no alarm read."""
    monkeypatch.setenv("RELEASE", "2.0")
    code = await many(
        str(EXAMPLE), "--simulate", "--speed", "500", "--log-format", "json", "--no-journal"
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "alarm gates are not read in a rehearsal (3 waves)" in err
    assert err.count('"event": "approved"') == 4  # eu's two targets, us's two
