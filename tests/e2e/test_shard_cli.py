"""`ecs-deploy-many PLAN --shard K/N --run-id ID [--run-table TABLE]`: one runner's share.

Each shard rehearses in-process (``--simulate``), one after the other, journaling under
one run id in the test's state directory; the run table is on moto's DynamoDB.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncclick as click
import pytest

from ecs_deploy_many.cli.rehearsal import fleet_for_plan
from ecs_deploy_many.journal import new_run_id
from ecs_deploy_many.plan import load_plan
from ecs_deploy_many.sim.fleet import load_fleet
from ecs_deploy_many.sim.server import Simulator
from tests.e2e.test_fleet_cli import FLEET, many
from tests.moto_server import create_pk_table, moto_server

pytestmark = pytest.mark.anyio

# blue (shard 1 of 2) and green (shard 2): two groups of two targets.
PLAN = """\
version: 1
defaults: {region: eu-west-1, timeout: 120, rollback: true}
failure_budget: 0
targets:
  - {cluster: blue, service: api, image: "example/api:broken"}
  - {cluster: blue, service: web, image: "example/web:2"}
  - {cluster: green, service: api, image: "example/api:2"}
  - {cluster: green, service: web, image: "example/web:2"}
"""


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "plan.yaml").write_text(PLAN)
    (tmp_path / "fleet.yaml").write_text(FLEET)
    monkeypatch.chdir(tmp_path)
    return tmp_path


async def rehearse_shard(part: str, *args: str) -> int:
    return await many(
        "plan.yaml", "--simulate", "--speed", "100", "--fleet", "fleet.yaml",
        "--log-format", "json", "--shard", part, *args,
    )  # fmt: skip


@pytest.mark.usefixtures("files")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shard", "1/2"], "--shard 1/2 needs --run-id ID, the same for every shard"),
        (["--run-id", "nightly"], "--run-id 'nightly' is no run id"),
    ],
)
async def test_a_shard_needs_a_valid_run_id(args: list[str], message: str) -> None:
    with pytest.raises(click.UsageError, match=message):
        await many("plan.yaml", "--simulate", *args)


@pytest.mark.usefixtures("files")
async def test_a_shard_is_checked_or_previewed_without_a_run_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    assert await many("plan.yaml", "--shard", "2/2", "--validate") == 0
    assert capsys.readouterr().out == "plan.yaml: valid: 2 targets in 1 wave\n"
    assert await many("plan.yaml", "--simulate", "--shard", "1/2", "--dry-run") == 0
    preview = capsys.readouterr().out
    assert "blue/api" in preview
    assert "green/api" not in preview


@pytest.mark.usefixtures("files")
@pytest.mark.parametrize("part", ["0/2", "3/2", "1", "a/b"])
async def test_k_of_n_is_checked(part: str) -> None:
    with pytest.raises(click.BadParameter, match="is not K/N with 1 <= K <= N"):
        await many("plan.yaml", "--simulate", "--shard", part, "--run-id", new_run_id())


async def test_a_dependency_across_shards_exits_2_before_anything(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (files / "plan.yaml").write_text(
        PLAN.replace('"example/web:2"}\n  - {cluster: green', '"example/web:2"}\n  - {cluster: '
                     'green, depends_on: [blue/web]', 1)
    )  # fmt: skip
    capsys.readouterr()
    assert await rehearse_shard("2/2", "--run-id", new_run_id()) == 2
    err = capsys.readouterr().err
    assert "'green/api' (shard 2/2) depends on 'blue/web' (shard 1/2)" in err
    assert "nothing was changed" in err
    assert not (files / "runs").exists()


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-key-for-moto")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with moto_server() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", url)
        yield url


@pytest.mark.real_time
@pytest.mark.usefixtures("dynamodb")
async def test_a_missing_run_table_exits_2_before_anything(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = await rehearse_shard("1/2", "--run-id", new_run_id(), "--run-table", "no-such")
    assert code == 2
    err = capsys.readouterr().err
    assert "error: the run table no-such does not exist: create it with a string" in err
    assert "nothing was changed" in err
    assert not (files / "runs").exists()  # not even a journal


@pytest.mark.real_time
@pytest.mark.usefixtures("dynamodb")
async def test_a_shard_started_after_another_halted_the_run_deploys_nothing(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await create_pk_table("runs")
    run_id = new_run_id()
    shared = ("--run-id", run_id, "--run-table", "runs")
    assert await rehearse_shard("1/2", *shared, "--report", "first.json") == 1
    assert await rehearse_shard("2/2", *shared, "--report", "second.json") == 1
    first = json.loads((files / "first.json").read_text())
    second = json.loads((files / "second.json").read_text())
    assert {t["name"]: t["status"] for t in first["targets"]} == {
        "blue/api": "rolled_back",
        "blue/web": "succeeded",
    }
    assert {t["name"]: t["status"] for t in second["targets"]} == {
        "green/api": "skipped",
        "green/web": "skipped",
    }
    assert second["halted"] == first["halted"]
    assert "(the last: blue/api, in shard 1/2)" in second["halted"]
    assert second["run_id"] == run_id

    journals = sorted(path.name[:5] for path in (files / "runs" / run_id).iterdir())
    assert journals == ["1of2-", "2of2-"]
    capsys.readouterr()
    assert await many("show", run_id) == 0
    shown = capsys.readouterr()
    assert ": failed (2/2 shards finished)" in shown.err
    assert "4 targets: " in shown.out
    assert "2 skipped" in shown.out


# -- resume, against a simulator over HTTP ------------------------------------------


@pytest.fixture
async def sim(files: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Simulator]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    (files / "plan.yaml").write_text(PLAN.replace("example/api:broken", "example/api:2"))
    plan = load_plan(files / "plan.yaml", environ={})
    async with Simulator(fleet_for_plan(plan, load_fleet(files / "fleet.yaml")), speed=100) as s:
        yield s


async def against(
    sim: Simulator, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    """Exit code and stderr of one command aimed at ``sim``."""
    capsys.readouterr()
    code = await many(
        *args, "--endpoint-url", sim.endpoint_url, "--speed", "100", "--log-format", "json"
    )
    return code, capsys.readouterr().err


async def test_a_sharded_run_is_resumed_shard_by_shard(
    sim: Simulator, files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = new_run_id()
    assert (await against(sim, capsys, "plan.yaml", "--shard", "1/2", "--run-id", run_id))[0] == 0
    # Shard 2 is killed right after its start was journaled.
    assert (await against(sim, capsys, "plan.yaml", "--shard", "2/2", "--run-id", run_id))[0] == 0
    (second,) = (files / "runs" / run_id).glob("2of2-*.jsonl")
    second.write_bytes(second.read_bytes().splitlines(keepends=True)[0])
    capsys.readouterr()
    assert await many("runs") == 0
    assert "unfinished (1/2 shards finished)" in capsys.readouterr().out

    code, err = await against(sim, capsys, "resume", run_id)
    assert code == 2
    assert f"run {run_id} ran in 2 shard(s): resume one with --shard K/2" in err
    code, err = await against(sim, capsys, "resume", run_id, "--shard", "2/2", "--report", "r.json")
    assert (code, err.count("resuming shard 2/2 of run")) == (0, 1)
    report = json.loads((files / "r.json").read_text())
    assert [t["name"] for t in report["targets"]] == ["green/api", "green/web"]
    assert report["result"] == "succeeded"
    assert await many("show", run_id) == 0
    assert ": succeeded (2/2 shards finished)" in capsys.readouterr().err


async def test_a_shard_that_never_started_is_run_not_resumed(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = new_run_id()
    assert (await against(sim, capsys, "plan.yaml", "--shard", "1/2", "--run-id", run_id))[0] == 0
    code, err = await against(sim, capsys, "resume", run_id, "--shard", "2/2")
    assert code == 2
    assert f"shard 2/2 of run {run_id} never started, so there is nothing to resume" in err
    assert f"--shard 2/2 --run-id {run_id}`" in err
