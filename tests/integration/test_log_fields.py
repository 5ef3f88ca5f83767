"""The log line contract, read from the JSON lines of a real rehearsal.

The plan covers every kind of line: a one-off task, services that succeed, fail, are
rolled back and are skipped by the engine, and a failure with an AWS error code. Every
line must carry the identity fields the README's Logs section lists, and each event
the facts listed for it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import pytest

from ecs_deploy_many.cli.many import cli
from ecs_deploy_many.core.events import Step

pytestmark = pytest.mark.anyio

FLEET = """\
region: eu-west-1
timings: {provisioning: 2, pending: 3, activating: 1, health_grace: 10, deactivating: 1,
          stopping: 2, deprovisioning: 2, run_duration: 5}
behaviour:
  images:
    - {match: "*:broken*", outcome: fail_to_start}
task_definitions:
  app-seed: {containerDefinitions: [{name: seed, image: "example/seed:0", memory: 128}]}
"""
PLAN = """\
version: 1
defaults: {region: eu-west-1, timeout: 300, progress_deadline: 60}
failure_budget: 10
waves:
  - {name: migrate, targets: [migrate]}
  - {name: services, targets: ["*"]}
targets:
  - name: migrate
    cluster: prod
    task_definition: app-migrate
    image: example/migrate:2
    run_task: {wait_for_success: true}
  - {cluster: prod, service: api, image: "example/api:2", depends_on: [migrate]}
  - {cluster: prod, service: search, image: "example/search:broken", rollback: true}
  - {cluster: prod, service: billing, image: "example/billing:broken"}
  - {cluster: jobs, service: indexer, image: "example/indexer:2", depends_on: [prod/search]}
  - {name: seed, cluster: jobs, task_definition: app-seed, task_definition_file: seed.json,
     image: "example/seed:2", run_task: true}
"""
# awsvpc: ECS refuses to run the task without a network configuration, with an error code.
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
            "environment": [{"name": "BATCH_SIZE", "value": "500"}],
        }
    ],
}
PLAN_TARGETS = {
    "migrate": {"cluster": "prod", "task_definition": "app-migrate", "wave": "migrate"},
    "prod/api": {"cluster": "prod", "service": "api", "wave": "services"},
    "prod/search": {"cluster": "prod", "service": "search", "wave": "services"},
    "prod/billing": {"cluster": "prod", "service": "billing", "wave": "services"},
    "jobs/indexer": {"cluster": "jobs", "service": "indexer", "wave": "services"},
    "seed": {"cluster": "jobs", "task_definition": "app-seed", "wave": "services"},
}
IDENTITY = {"target", "cluster", "region", "wave", "step", "event", "level", "timestamp"}
ARN = "arn:aws:ecs:eu-west-1:123456789012:task-definition/"
# The facts each event carries (besides identity), as the README's table lists them.
FACTS = {
    "resolved": set(),  # old_task_definition, when there is one: not for a file's family
    "container_image": {"container", "old_image", "new_image"},
    "registered": {"new_task_definition"},
    "service_updated": {"deployment_id", "new_task_definition", "desired"},
    "progress": {
        "deployment_id", "running", "desired", "pending", "failed_tasks", "rollout_state", "state",
    },
    "ecs_event": {"message"},
    "rollback_started": {"reason", "to_task_definition"},
    "rolled_back": {"to_task_definition"},
    "task_status": {"task", "status"},
    "target_finished": {"status"},
}  # fmt: skip


@pytest.fixture
async def lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The JSON log lines of one rehearsal of PLAN."""
    (tmp_path / "plan.yaml").write_text(PLAN)
    (tmp_path / "fleet.yaml").write_text(FLEET)
    (tmp_path / "seed.json").write_text(json.dumps(SEED))
    code = await cli.main(
        [
            str(tmp_path / "plan.yaml"), "--simulate", "--speed", "100",
            "--fleet", str(tmp_path / "fleet.yaml"), "--log-format", "json",
            "--report", str(tmp_path / "report.json"),
        ],
        "ecs-deploy-many", standalone_mode=False,
    )  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("run ")  # its id and journal
    assert err[1].startswith("rehearsing against")
    assert err[2].startswith("verify: ")  # what a rehearsal cannot check
    return [json.loads(line) for line in err[3:]]


