"""The repository's composite action (action.yml), its steps run as a GitHub runner
runs them (tests/ship/composite.py), against the ECS simulator: the outputs, the job
summary and the step's exit code, in fleet and single-service mode.

The action installs the tool from its own checkout into its own virtual environment
once for the module, as a cache miss does; later runs reuse it as a cache hit does.
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.helpers import CREDENTIALS, serving
from tests.ship.composite import ActionRun, run_action, runner_environ
from tests.ship.once import built_once

# What the tests share is built once per session (pip installs from the package index).
pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_time,
    pytest.mark.timeout(600),
]

ROOT = Path(__file__).resolve().parents[2]
PLANS = ROOT / "deploy-plans"
# One service moves to a new image, the other to one the simulator fails to start: the
# run fails, and the failed target is rolled back.
FAILING_PLAN = """\
version: 1
defaults: {region: eu-west-1, rollback: true, timeout: 600, progress_deadline: 120}
targets:
  - {cluster: prod, service: web, image: example/web:2.0}
  - {cluster: prod, service: api, image: example/api:broken-2.0}
"""
SERVICE_FLEET = """\
region: eu-west-1
task_definitions:
  web:
    containerDefinitions: [{name: web, image: "example/web:1", memory: 128}]
clusters:
  - name: prod
    services: [{name: web, task_definition: web, desired_count: 1}]
