"""`ecs-deploy` stopped by SIGTERM mid-deploy: exit 130 and a line saying where it stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.e2e.helpers import CREDENTIALS, serving

BIN = Path(sys.executable).parent
# The new tasks take 3,000 simulated seconds to count as healthy: the deploy is still
# waiting when the signal comes.
FLEET = """\
region: eu-west-1
timings: {health_grace: 3000}
task_definitions:
  web:
    containerDefinitions: [{name: web, image: "example/web:1", memory: 128}]
clusters:
  - name: prod
    services: [{name: web, task_definition: web, desired_count: 1}]
"""


def test_sigterm_interrupts_and_says_so(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    with serving("--fleet", str(fleet), "--speed", "20") as (_, first_line):
        url = first_line.rsplit(" ", 1)[-1]
        deploy = subprocess.Popen(
            [
                BIN / "ecs-deploy", "--endpoint-url", url, "--log-format", "json",
                "-c", "prod", "-n", "web", "-i", "example/web:2", "-t", "900",
            ],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **CREDENTIALS, "AWS_DEFAULT_REGION": "eu-west-1"},
        )  # fmt: skip
        try:
            assert deploy.stderr is not None
            for line in deploy.stderr:
                if '"event": "service_updated"' in line:
                    break
            deploy.send_signal(signal.SIGTERM)
            _, err = deploy.communicate(timeout=60)
        finally:
            deploy.kill()
    assert deploy.returncode == 130, err[-2000:]
    assert "web: interrupted" in err
