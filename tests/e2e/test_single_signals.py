"""`ecs-deploy` stopped by SIGINT/SIGTERM mid-deploy: exit 130 and a line saying where it
stopped, however many signals arrive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


def _wait_for(path: Path, text: str, deploy: subprocess.Popen[str], within: float = 60) -> None:
    deadline = time.monotonic() + within
    while text not in path.read_text():
        assert deploy.poll() is None, path.read_text()[-2000:]
        assert time.monotonic() < deadline, f"{text!r} never came"
        time.sleep(0.05)


@pytest.mark.parametrize("first", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signals_while_stopping_are_absorbed(tmp_path: Path, first: signal.Signals) -> None:
    """After the first signal, more keep coming until the process ends: none kills it."""
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    err_path = tmp_path / "stderr"
    with (
        serving("--fleet", str(fleet), "--speed", "20") as (_, first_line),
        err_path.open("w") as err,
    ):
        url = first_line.rsplit(" ", 1)[-1]
        deploy = subprocess.Popen(
            [
                BIN / "ecs-deploy", "--endpoint-url", url, "--log-format", "json",
                "-c", "prod", "-n", "web", "-i", "example/web:2", "-t", "900",
            ],
            stdout=subprocess.DEVNULL, stderr=err, text=True,
            env={**os.environ, **CREDENTIALS, "AWS_DEFAULT_REGION": "eu-west-1"},
        )  # fmt: skip
        try:
            _wait_for(err_path, '"event": "service_updated"', deploy)
            deploy.send_signal(first)
            while deploy.poll() is None:
                deploy.send_signal(signal.SIGTERM)
                time.sleep(0.002)
        finally:
            deploy.kill()
            deploy.wait()
    out = err_path.read_text()
    assert deploy.returncode == 130, out[-2000:]
    # the signals race, so which one is handled first is not known
    assert out.count(": stopping the deploy") == 1
    last = out.splitlines()[-1]
    assert last.startswith("web: interrupted"), out[-2000:]
    assert last.endswith("interrupted during wait")