"""


class Runner:
    """One job's workspace and runner temp directory, where the action runs; ``cache``:
    the environment the cache restores (else none is restored)."""

    def __init__(self, root: Path, cache: Path | None = None) -> None:
        self.workspace = root / "workspace"
        self.temp = root / "runner-temp"
        self.workspace.mkdir()
        self.temp.mkdir()
        shutil.copy(PLANS / "demo.yaml", self.workspace / "demo.yaml")
        shutil.copy(PLANS / "sim" / "demo-fleet.yaml", self.workspace / "demo-fleet.yaml")
        (self.workspace / "failing.yaml").write_text(FAILING_PLAN)
        if cache is not None:
            (self.temp / "ecs-deploy-many").mkdir()
            (self.temp / "ecs-deploy-many" / "venv").symlink_to(cache)
        self.environ = runner_environ()

    @property
    def venv(self) -> Path:
        return self.temp / "ecs-deploy-many" / "venv"

    def run(self, **inputs: str) -> ActionRun:
        shutil.rmtree(self.temp / "_runner_file_commands", ignore_errors=True)
        return run_action(
            ROOT, inputs, workspace=self.workspace, runner_temp=self.temp, environ=self.environ
        )


@pytest.fixture(scope="session")
def first(tmp_path_factory: pytest.TempPathFactory) -> tuple[Runner, ActionRun]:
    """The demo plan rehearsed on a runner where the cache restored nothing."""

    def rehearse(directory: Path) -> None:
        runner = Runner(directory)
        result = runner.run(
            plan="demo.yaml",
            simulate="true",
            fleet="demo-fleet.yaml",
            junit="results/junit.xml",
            args="--speed 1000 --no-journal",
        )
        (directory / "first.pickle").write_bytes(pickle.dumps((runner, result)))

    shared = built_once(tmp_path_factory, "action", rehearse)
    ran: tuple[Runner, ActionRun] = pickle.loads((shared / "first.pickle").read_bytes())
    return ran


@pytest.fixture(scope="session")
def first_run(first: tuple[Runner, ActionRun]) -> ActionRun:
    return first[1]


@pytest.fixture(scope="session")
def runner(tmp_path_factory: pytest.TempPathFactory, first: tuple[Runner, ActionRun]) -> Runner:
    """Another job's runner, where the cache restores the first run's environment."""
    return Runner(tmp_path_factory.mktemp("action"), cache=first[0].venv.resolve())


def test_other_actions_are_listed_not_run(first_run: ActionRun) -> None:
    assert [name for name, _ in first_run.skipped] == [
        "Set up Python for ecs-deploy-many",
        "Restore the cached environment",
    ]
    assert all("another action" in reason for _, reason in first_run.skipped)


def test_rehearsal_sets_the_outputs_from_the_report(first: tuple[Runner, ActionRun]) -> None:
    runner, first_run = first
    assert first_run.exit_code == 0
    out = first_run.outputs
    assert out["verdict"] == "succeeded"
    assert out["exit-code"] == "0"
    assert (out["succeeded"], out["rolled-back"], out["failed"]) == ("11", "1", "0")
    assert json.loads(out["counts"])["rolled_back"] == 1
    assert out["report"] == str(runner.temp / "ecs-deploy-many" / "report.json")
    assert json.loads(Path(out["report"]).read_text())["result"] == "succeeded"
    assert out["run-id"]
    junit = (runner.workspace / "results" / "junit.xml").read_text()
    assert junit.count("<testcase") == 12


def test_rehearsal_writes_the_job_summary(first_run: ActionRun) -> None:
    summary = first_run.summary
    assert summary.startswith("### ecs-deploy-many: succeeded")
    assert "| succeeded | 11 |" in summary
    assert "| shop-jobs/search | rest | rolled_back (allowed to fail) |" in summary


def test_install_is_reused_when_the_cache_restored_it(runner: Runner, first_run: ActionRun) -> None:
    again = runner.run(plan="demo.yaml", simulate="true", **{"dry-run": "true"})
    install = next(step for step in again.steps if step.name == "Install ecs-deploy-many")
    assert install.exit_code == 0
    key = first_run.steps[0].outputs["key"]
    assert key.startswith("ecs-deploy-many-Linux-X64-py3.")
    assert again.steps[0].outputs["key"] == key
    assert (runner.venv / ".ecs-deploy-many-key").read_text() == key
    assert runner.venv.is_symlink()  # the restored environment, not a new one


def test_a_failed_run_fails_the_step_and_says_why(runner: Runner, first_run: ActionRun) -> None:
    failed = runner.run(
        plan="failing.yaml",
        simulate="true",
        fleet="demo-fleet.yaml",
        args="--speed 1000 --no-journal",
        **{"log-format": "json"},
    )
    assert failed.exit_code == 1
    out = failed.outputs
    assert (out["verdict"], out["exit-code"]) == ("failed", "1")
    assert (out["succeeded"], out["rolled-back"]) == ("1", "1")
    assert failed.summary.startswith("### ecs-deploy-many: failed")
    assert "prod/api" in failed.summary


def test_only_and_exclude_select_targets(runner: Runner, first_run: ActionRun) -> None:
    only = runner.run(
        plan="failing.yaml",
        simulate="true",
        only="prod/web\nprod/api",
        exclude="prod/api",
        args="--speed 1000 --no-journal",
    )
    assert only.exit_code == 0
    assert json.loads(only.outputs["counts"])["succeeded"] == 1
    assert sum(json.loads(only.outputs["counts"]).values()) == 1


def test_dry_run_has_no_report_and_says_so(runner: Runner, first_run: ActionRun) -> None:
    dry = runner.run(plan="demo.yaml", simulate="true", **{"dry-run": "true"})
    assert dry.exit_code == 0
    assert (dry.outputs["verdict"], dry.outputs["report"]) == ("dry-run", "")
    assert dry.summary.startswith("### ecs-deploy-many: dry-run")


def test_a_plan_error_is_an_error_verdict(runner: Runner, first_run: ActionRun) -> None:
    (runner.workspace / "broken.yaml").write_text("version: 1\ntargets: 3\n")
    broken = runner.run(plan="broken.yaml", simulate="true")
    assert broken.exit_code == 2
    assert (broken.outputs["verdict"], broken.outputs["exit-code"]) == ("error", "2")


def test_plan_or_single_service_args_is_required(runner: Runner, first_run: ActionRun) -> None:
    neither = runner.run()
    assert neither.exit_code == 3
    assert neither.outputs["verdict"] == ""


def test_single_service_mode_runs_ecs_deploy(runner: Runner, first_run: ActionRun) -> None:
    """The original ecs-deploy flags, against a simulator as a separate process."""
    fleet = runner.workspace / "service-fleet.yaml"
    fleet.write_text(SERVICE_FLEET)
    runner.environ.update({**CREDENTIALS, "AWS_DEFAULT_REGION": "eu-west-1"})
    with serving("--fleet", str(fleet), "--speed", "100") as (_, first_line):
        url = first_line.rsplit(" ", 1)[-1]
        single = runner.run(
            **{"ecs-deploy-args": f"-c prod -n web -i 'example/web:2' -t 600 --endpoint-url {url}"}
        )
        failed = runner.run(
            **{"ecs-deploy-args": f"-c prod -n nosuch -i example/web:2 --endpoint-url {url}"}
        )
    assert (single.exit_code, single.outputs["verdict"]) == (0, "succeeded")
    assert (
        single.summary
        == "### ecs-deploy: succeeded\n\nexit code 0; the step's log has the details\n"
    )
    assert failed.exit_code != 0
    assert failed.outputs["verdict"] == "failed"


def _cache_key(checkout: Path, version: str = "") -> str:
    output = checkout / "github-output"
    output.write_text("")
    env = {**runner_environ(), "GITHUB_OUTPUT": str(output), "GITHUB_ACTION_PATH": str(checkout)}
    subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", ROOT / "action" / "cache-key.sh"],
        env={**env, "INPUT_VERSION": version}, check=True,
    )  # fmt: skip
    return output.read_text().removeprefix("key=").strip()


def test_cache_key_follows_the_code_and_the_version(tmp_path: Path) -> None:
    """A cached environment is reused only for the same code, or the same version."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "src", tmp_path / "src")
    key = _cache_key(tmp_path)
    assert _cache_key(tmp_path) == key
    cli = tmp_path / "src" / "ecs_deploy_many" / "cli" / "many.py"
    cli.write_text(cli.read_text() + "\n")
    changed = _cache_key(tmp_path)
    assert changed != key
    assert len({changed, _cache_key(tmp_path, "0.1.0"), _cache_key(tmp_path, "0.1.1")}) == 3
