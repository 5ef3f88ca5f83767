"""Runs a composite action's steps the way a GitHub runner does, without GitHub.

What GitHub documents for composite actions and ``run`` steps, and no more:

- ``${{ expression }}`` in a step's ``env``, ``run`` and ``with``, and in the action's
  output values, is replaced before the step runs. Only the contexts an action can
  read are understood (``inputs``, ``github.action_path``, ``runner``, ``steps.<id>
  .outputs``); anything else is an error here, so the action cannot come to depend on
  one this runner does not emulate.
- Inputs not given take their ``default``; every input is a string.
- A ``run`` step with ``shell: bash`` runs as ``bash --noprofile --norc -eo pipefail
  FILE``, the script written to FILE, in the workspace, with ``GITHUB_ACTION_PATH``,
  ``GITHUB_WORKSPACE``, ``RUNNER_TEMP``, ``RUNNER_OS``, ``GITHUB_ACTIONS`` and a fresh
  ``GITHUB_OUTPUT`` and ``GITHUB_STEP_SUMMARY`` file per step; ``name=value`` and
  ``name<<DELIMITER`` lines of ``GITHUB_OUTPUT`` become the step's outputs.
- The first step that fails ends the action (no step here has an ``if:``).
- A ``uses`` step (another action) is not run: it is listed with the reason, and its
  outputs are empty, as a step that set none.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
SUPPORTED_SHELLS = {"bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail"]}


@dataclass
class StepRun:
    name: str
    exit_code: int
    outputs: dict[str, str]
    summary: str


@dataclass
class ActionRun:
    outputs: dict[str, str]
    steps: list[StepRun] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(name, reason) of each ``uses`` step."""

    @property
    def exit_code(self) -> int:
        return next((s.exit_code for s in self.steps if s.exit_code), 0)

    @property
    def summary(self) -> str:
        """The job summary: every step's summary, in order."""
        return "".join(step.summary for step in self.steps)


def run_action(
    action_dir: Path,
    inputs: Mapping[str, str],
    *,
    workspace: Path,
    runner_temp: Path,
    environ: Mapping[str, str],
) -> ActionRun:
    """Run ``action_dir/action.yml`` with ``inputs`` as a workflow's ``with:`` would."""
    action = yaml.safe_load((action_dir / "action.yml").read_text(encoding="utf-8"))
    declared: dict[str, Any] = action.get("inputs") or {}
    unknown = set(inputs) - set(declared)
    assert not unknown, f"inputs the action does not declare: {sorted(unknown)}"
    assert action["runs"]["using"] == "composite"
    context: dict[str, Any] = {
        "inputs": {
            name: str(inputs.get(name, spec.get("default", ""))) for name, spec in declared.items()
        },
        "github": {"action_path": str(action_dir)},
        "runner": {"temp": str(runner_temp), "os": "Linux", "arch": "X64"},
        "steps": {},
    }
    result = ActionRun(outputs={})
    for number, step in enumerate(action["runs"]["steps"]):
        name = step.get("name", f"step {number + 1}")
        if "uses" in step:
            result.skipped.append((name, f"uses {step['uses']}: another action, not run here"))
            continue
        ran = _run_step(step, name, context, action_dir, workspace, runner_temp, environ, number)
        result.steps.append(ran)
        if "id" in step:
            context["steps"][step["id"]] = {"outputs": ran.outputs}
        if ran.exit_code:
            break
    result.outputs = {
        name: substitute(str(spec["value"]), context)
        for name, spec in (action.get("outputs") or {}).items()
    }
    return result


def substitute(text: str, context: Mapping[str, Any]) -> str:
    """``text`` with each ``${{ a.b.c }}`` replaced by its value; a missing output is ''."""

    def value(match: re.Match[str]) -> str:
        expression = match.group(1)
        assert re.fullmatch(r"\w+(\.[\w-]+)+", expression), f"not emulated: {match.group(0)}"
        root, *path = expression.split(".")
        assert root in context, f"context not emulated: {match.group(0)}"
        node: Any = context[root]
        for part in path:
            if not (isinstance(node, Mapping) and part in node):
                assert root == "steps", f"unknown: {match.group(0)}"
                return ""  # a step that did not run or set no such output
            node = node[part]
        return str(node)

    return EXPRESSION.sub(value, text)


def _run_step(
    step: Mapping[str, Any],
    name: str,
    context: Mapping[str, Any],
    action_dir: Path,
    workspace: Path,
    runner_temp: Path,
    environ: Mapping[str, str],
    number: int,
) -> StepRun:
    shell = step.get("shell")
    assert shell in SUPPORTED_SHELLS, f"{name}: a composite run step needs shell: bash"
    files = runner_temp / "_runner_file_commands" / f"step{number}"
    files.mkdir(parents=True)
    script, output, summary = files / "script.sh", files / "output", files / "summary"
    script.write_text(substitute(step["run"], context), encoding="utf-8")
    output.touch()
    summary.touch()
    env = {
        **environ,
        "GITHUB_ACTIONS": "true",
        "GITHUB_ACTION_PATH": str(action_dir),
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "RUNNER_TEMP": str(runner_temp),
        "RUNNER_OS": context["runner"]["os"],
        "RUNNER_ARCH": context["runner"]["arch"],
        **{key: substitute(str(value), context) for key, value in (step.get("env") or {}).items()},
    }
    done = subprocess.run(
        [*SUPPORTED_SHELLS[shell], str(script)], cwd=workspace, env=env, timeout=600
    )
    return StepRun(name, done.returncode, _read_outputs(output), summary.read_text("utf-8"))


def _read_outputs(path: Path) -> dict[str, str]:
    """``name=value`` lines, and ``name<<DELIMITER`` ... ``DELIMITER`` blocks."""
    outputs: dict[str, str] = {}
    lines = iter(path.read_text(encoding="utf-8").splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            body: list[str] = []
            for inner in lines:
                if inner == delimiter:
                    break
                body.append(inner)
            outputs[key] = "\n".join(body)
        elif line:
            key, value = line.split("=", 1)
            outputs[key] = value
    return outputs


def runner_environ() -> dict[str, str]:
    """The process environment as a fresh runner has it: no test-run Python settings, no
    virtual environment of the tests on PATH (the action brings its own)."""
    own_bin = str(Path(sys.executable).parent)
    environ = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    environ["PATH"] = os.pathsep.join(
        part for part in environ["PATH"].split(os.pathsep) if part != own_bin
    )
    return environ
