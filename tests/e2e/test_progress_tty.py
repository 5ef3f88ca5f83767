"""The live progress view in a real pseudo-terminal: drawn while the run goes on, never
torn by a log line, gone when the summary is printed.

The installed console script runs with stdin, stdout and stderr on a pty. What it
writes is replayed on a small terminal model (text, carriage return, line feed, cursor
up, erase line; colours ignored), which is all rich's live display uses, so the test
reads the screen a person would see.
"""

from __future__ import annotations

import codecs
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
ROWS, COLUMNS = 30, 160

PLAN = """\
version: 1
defaults: {region: eu-west-1, timeout: 300, rollback: true}
failure_budget: 1
waves:
  - {name: first, targets: [prod/api]}
  - {name: rest, targets: ["*"]}
targets:
  - {cluster: prod, service: api, image: example/api:2}
  - {cluster: prod, service: web, image: example/web:2}
  - {cluster: prod, service: search, image: example/search:broken, progress_deadline: 60}
  - {cluster: jobs, service: mailer, image: example/mailer:2}
  - {cluster: jobs, service: reports, image: example/reports:2}
"""
FLEET = """\
region: eu-west-1
behaviour:
  images:
    - {match: "*:broken*", outcome: fail_to_start}
"""

CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")
# A console line: the time on the run's clock, the target, what happened.
LOG_LINE = re.compile(r"\d\d:\d\d:\d\d (prod|jobs)/\w+  \S.*")
TABLE_HEADER = re.compile(r"^target +wave +step +tasks +elapsed$")
TASKS_ROW = re.compile(r"(prod|jobs)/\w+ +rest +wait +\d+/\d+ +[\dms. ]+")
FINISHED_ROW = re.compile(r"prod/api +first +succeeded +[\dms ]+")
PREAMBLE = re.compile(
    r"rehearsing against |run \d{8}T\d{6}Z-[0-9a-f]{6}: journal at |verify: .* not checked"
)
"""The lines before the logs: where a rehearsal runs, the run's id and journal, and what
a rehearsal cannot verify."""


class Screen:
    """A terminal without a width limit (a long line stays one line) or a height limit."""

    def __init__(self) -> None:
        self.lines: list[list[str]] = [[]]
        self.row = self.column = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._pending = ""

    def feed(self, data: bytes) -> None:
        text = self._pending + self._decoder.decode(data)
        self._pending = ""
        position = 0
        while position < len(text):
            char = text[position]
            if char == "\x1b":
                match = CSI.match(text, position)
                if match is None:  # a sequence cut by the read; finish it with the next one
                    self._pending = text[position:]
                    return
                self._control(match.group(1), match.group(2))
                position = match.end()
                continue
            if char == "\r":
                self.column = 0
            elif char == "\n":
                self.row += 1
                if self.row == len(self.lines):
                    self.lines.append([])
            elif char >= " ":
                line = self.lines[self.row]
                line.extend(" " * (self.column - len(line) + 1))
                line[self.column] = char
                self.column += 1
            position += 1

    def _control(self, parameters: str, command: str) -> None:
        if command == "A":
            self.row = max(0, self.row - int(parameters or 1))
        elif command == "K":
            line = self.lines[self.row]
            if parameters == "2":
                line.clear()
            else:
                del line[self.column :]
        # colours (m) and showing or hiding the cursor (h, l) do not move text

    def text(self) -> list[str]:
        return ["".join(line).rstrip() for line in self.lines]


def live_view(lines: list[str]) -> list[str]:
    """The view at the bottom of a screen: its header, rule, rows and totals; or none."""
    headers = [i for i, line in enumerate(lines) if TABLE_HEADER.match(line)]
    return [line for line in lines[headers[-1] :] if line] if headers else []


def run_on_a_terminal(
    args: list[str],
    cwd: Path,
    interrupt_when: Callable[[list[str]], bool] | None = None,
    *,
    size: tuple[int, int] = (ROWS, COLUMNS),
) -> tuple[int, list[list[str]], list[str]]:
    """Run the console script on a pty; the screens seen while it ran, and the last one.

    ``interrupt_when``: send SIGINT the first time the screen satisfies it. ``size``: the
    terminal's rows and columns.
    """
    rows, columns = size
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(rows)}
    process = subprocess.Popen(
        [BIN / "ecs-deploy-many", *args],
        stdin=terminal, stdout=terminal, stderr=terminal, env=env, cwd=cwd,
    )  # fmt: skip
    os.close(terminal)
    screen, seen = Screen(), []
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.2)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                data = os.read(controller, 65536)
            except OSError:  # the terminal closed: every writer has exited
                break
            if not data:
                break
            screen.feed(data)
            seen.append(screen.text())
            if interrupt_when is not None and interrupt_when(seen[-1]):
                process.send_signal(signal.SIGINT)
                interrupt_when = None
        code = process.wait(timeout=10)
    finally:
        process.kill()
        os.close(controller)
    return code, seen, screen.text()


