"""`ecs-deploy-many` from the command line: validate, rehearse, select, report, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ecs_deploy_many.cli.many import cli
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.deploy import pipeline

pytestmark = pytest.mark.anyio

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]

FLEET = """\
region: eu-west-1
timings: {provisioning: 2, pending: 3, activating: 1, health_grace: 10, deactivating: 1,
          stopping: 2, deprovisioning: 2, run_duration: 5}
behaviour:
  images:
    - {match: "*:broken*", outcome: fail_to_start}
    - {match: "*migrate:fails*", outcome: "exit:2"}
"""

PLAN = """\
version: 1
defaults: {region: eu-west-1, timeout: 120, rollback: true}
waves:
  - {name: migrate, targets: [migrate]}
  - {name: services, targets: ["*"]}
targets:
  - name: migrate
    cluster: prod
    task_definition: app-migrate
    image: example/migrate:${RELEASE}
    run_task: {wait_for_success: true}
  - {cluster: prod, service: api, image: "example/api:${RELEASE}", depends_on: [migrate]}
  - {cluster: prod, service: web, image: "example/web:${RELEASE}", depends_on: [migrate]}
  - {cluster: jobs, service: mailer, image: "example/mailer:${RELEASE}"}
"""


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "plan.yaml").write_text(PLAN)
    (tmp_path / "fleet.yaml").write_text(FLEET)
    monkeypatch.setenv("RELEASE", "2.0")
    return tmp_path


async def many(*args: str) -> int:
    """Run in-process; without standalone mode click returns the exit code."""
    code = await cli.main(list(args), "ecs-deploy-many", standalone_mode=False)
    return code if isinstance(code, int) else 0


async def rehearse(files: Path, *args: str) -> tuple[int, dict[str, Any]]:
    report = files / "report.json"
    code = await many(
        str(files / "plan.yaml"), "--simulate", "--speed", "100",
        "--fleet", str(files / "fleet.yaml"), "--report", str(report),
        "--log-format", "json", *args,
    )  # fmt: skip
    return code, json.loads(report.read_text())


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {t["name"]: t["status"] for t in report["targets"]}


async def test_validate_good_plan(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await many("validate", str(files / "plan.yaml")) == 0
    assert "valid: 4 targets in 2 waves" in capsys.readouterr().out
    assert await many(str(files / "plan.yaml"), "--validate") == 0


async def test_plan_errors_exit_2_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\ntargets:\n  - {cluster: prod, service: api, image: 'x:1', desird_count: 2}\n"
    )
    assert await many(str(bad)) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3: targets[0].desird_count" in err
    assert "did you mean 'desired_count'" in err
    assert "nothing was changed" in err


async def test_rehearsal_runs_migration_then_services(files: Path) -> None:
    code, report = await rehearse(files)
    assert code == 0
    assert report["result"] == "succeeded"
    assert statuses(report) == dict.fromkeys(
        ["migrate", "prod/api", "prod/web", "jobs/mailer"], "succeeded"
    )
    by_name = {t["name"]: t for t in report["targets"]}
    # the services that depend on the migration started only after it finished
    assert by_name["prod/api"]["started_at"] >= by_name["migrate"]["finished_at"]


async def test_failed_migration_gates_its_dependants(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (files / "plan.yaml").write_text(
        PLAN.replace("example/migrate:${RELEASE}", "example/migrate:fails")
    )
    code, report = await rehearse(files)
    assert code == 1
    assert report["result"] == "failed"
    result = statuses(report)
    assert result["migrate"] == "failed"
    assert result["prod/api"] == result["prod/web"] == "skipped"
    assert "exited with code 2" in report["targets"][0]["error"]


async def test_only_and_exclude(files: Path) -> None:
    code, report = await rehearse(
        files, "--only", "prod/*", "--exclude", "prod/web", "--skip-dependencies"
    )
    assert code == 0
    assert statuses(report) == {"prod/api": "succeeded"}


async def test_only_refuses_to_leave_a_dependency_out(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await many(str(files / "plan.yaml"), "--only", "prod/api") == 2
    assert "'prod/api' depends on 'migrate'" in capsys.readouterr().err
    code, report = await rehearse(files, "--only", "prod/api", "--with-dependencies")
    assert code == 0
    assert statuses(report) == {"migrate": "succeeded", "prod/api": "succeeded"}


async def test_unknown_only_pattern_is_a_plan_error(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await many(str(files / "plan.yaml"), "--only", "nothing-*") == 2
    assert "nothing-*" in capsys.readouterr().err


async def test_dry_run_in_rehearsal_shows_changes(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await many(
        str(files / "plan.yaml"), "--simulate", "--fleet", str(files / "fleet.yaml"), "--dry-run"
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "example/api:2.0" in out
    assert "example/mailer:2.0" in out


def test_sigterm_mid_run_leaves_a_truthful_report(files: Path) -> None:
    """A real process and a real signal: exit 130, and every target's state recorded."""
    report = files / "report.json"
    slow = FLEET.replace("health_grace: 10", "health_grace: 3000")
    (files / "fleet.yaml").write_text(slow)
    process = subprocess.Popen(
        [
            BIN / "ecs-deploy-many", files / "plan.yaml", "--simulate", "--speed", "50",
            "--fleet", files / "fleet.yaml", "--report", report, "--log-format", "json",
            "--interrupt-grace", "20",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "RELEASE": "2.0"},
    )  # fmt: skip
    try:
        assert process.stderr is not None
        for line in process.stderr:  # wait until services are deploying
            if '"step": "wait"' in line and '"prod/api"' in line:
                break
        time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, err[-2000:]
    data = json.loads(report.read_text())
    assert data["result"] == "interrupted"
    result = statuses(data)
    assert result["migrate"] == "succeeded"
    # in-flight when the grace ran out: interrupted, with what was known kept
    assert result["prod/api"] == "interrupted"
    api = next(t for t in data["targets"] if t["name"] == "prod/api")
    assert api["new_task_definition"]
    assert api["deployment_id"]
    assert "interrupted" in out
    # The journal ends with the outcome too, the interrupted target's state before it.
    (journal,) = (files / "runs").glob("*/*.jsonl")
    *_, last_target, outcome = map(json.loads, journal.read_text().splitlines())
    assert (outcome["record"], outcome["verdict"]) == ("run_finished", "interrupted")
    assert outcome["counts"]["interrupted"] >= 1
    assert last_target["event"] == "target_finished"


