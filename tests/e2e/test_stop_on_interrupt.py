"""`ecs-deploy-many --stop-deployments-on-interrupt`: a real process and a real signal; the
deployment still under way is stopped (ECS rolls it back), and the report and the
journal say so."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent

FLEET = """\
region: eu-west-1
timings: {provisioning: 2, pending: 3, activating: 1, health_grace: 3000, deactivating: 1,
          stopping: 2, deprovisioning: 2}
"""

PLAN = """\
version: 1
defaults: {region: eu-west-1, timeout: 6000}
targets:
  - {cluster: prod, service: api, image: "example/api:2"}
"""


def test_sigterm_stops_the_deployment_under_way_when_asked(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    (tmp_path / "fleet.yaml").write_text(FLEET)
    report = tmp_path / "report.json"
    process = subprocess.Popen(
        [
            BIN / "ecs-deploy-many", tmp_path / "plan.yaml", "--simulate", "--speed", "50",
            "--fleet", tmp_path / "fleet.yaml", "--report", report, "--log-format", "json",
            "--interrupt-grace", "0", "--stop-deployments-on-interrupt",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"},
    )  # fmt: skip
    try:
        assert process.stderr is not None
        for line in process.stderr:  # wait until the service is deploying
            if '"event": "progress"' in line:
                break
        time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()

    assert process.returncode == 130, err[-2000:]
    [api] = json.loads(report.read_text())["targets"]
    assert api["status"] == "interrupted"
    assert api["error"].startswith("interrupted during wait; stopped service deployment arn:")
    assert api["error"].endswith(": ECS rolls it back")
    (journal,) = (tmp_path / "runs").glob("*/*.jsonl")
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    [stopped] = [e for e in events if e.get("event") == "deployment_stopped"]
    assert stopped["facts"]["service_deployment_arn"] in api["error"]