async def test_every_line_carries_the_identity_of_its_target(lines: list[dict[str, Any]]) -> None:
    assert {line["target"] for line in lines} == set(PLAN_TARGETS)
    for line in lines:
        assert line.keys() >= IDENTITY, line
        expected = PLAN_TARGETS[line["target"]]
        kind = "service" if "service" in expected else "task_definition"
        assert line[kind] == expected[kind], line
        # exactly one of the two names the thing deployed
        assert ("service" in line) != ("task_definition" in line), line
        assert (line["cluster"], line["wave"], line["region"]) == (
            expected["cluster"], expected["wave"], "eu-west-1",
        )  # fmt: skip
        assert line["step"] in get_args(Step)
        assert line["level"] in {"debug", "info", "warning", "error"}
        stamp = datetime.fromisoformat(line["timestamp"])
        assert line["timestamp"].endswith("Z")
        assert stamp.utcoffset() == UTC.utcoffset(None)
        assert None not in line.values(), line  # unknown facts are left out, not null


async def test_each_event_carries_its_facts(lines: list[dict[str, Any]]) -> None:
    seen = {line["event"] for line in lines}
    assert set(FACTS) <= seen
    for line in lines:
        missing = FACTS.get(line["event"], set()) - line.keys()
        assert not missing, (missing, line)
    resolved = [line for line in lines if line["event"] == "resolved" and "service" in line]
    assert all(line["old_task_definition"].startswith(ARN) for line in resolved)
    assert all(line["desired"] == 2 for line in resolved)
    progress = [line for line in lines if line["event"] == "progress"]
    assert all(isinstance(line[key], int) for line in progress for key in ("running", "desired"))
    assert {line["rollout_state"] for line in progress} >= {"IN_PROGRESS", "COMPLETED"}


async def test_every_target_ends_in_one_summary_line(lines: list[dict[str, Any]]) -> None:
    finished = {line["target"]: line for line in lines if line["event"] == "target_finished"}
    assert len(finished) == sum(line["event"] == "target_finished" for line in lines)
    assert {name: line["status"] for name, line in finished.items()} == {
        "migrate": "succeeded",
        "prod/api": "succeeded",
        "prod/search": "rolled_back",
        "prod/billing": "failed",
        "jobs/indexer": "skipped",
        "seed": "failed",
    }
    for name in ("prod/api", "prod/search", "prod/billing"):
        line = finished[name]
        assert line["old_task_definition"].startswith(ARN)
        assert line["new_task_definition"].startswith(ARN)
        assert line["deployment_id"].startswith("ecs-svc/")
        assert line["elapsed_s"] > 0
    assert finished["prod/api"]["level"] == "info"
    assert finished["prod/search"]["error"] == "no progress for 60 s (0/2 tasks running)"
    assert finished["prod/billing"]["level"] == "error"
    # settled by the engine, never started: still a whole line
    skipped = finished["jobs/indexer"]
    assert skipped["error"] == "dependency prod/search was rolled back"
    assert skipped["step"] == "done"
    assert finished["seed"]["error_code"] == "InvalidParameterException"


async def test_lines_are_stamped_on_the_run_clock(
    lines: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The rehearsal's clock runs 100x: the log says when the report says, not wall time.

    On the wall clock a line would be 99 % of the run's elapsed time early; a twentieth of
    the run allows for the moment between the record and its line.
    """
    report = json.loads((tmp_path / "report.json").read_text())
    run_took = datetime.fromisoformat(report["finished_at"]) - datetime.fromisoformat(
        report["started_at"]
    )
    finished = {t["name"]: t["finished_at"] for t in report["targets"] if t["finished_at"]}
    logged = {
        line["target"]: line["timestamp"] for line in lines if line["event"] == "target_finished"
    }
    assert len(finished) >= 4
    for name, at in finished.items():
        gap = datetime.fromisoformat(logged[name]) - datetime.fromisoformat(at)
        assert abs(gap) < run_took / 20, (name, logged[name], at)