@pytest.mark.parametrize(
    ("options", "why"),
    [
        # neither bound lets ECS move: the "unable to stop or start tasks" stall
        ("image: 'example/api:2', min_healthy_percent: 100, max_percent: 100", "stuck"),
        # tasks start and fail over and over: busy, but no progress
        ("image: 'example/api:broken'", "failing"),
    ],
)
async def test_progress_deadline_fails_a_stalled_deployment_early(
    files: Path, options: str, why: str
) -> None:
    (files / "plan.yaml").write_text(
        "version: 1\n"
        "defaults: {region: eu-west-1, timeout: 3000, progress_deadline: 60}\n"
        "targets:\n"
        f"  - {{cluster: prod, service: api, {options}}}\n"
    )
    code, report = await rehearse(files)
    assert code == 1, why
    [api] = report["targets"]
    assert api["status"] == "failed"
    assert "no progress for 60 s" in api["error"]
    assert api["duration_s"] < 300  # far from the 3000 s timeout


async def test_the_demo_plan_rehearses_as_the_readme_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make demo`, faster: one allowed failure rolled back, the run still succeeds."""
    monkeypatch.chdir(ROOT)
    report = tmp_path / "demo.json"
    code = await many(
        "deploy-plans/demo.yaml", "--simulate", "--speed", "200",
        "--fleet", "deploy-plans/sim/demo-fleet.yaml", "--report", str(report),
        "--log-format", "json",
    )  # fmt: skip
    assert code == 0
    result = statuses(json.loads(report.read_text()))
    assert result.pop("shop-jobs/search") == "rolled_back"
    assert set(result.values()) == {"succeeded"}
    assert len(result) == 11


async def test_a_bad_fleet_file_is_a_clear_error(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (files / "fleet.yaml").write_text("region: eu-west-1\nbehaviour: 5\n")
    code = await many(str(files / "plan.yaml"), "--simulate", "--fleet", str(files / "fleet.yaml"))
    assert code == 2
    err = capsys.readouterr().err
    assert f"error: {files / 'fleet.yaml'}: behaviour: " in err
    assert "cannot be rehearsed; nothing was changed" in err
    assert "Traceback" not in err


async def test_an_unexpected_error_in_one_target_loses_no_output(
    files: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug striking one target: its traceback is logged once, every output is written
    with what is known of each target, and the run fails."""
    render = pipeline.render_revision

    def render_or_break(target: Target, base: Any, pins: Any = None) -> Any:
        if target.name == "prod/web":
            raise RuntimeError("a bug in rendering")
        return render(target, base, pins)

    monkeypatch.setattr(pipeline, "render_revision", render_or_break)
    code, report = await rehearse(
        files, "--junit", str(files / "junit.xml"), "--html", str(files / "report.html")
    )
    assert code == 1
    assert report["result"] == "failed"
    by_name = {t["name"]: t for t in report["targets"]}
    assert by_name["migrate"]["status"] == "succeeded"
    web = by_name["prod/web"]
    assert web["status"] == "interrupted"
    assert web["error"] == "stopped by an unexpected error: RuntimeError: a bug in rendering"
    # the others stopped with it, each with its own state
    assert {by_name[name]["status"] for name in ("prod/api", "jobs/mailer")} <= {
        "interrupted", "succeeded",
    }  # fmt: skip
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.err.splitlines() if line.startswith("{")]
    crashes = [line for line in lines if line["event"] == "unexpected_error"]
    assert len(crashes) == 1
    assert crashes[0]["error"] == "RuntimeError: a bug in rendering"
    assert crashes[0]["exception"].startswith("Traceback (most recent call last):")
    assert "the run stopped on an unexpected error: RuntimeError: a bug in rendering" in (
        captured.out
    )
    assert (files / "junit.xml").read_text().count("<testcase") == 4
    assert "prod/web" in (files / "report.html").read_text()
    (journal,) = (files / "runs").glob("*/*.jsonl")
    outcome = json.loads(journal.read_text().splitlines()[-1])
    assert (outcome["record"], outcome["verdict"]) == ("run_finished", "failed")
    assert "unexpected error: RuntimeError: a bug in rendering" in outcome["halted"]


async def test_validate_counts_in_words(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "one.yaml"
    plan.write_text("version: 1\ntargets:\n  - {cluster: prod, service: api, image: 'x:1'}\n")
    assert await many("validate", str(plan)) == 0
    assert capsys.readouterr().out == f"{plan}: valid: 1 target in 1 wave\n"


async def test_an_output_that_cannot_be_written_spares_the_others(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = files / "no-such-dir" / "report.json"
    code = await many(
        str(files / "plan.yaml"), "--simulate", "--speed", "100",
        "--fleet", str(files / "fleet.yaml"), "--log-format", "json",
        "--report", str(missing), "--junit", str(files / "junit.xml"),
    )  # fmt: skip
    assert code == 1  # every target succeeded, but an output asked for is missing
    captured = capsys.readouterr()
    assert f"error: cannot write the report to {missing}: No such file or directory" in (
        captured.err
    )
    assert (files / "junit.xml").read_text().count("<testcase") == 4
    assert captured.out.startswith("run succeeded in ")


async def test_a_plan_the_simulator_refuses_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "version: 1\ntargets:\n  - {cluster: prod, service: 'api v2', image: 'x:1', "
        "region: eu-west-1}\n"
    )
    assert await many(str(plan), "--simulate") == 2
    err = capsys.readouterr().err
    # the plan's check or the simulator's, whichever refuses it first, names the service
    assert "error: " in err
    assert "api v2" in err
    assert "nothing was changed" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("environ", "region"),
    [
        ({"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "eu-north-1"}, "ap-south-1"),
        ({"AWS_DEFAULT_REGION": "eu-north-1"}, "eu-north-1"),
    ],
)
async def test_a_rehearsal_takes_its_region_in_the_sdks_order(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    environ: dict[str, str],
    region: str,
) -> None:
    (tmp_path / "plan.yaml").write_text(
        "version: 1\ntargets:\n  - {cluster: prod, service: api, image: example/api:2}\n"
    )
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    code = await many(
        str(tmp_path / "plan.yaml"), "--simulate", "--speed", "200", "--log-format", "json"
    )
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "{" in line]
    assert {line["region"] for line in lines if "region" in line} == {region}
