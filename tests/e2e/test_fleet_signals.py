"""Signals at the end of a run and during a dry run: every output is whole, no traceback.

The console script runs as a real process. Each signal is sent when the process has
shown it reached a given point (a log line, the summary), never after a fixed real time,
so the trials land at different moments of the end of the run: while the last target is
reported, as the engine concludes, as clients close, as reports are written, as the
summary prints.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.helpers import CREDENTIALS, serving

BIN = Path(sys.executable).parent
FLEET = """\
region: eu-west-1
timings: {provisioning: 2, pending: 3, activating: 1, health_grace: 10, deactivating: 1,
          stopping: 2, deprovisioning: 2}
"""
PLAN = """\
version: 1
defaults: {region: eu-west-1, timeout: 300}
targets:
  - {cluster: prod, service: api, image: "example/api:2"}
  - {cluster: prod, service: web, image: "example/web:2"}
"""


@dataclass
class Ended:
    code: int
    out: str
    err: str


def run_and_signal(
    args: list[str], cwd: Path, when: Callable[[str, str], bool], signum: signal.Signals
) -> Ended:
    """Run the console script; send ``signum`` once ``when(stdout, stderr)`` holds."""
    process = subprocess.Popen(
        [BIN / "ecs-deploy-many", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None
    assert process.stderr is not None
    texts = {process.stdout.fileno(): b"", process.stderr.fileno(): b""}
    out, err = process.stdout.fileno(), process.stderr.fileno()
    open_fds, sent = set(texts), False
    try:
        while open_fds:
            ready, _, _ = select.select(list(open_fds), [], [], 60)
            assert ready, "no output for 60 s"
            for fd in ready:
                data = os.read(fd, 65536)
                if not data:
                    open_fds.discard(fd)
                texts[fd] += data
            if not sent and when(texts[out].decode(), texts[err].decode()):
                process.send_signal(signum)
                sent = True
        code = process.wait(timeout=60)
    finally:
        process.kill()
        process.communicate()  # reaps the process and closes its pipes
    assert sent, "the signal was never sent: its moment never came"
    return Ended(code, texts[out].decode(), texts[err].decode())


def finished(count: int) -> Callable[[str, str], bool]:
    """The moment the log has shown ``count`` targets finish."""
    return lambda out, err: err.count('"event": "target_finished"') >= count


def summary_started(out: str, err: str) -> bool:
    return out.startswith("run ")


def summary_printed(out: str, err: str) -> bool:
    return "slowest" in out


MOMENTS = {
    "the last target finished": finished(2),
    "the summary began": summary_started,
    "the summary was printed": summary_printed,
}


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("moment", list(MOMENTS))
@pytest.mark.parametrize("trial", range(2))
def test_a_signal_as_a_run_ends_leaves_every_output_whole(
    tmp_path: Path, moment: str, signum: signal.Signals, trial: int
) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    (tmp_path / "fleet.yaml").write_text(FLEET)
    ended = run_and_signal(
        [
            "plan.yaml", "--simulate", "--speed", "100", "--fleet", "fleet.yaml",
            "--log-format", "json", "--report", "report.json", "--junit", "junit.xml",
            "--html", "report.html",
        ],
        tmp_path,
        MOMENTS[moment],
        signum,
    )  # fmt: skip
    assert "Traceback" not in ended.err, ended.err[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    # Every target finished before the signal: each is what it became. The run counts
    # as interrupted when the signal reached it before it concluded, and the exit code
    # says the same as the report.
    assert {t["name"]: t["status"] for t in report["targets"]} == {
        "prod/api": "succeeded",
        "prod/web": "succeeded",
    }
    expected = {"succeeded": 0, "interrupted": 130}
    assert report["result"] in expected
    assert ended.code == expected[report["result"]], ended.err[-3000:]
    assert ended.out.startswith(f"run {report['result']} in ")
    assert ended.out.rstrip().splitlines()[-1].startswith("prod/")  # the last slowest row
    ET.parse(tmp_path / "junit.xml")
    assert (tmp_path / "report.html").read_text().rstrip().endswith("</html>")


@pytest.mark.slow
def test_a_dry_run_interrupted_while_reading_says_so_and_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every call takes 2 s; the signal comes once the first call was answered."""
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        FLEET + "task_definitions:\n"
        "  api: {containerDefinitions: [{name: api, image: 'example/api:1', memory: 128}]}\n"
        "  web: {containerDefinitions: [{name: web, image: 'example/web:1', memory: 128}]}\n"
        "clusters:\n"
        "  - name: prod\n"
        "    services: [{name: api, task_definition: api}, {name: web, task_definition: web}]\n"
    )
    (tmp_path / "plan.yaml").write_text(PLAN)
    with serving("--fleet", str(fleet), "--latency-ms", "2000") as (_, first_line):
        url = first_line.rsplit(" ", 1)[-1]
        for name, value in CREDENTIALS.items():
            monkeypatch.setenv(name, value)
        ended = run_and_signal(
            ["plan.yaml", "--endpoint-url", url, "--dry-run", "-v", "--log-format", "json"],
            tmp_path,
            lambda out, err: '"event": "aws_call"' in err,
            signal.SIGINT,
        )
    assert ended.code == 130, ended.err[-3000:]
    assert "Traceback" not in ended.err
    assert ended.out == ""
    assert ended.err.rstrip().splitlines()[-1] == (
        "interrupted: the dry run stopped before reading every target; nothing was changed"
    )
