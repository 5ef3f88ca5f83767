"""Every output of a real rehearsal, and no secret in any of them.

The run holds a succeeded, a failed, a rolled-back and a skipped target. One task
definition file carries secrets: its ``secrets`` reference and a password in its
environment; ECS refuses to run it (awsvpc without a network configuration), and no
secret may reach any output: console and JSON logs, the summary, JUnit, the GitHub step
summary, the JSON and HTML reports.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ecs_deploy_many.cli import single
from ecs_deploy_many.cli.many import cli
from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import REGION

pytestmark = pytest.mark.anyio

ACCESS_KEY_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLEsessionTOKENvalue"
DB_PASSWORD = "987654321-db-password"
SECRET_REFERENCE = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf"
SECRETS = (ACCESS_KEY_SECRET, SESSION_TOKEN, DB_PASSWORD, SECRET_REFERENCE)

FLEET = """\
region: eu-west-1
timings: {provisioning: 2, pending: 3, activating: 1, health_grace: 10, deactivating: 1,
          stopping: 2, deprovisioning: 2}
behaviour:
  images:
    - {match: "*:broken*", outcome: fail_to_start}
task_definitions:
  app-seed: {containerDefinitions: [{name: seed, image: "example/seed:0", memory: 128}]}
"""
PLAN = """\
version: 1
defaults: {region: eu-west-1, timeout: 300, progress_deadline: 60, rollback: true}
failure_budget: 5
waves:
  - {name: canary, targets: [prod/api]}
  - {name: rest, targets: ["*"]}
targets:
  - {cluster: prod, service: api, image: "example/api:2"}
  - {cluster: prod, service: search, image: "example/search:broken"}
  - {cluster: prod, service: indexer, image: "example/indexer:2", depends_on: [prod/search]}
  - {name: seed, cluster: prod, task_definition: app-seed, task_definition_file: seed.json,
     image: "example/seed:2", run_task: true}
"""
SEED = {
    "family": "app-seed",
    "requiresCompatibilities": ["FARGATE"],
    "networkMode": "awsvpc",
    "cpu": "256",
    "memory": "512",
    "containerDefinitions": [
        {
            "name": "seed",
            "image": "example/seed:1",
            "environment": [{"name": "DB_PASSWORD", "value": DB_PASSWORD}],
            "secrets": [{"name": "DB_URL", "valueFrom": SECRET_REFERENCE}],
        }
    ],
}


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "plan.yaml").write_text(PLAN)
    (tmp_path / "fleet.yaml").write_text(FLEET)
    (tmp_path / "seed.json").write_text(json.dumps(SEED))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ACCESS_KEY_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "step-summary.md"))
    return tmp_path


async def rehearse(files: Path, log_format: str) -> int:
    code = await cli.main(
        [
            str(files / "plan.yaml"), "--simulate", "--speed", "100",
            "--fleet", str(files / "fleet.yaml"), "--log-format", log_format,
            "--report", str(files / "report.json"), "--junit", str(files / "junit.xml"),
            "--html", str(files / "report.html"),
        ],
        "ecs-deploy-many", standalone_mode=False,
    )  # fmt: skip
    return code if isinstance(code, int) else 0


@pytest.mark.parametrize("log_format", ["json", "console"])
async def test_no_secret_in_any_output(
    files: Path, capsys: pytest.CaptureFixture[str], log_format: str
) -> None:
    assert await rehearse(files, log_format) == 1
    captured = capsys.readouterr()
    outputs = {
        "logs": captured.err,
        "summary": captured.out,
        "report": (files / "report.json").read_text(),
        "junit": (files / "junit.xml").read_text(),
        "html": (files / "report.html").read_text(),
        "github": (files / "step-summary.md").read_text(),
    }
    for name, text in outputs.items():
        leaked = [secret for secret in SECRETS if secret in text]
        assert not leaked, f"{name} shows {leaked}"
    [seed] = [t for t in json.loads(outputs["report"])["targets"] if t["name"] == "seed"]
    assert "Network Configuration must be provided" in seed["error"]


async def test_junit_and_github_summary_of_a_real_run(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await rehearse(files, "json") == 1
    [suite] = ET.parse(files / "junit.xml").getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "2", "1")
    cases = {case.get("name"): case for case in suite}
    assert {name: case.get("classname") for name, case in cases.items()} == {
        "prod/api": "canary",
        "prod/search": "rest",
        "prod/indexer": "rest",
        "seed": "rest",
    }
    assert list(cases["prod/api"]) == []
    rolled_back = cases["prod/search"].find("failure")
    assert rolled_back is not None
    assert rolled_back.get("type") == "rolled_back"
    assert rolled_back.get("message") == "no progress for 60 s (0/2 tasks running)"
    assert rolled_back.text is not None
    assert "last ECS service events:" in rolled_back.text
    assert "CannotPullContainerError" in rolled_back.text
    seed = cases["seed"].find("failure")
    assert seed is not None
    assert seed.text is not None
    assert "AWS error code: InvalidParameterException" in seed.text
    skipped = cases["prod/indexer"].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "dependency prod/search was rolled back"

    github = (files / "step-summary.md").read_text()
    assert github.startswith("### ecs-deploy-many: failed\n")
    assert "| prod/search | rest | rolled_back | no progress for 60 s (0/2 tasks running) |" in (
        github
    )
    out = capsys.readouterr().out
    assert out.startswith("run failed in ")
    assert out.splitlines()[0].endswith(
        "(simulated at 100x): 4 targets: 1 succeeded, 1 failed, 1 rolled back, 1 skipped"
    )
    assert "no progress for 60 s (0/2 tasks running)" in out


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    fleet = Fleet.model_validate(
        {
            "region": REGION,
            "timings": {"provisioning": 2, "pending": 3, "activating": 1, "health_grace": 10},
            "task_definitions": {
                "web": {
                    "containerDefinitions": [
                        {"name": "web", "image": "example/web:1", "memory": 128}
                    ]
                }
            },
            "clusters": [{"name": "prod", "services": [{"name": "web", "task_definition": "web"}]}],
            "behaviour": {"images": [{"match": "*:broken*", "outcome": "fail_to_start"}]},
        }
    )
    async with Simulator(fleet, speed=100, strict_output=True) as running:
        yield running


async def test_single_service_mode_ends_with_one_summary_line(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "zzSECRETzzFLAGzz0123456789"
    base = ["--endpoint-url", sim.endpoint_url, "-k", "AKIDFLAG", "-s", secret, "-r", REGION]
    deploy = [*base, "-c", "prod", "-n", "web", "-i"]
    assert await single.run([*deploy, "example/web:2"], clock=sim.clock) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[-1].startswith("web: succeeded in ")
    assert out.splitlines()[-1].endswith(
        f"(arn:aws:ecs:{REGION}:123456789012:task-definition/web:2)"
    )
    assert await single.run([*deploy, "example/web:broken", "-t", "30"], clock=sim.clock) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[-1].startswith("web: failed in ")
    assert err.splitlines()[-1].endswith(
        "did not finish within 30 s (last state: 0/1 tasks running)"
    )
    assert secret not in out + err
