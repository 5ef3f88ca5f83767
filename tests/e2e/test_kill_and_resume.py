"""SIGKILL a fleet run at a step boundary, then `ecs-deploy-many resume RUN` it.

The simulator runs as its own process (it outlives the killed deployer, as ECS does);
the deployer journals to a directory and is killed with SIGKILL the moment its journal
shows the chosen boundary. The resume must end every target as the plan says, exit 0,
and never make a second UpdateService for the same change (the simulator counts the
updates each service accepted).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import CREDENTIALS, SCRIPT, serving

pytestmark = pytest.mark.real_time

SERVICES = [f"svc{i:02d}" for i in range(20)]
BROKEN = "svc00"
SPEED = "20"
FLEET = "\n".join(
    [
        "region: eu-west-1",
        "timings: {provisioning: 2, pending: 3, activating: 1, health_grace: 10,",
        "          deactivating: 1, stopping: 2, deprovisioning: 2}",
        "task_definitions:",
        *(f"  {name}: {{containerDefinitions: [{{name: app, image: 'app:1', memory: 64}}]}}"
          for name in SERVICES),
        "clusters:",
        "  - name: prod",
        "    services:",
        *(f"      - {{name: {name}, task_definition: {name}, desired_count: 2}}"
          for name in SERVICES),
        "behaviour:",
        "  images: [{match: '*:broken', outcome: fail_to_start}]",
        "",
    ]
)  # fmt: skip
PLAN = "\n".join(
    [
        "version: 1",
        "defaults: {region: eu-west-1, cluster: prod, image: 'app:2', timeout: 600}",
        "concurrency: {max_parallel: 20}",
        "targets:",
        f"  - {{service: {BROKEN}, image: 'app:broken', progress_deadline: 30, rollback: true,"
        " allow_failure: true}",
        *(f"  - {{service: {name}}}" for name in SERVICES if name != BROKEN),
        "",
    ]
)

Record = dict[str, Any]


def events_named(name: str, count: int = 1) -> Callable[[list[Record]], bool]:
    """A boundary: the journal holds ``count`` events called ``name``."""
    return lambda records: sum(1 for r in records if r.get("event") == name) >= count


BOUNDARIES = {
    "after register": events_named("registered", 3),
    "after UpdateService": events_named("service_updated", 10),
    "during the wait": events_named("progress", 20),
    "during a rollback": events_named("rollback_started"),
}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    (tmp_path / "fleet.yaml").write_text(FLEET)
    (tmp_path / "plan.yaml").write_text(PLAN)
    with serving(
        "--port", "0", "--fleet", str(tmp_path / "fleet.yaml"), "--speed", SPEED
    ) as (_, first):  # fmt: skip
        yield tmp_path, first.removeprefix("ECS simulator listening on ")


def journal_records(journal: Path) -> list[Record]:
    """Every complete record the runs under ``journal`` have written so far."""
    records = []
    for part in sorted(journal.glob("*/*.jsonl")):
        for line in part.read_bytes().splitlines(keepends=True):
            if line.endswith(b"\n"):
                records.append(json.loads(line))
    return records


def deployer(*args: str, url: str) -> list[str]:
    return [
        str(SCRIPT), *args, "--endpoint-url", url, "--speed", SPEED, "--log-format", "json",
    ]  # fmt: skip


@pytest.mark.parametrize("boundary", list(BOUNDARIES))
def test_a_run_killed_at_a_step_boundary_resumes_to_the_plans_end(
    world: tuple[Path, str], boundary: str
) -> None:
    files, url = world
    journal = files / "journal"
    env = {**os.environ, **CREDENTIALS, "AWS_DEFAULT_REGION": "eu-west-1"}
    run = subprocess.Popen(
        deployer(str(files / "plan.yaml"), "--journal", str(journal), url=url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        reached = BOUNDARIES[boundary]
        while run.poll() is None and not reached(journal_records(journal)):
            time.sleep(0.01)
        assert run.poll() is None, f"the run ended before {boundary}"
        run.send_signal(signal.SIGKILL)
    finally:
        run.kill()
        run.wait()
    [run_id] = [path.name for path in journal.iterdir()]

    report = files / "report.json"
    resumed = subprocess.run(
        deployer("resume", run_id, "--journal", str(journal), "--report", str(report), url=url),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    statuses = {t["name"]: t["status"] for t in json.loads(report.read_text())["targets"]}
    assert statuses.pop(f"prod/{BROKEN}") == "rolled_back"
    assert set(statuses.values()) == {"succeeded"}, statuses
    assert len(statuses) == len(SERVICES) - 1

    with urllib.request.urlopen(f"{url}/_sim/stats") as answer:
        updates = json.load(answer)["updates"]
    per_service = {arn.rsplit("/", 1)[1]: count for arn, count in updates.items()}
    # one UpdateService per change: the deploy, and for the broken one its rollback
    assert per_service == {name: 2 if name == BROKEN else 1 for name in SERVICES}
