"""The run report of a real run on the simulator: every key, status and time, and no secrets.

The plan runs in-process on the simulator's clock with the real client over HTTP, so the
report's times are simulated ones, as they are in a rehearsal.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ecs_deploy_many.core.redact import Redactor
from ecs_deploy_many.deploy.engine import RunResult, run_plan
from ecs_deploy_many.deploy.pipeline import RunContext
from ecs_deploy_many.observe.report import run_report, write_report
from ecs_deploy_many.plan import parse_plan
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import (
    REGION,
    REPORTED_PLAN,
    REPORTED_SERVICES,
    SECRET_ACCESS_KEY,
    SECRET_ENV_VALUE,
    reported_fleet,
    sim_pool,
)

pytestmark = pytest.mark.anyio

SPEED = 40.0
PLAN_PATH = "plans/release.yaml"
TASK_DEFINITION = f"arn:aws:ecs:{REGION}:123456789012:task-definition"
SERVICES = REPORTED_SERVICES
FLEET = reported_fleet(*SERVICES)
# and one target on a cluster that does not exist
PLAN = (
    REPORTED_PLAN
    + "  - {cluster: nowhere, service: api, image: example/api:2, allow_failure: true}\n"
)
TARGET_KEYS = {
    "name",
    "kind",
    "cluster",
    "service",
    "task_definition",
    "region",
    "wave",
    "depends_on",
    "status",
    "old_task_definition",
    "new_task_definition",
    "deployment_id",
    "error",
    "error_code",
    "failed_step",
    "allow_failure",
    "started_at",
    "finished_at",
    "duration_s",
    "service_events",
}


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
async def run() -> AsyncIterator[RunResult]:
    """The plan, run once: api succeeds, web is rolled back, worker is skipped after it."""
    async with (
        Simulator(FLEET, speed=SPEED, strict_output=True, listen=False) as sim,
        sim_pool(sim) as pool,
    ):
        yield await run_plan(
            parse_plan(PLAN, environ={}), RunContext(pool, sim.clock, lambda event: None)
        )


def moment(text: Any) -> datetime:
    """An ISO-8601 UTC time as the report writes it."""
    assert isinstance(text, str)
    assert text.endswith("Z")
    parsed = datetime.fromisoformat(text)
    assert parsed.utcoffset() is not None
    assert parsed.utcoffset() == UTC.utcoffset(parsed)
    return parsed


def near(text: Any, epoch: float | None) -> bool:
    """The report's time is the run's clock reading, to the millisecond."""
    assert epoch is not None
    return abs(moment(text) - datetime.fromtimestamp(epoch, tz=UTC)).total_seconds() < 0.001


async def test_report_of_a_run_with_a_rollback_and_a_skipped_dependant(run: RunResult) -> None:
    report = run_report(run, plan_path=PLAN_PATH)
    assert json.loads(json.dumps(report)) == report  # plain JSON, nothing stringified later

    assert report["plan"] == PLAN_PATH
    assert report["result"] == "failed"
    assert report["counts"] == {
        "succeeded": 1,
        "failed": 2,
        "rolled_back": 1,
        "skipped": 1,
        "unchanged": 0,
        "interrupted": 0,
        "unknown": 0,
    }
    assert (report["failures"], report["failure_budget"], report["halted"]) == (1, "5", None)
    assert near(report["started_at"], run.started_at)
    assert near(report["finished_at"], run.finished_at)
    assert moment(report["started_at"]) < moment(report["finished_at"])
    assert report["duration_s"] > 30  # web's 30 s timeout, then its rollback

    targets = report["targets"]
    assert [t["name"] for t in targets] == [
        "prod/api",
        "prod/web",
        "prod/worker",
        "prod/jobs",
        "nowhere/api",
    ]
    for entry in targets:
        assert set(entry) == TARGET_KEYS
        assert (entry["kind"], entry["region"], entry["task_definition"]) == (
            "service",
            REGION,
            None,
        )
    api, web, worker, jobs, nowhere = targets

    assert (api["status"], api["wave"], api["cluster"], api["service"]) == (
        "succeeded",
        "canary",
        "prod",
        "api",
    )
    assert (api["old_task_definition"], api["new_task_definition"]) == (
        f"{TASK_DEFINITION}/api:1",
        f"{TASK_DEFINITION}/api:2",
    )
    assert api["deployment_id"].startswith("ecs-svc/")
    assert (api["error"], api["error_code"], api["failed_step"]) == (None, None, None)
    assert any("has reached a steady state" in e["message"] for e in api["service_events"])
    for event in api["service_events"]:
        assert set(event) == {"at", "message"}
        assert moment(api["started_at"]) <= moment(event["at"]) <= moment(api["finished_at"])

    assert (web["status"], web["wave"], web["failed_step"]) == ("rolled_back", "rest", "wait")
    assert "did not finish within 30 s" in web["error"]
    assert web["new_task_definition"] == f"{TASK_DEFINITION}/web:2"
    assert web["allow_failure"] is False

    assert (worker["status"], worker["error"]) == ("skipped", "dependency prod/web was rolled back")
    assert worker["depends_on"] == ["prod/web"]
    assert (worker["started_at"], worker["finished_at"], worker["duration_s"]) == (None,) * 3
    assert worker["service_events"] == []

    assert (jobs["status"], jobs["failed_step"], jobs["error_code"]) == ("failed", "render", None)
    assert jobs["allow_failure"] is True
    assert (nowhere["status"], nowhere["failed_step"]) == ("failed", "resolve")
    assert nowhere["error_code"] == "ClusterNotFoundException"

    for entry, result in zip(targets, run.results.values(), strict=True):
        assert entry["duration_s"] == result.duration_s
        if result.started_at is not None:
            assert near(entry["started_at"], result.started_at)
            assert near(entry["finished_at"], result.finished_at)
            assert entry["duration_s"] == pytest.approx(
                (moment(entry["finished_at"]) - moment(entry["started_at"])).total_seconds(),
                abs=0.002,
            )
    # web waited out its 30 s timeout; how long api's healthy rollout took on the scaled
    # clock depends on how busy the machine was, so only the recorded value is checked.
    assert web["duration_s"] > 30
    assert api["duration_s"] > 0


async def test_report_never_holds_a_secret(run: RunResult, tmp_path: Path) -> None:
    # An AWS error or an ECS event may echo what a call carried; make one do so.
    web = run.results["prod/web"]
    web.error = f"{web.error} (DB_PASSWORD={SECRET_ENV_VALUE})"
    web.service_events.append({"at": 0.0, "message": f"echoed {SECRET_ACCESS_KEY}"})
    redactor = Redactor([SECRET_ENV_VALUE, SECRET_ACCESS_KEY])

    path = tmp_path / "report.json"
    write_report(path, run_report(run, plan_path=PLAN_PATH, redactor=redactor))

    text = path.read_text()
    assert SECRET_ENV_VALUE not in text
    assert SECRET_ACCESS_KEY not in text
    written = json.loads(text)
    entry = written["targets"][1]
    assert entry["error"].endswith("(DB_PASSWORD=***)")
    assert entry["service_events"][-1] == {"at": None, "message": "echoed ***"}
    assert written["counts"]["rolled_back"] == 1  # keys and the rest are untouched


def test_write_report_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text("old and longer than what replaces it " * 10)
    write_report(path, {"result": "succeeded", "targets": []})
    assert json.loads(path.read_text()) == {"result": "succeeded", "targets": []}
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left

    with pytest.raises(TypeError):
        write_report(path, {"result": object()})
    assert json.loads(path.read_text())["result"] == "succeeded"  # the old report survives
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


async def test_report_names_are_never_masked(run: RunResult) -> None:
    # "prod" is a secret here, and the cluster of every target: a name is not a secret.
    report = run_report(run, plan_path=PLAN_PATH, redactor=Redactor(["prod"]))
    names = {t["name"]: (t["cluster"], t["depends_on"]) for t in report["targets"]}
    assert names == {
        "prod/api": ("prod", []),
        "prod/web": ("prod", []),
        "prod/worker": ("prod", ["prod/web"]),
        "prod/jobs": ("prod", []),
        "nowhere/api": ("nowhere", []),
    }
    assert report["targets"][1]["new_task_definition"].endswith(":task-definition/web:2")