@pytest.mark.slow
def test_live_view_on_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    (tmp_path / "fleet.yaml").write_text(FLEET)
    code, seen, final = run_on_a_terminal(
        ["plan.yaml", "--simulate", "--speed", "100", "--fleet", "fleet.yaml"], tmp_path
    )
    assert code == 1, "\n".join(final)  # search fails and is rolled back

    # While the run went on, the bottom of the screen was the view: a row per in-flight
    # target with the new deployment's running/desired tasks, finished targets, totals.
    views = [view for lines in seen if (view := live_view(lines))]
    assert views, "the live view never appeared"
    assert any(TASKS_ROW.fullmatch(row) for view in views for row in view[2:-1])
    assert any(FINISHED_ROW.fullmatch(row) for view in views for row in view[2:-1])
    assert any(re.fullmatch(r"\d+ in flight · .*", view[-1]) for view in views)

    # Afterwards: every log line whole, nothing of the view left, then the summary.
    summary_at = next(i for i, line in enumerate(final) if line.startswith("run failed in"))
    logs = [line for line in final[:summary_at] if line and not PREAMBLE.match(line)]
    torn = [line for line in logs if not LOG_LINE.fullmatch(line)]
    assert not torn, "\n".join(torn)
    said = [line.split(" ", 1)[1] for line in logs]
    assert "prod/api  started" in said
    rollback = "prod/search  rolling back to search:1: no progress for 60 s"
    assert any(line.startswith(rollback) for line in said)
    assert not any(TABLE_HEADER.match(line) for line in final[:summary_at])
    summary = "\n".join(final[summary_at:])
    assert "prod/search" in summary
    assert "no progress for 60 s" in summary


@pytest.mark.slow
def test_an_interruption_is_said_above_the_view(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    (tmp_path / "fleet.yaml").write_text(FLEET)
    code, _, final = run_on_a_terminal(
        ["plan.yaml", "--simulate", "--speed", "100", "--fleet", "fleet.yaml"],
        tmp_path,
        interrupt_when=lambda lines: any(TASKS_ROW.fullmatch(row) for row in live_view(lines)),
    )
    assert code == 130
    said = [line for line in final if line.startswith("SIGINT")]
    assert said == [
        "SIGINT: starting nothing new; in-flight targets have 30 s to finish "
        "(send it again to stop them now)"
    ]
    summary_at = next(i for i, line in enumerate(final) if line.startswith("run interrupted"))
    assert not any(TABLE_HEADER.match(line) for line in final[:summary_at])


def test_no_live_view_without_a_terminal(tmp_path: Path) -> None:
    """Piped output gets log lines and the summary, never cursor movement."""
    (tmp_path / "plan.yaml").write_text(PLAN)
    (tmp_path / "fleet.yaml").write_text(FLEET)
    result = subprocess.run(
        [
            BIN / "ecs-deploy-many", "plan.yaml", "--simulate", "--speed", "100",
            "--fleet", "fleet.yaml", "--log-format", "console",
        ],
        capture_output=True, text=True, cwd=tmp_path, timeout=90,
    )  # fmt: skip
    assert result.returncode == 1
    assert "\x1b[" not in result.stdout + result.stderr
    assert re.search(r"^\d\d:\d\d:\d\d prod/api  succeeded in ", result.stderr, re.MULTILINE)
    assert not any(TABLE_HEADER.match(line) for line in result.stderr.splitlines())


@pytest.mark.slow
def test_no_live_view_with_json_logs_on_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    (tmp_path / "fleet.yaml").write_text(FLEET)
    code, seen, final = run_on_a_terminal(
        [
            "plan.yaml",
            "--simulate",
            "--speed",
            "100",
            "--fleet",
            "fleet.yaml",
            "--log-format",
            "json",
        ],
        tmp_path,
    )
    assert code == 1
    assert not any(live_view(lines) for lines in seen)
    summary_at = next(i for i, line in enumerate(final) if line.startswith("run failed in"))
    logs = [line for line in final[:summary_at] if line and not PREAMBLE.match(line)]
    assert all(line.startswith("{") and line.endswith("}") for line in logs)


@pytest.mark.slow
def test_log_lines_fit_an_80_column_terminal(tmp_path: Path) -> None:
    """Short lines of what a person acts on, so more than a few fit above the view."""
    (tmp_path / "plan.yaml").write_text(PLAN)
    (tmp_path / "fleet.yaml").write_text(FLEET)
    code, _, final = run_on_a_terminal(
        ["plan.yaml", "--simulate", "--speed", "100", "--fleet", "fleet.yaml"],
        tmp_path,
        size=(24, 80),
    )
    assert code == 1
    summary_at = next(i for i, line in enumerate(final) if line.startswith("run failed in"))
    logs = [line for line in final[:summary_at] if line and not PREAMBLE.match(line)]
    assert all(LOG_LINE.fullmatch(line) and len(line) <= 80 for line in logs), "\n".join(logs)
    # each target starts and finishes; the failing one adds its trouble and rollback
    assert len(logs) <= 2 * 5 + 6, "\n".join(logs)
    assert any("ECS: was unable to place a task" in line for line in logs)
    assert any(line.endswith("…") for line in logs)  # cut at the terminal's width


@pytest.mark.slow
def test_a_signal_as_the_run_ends_leaves_the_summary_whole(tmp_path: Path) -> None:
    """SIGINT once the last target is shown finished: the view's teardown, the clients'
    close and the summary all go on; no traceback."""
    (tmp_path / "plan.yaml").write_text(PLAN)
    (tmp_path / "fleet.yaml").write_text(FLEET)

    def every_target_finished(lines: list[str]) -> bool:
        return sum(" in " in line and LOG_LINE.fullmatch(line) is not None for line in lines) >= 5

    code, _, final = run_on_a_terminal(
        ["plan.yaml", "--simulate", "--speed", "100", "--fleet", "fleet.yaml",
         "--report", "report.json"],
        tmp_path,
        interrupt_when=every_target_finished,
    )  # fmt: skip
    screen = "\n".join(final)
    assert "Traceback" not in screen, screen
    result = json.loads((tmp_path / "report.json").read_text())["result"]
    assert (code, result) in {(1, "failed"), (130, "interrupted")}, screen
    assert any(line.startswith(f"run {result} in ") for line in final), screen
    slowest = next(i for i, line in enumerate(final) if line.startswith("slowest"))
    rows = final[slowest + 2 : slowest + 7]
    assert all(re.match(r"(prod|jobs)/\w+ ", row) for row in rows), screen
