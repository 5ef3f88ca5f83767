"""``--version`` and ``--help`` start at once: they import none of the heavy packages.

Each console script declared in pyproject.toml runs in a fresh interpreter, through the
same function its script calls, and reports what was imported when the process ended.
A command may import the AWS SDK, the HTTP stack, the plan loader or the simulator when
it runs, never to print its version or its flags.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
SCRIPTS: dict[str, str] = tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]

FORBIDDEN = (
    "aioboto3",
    "aiobotocore",
    "boto3",
    "botocore",
    "aiohttp",
    "pydantic",
    "yaml",
    "rich",
    "ecs_deploy_many.sim",
)
"""The AWS SDK, the HTTP library, validation, YAML, the terminal UI, the simulator."""

MARK = "imported-modules:"
WRAPPER = f"""
import atexit, importlib, json, sys

atexit.register(lambda: print({MARK!r} + json.dumps(sorted(sys.modules)), file=sys.stderr))
entry, *args = sys.argv[1:]
module, _, function = entry.partition(":")
sys.argv = [entry, *args]
getattr(importlib.import_module(module), function)()
"""


def imported_by(script: str, *args: str) -> set[str]:
    """The modules loaded by the time ``script args`` exits (it must exit 0)."""
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, SCRIPTS[script], *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout, "the command printed its answer"
    line = next(line for line in done.stderr.splitlines() if line.startswith(MARK))
    return set(json.loads(line.removeprefix(MARK)))


def forbidden(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == f or m.startswith(f"{f}.") for f in FORBIDDEN))


def test_both_console_scripts_are_checked() -> None:
    assert set(SCRIPTS) == {"ecs-deploy", "ecs-deploy-many"}


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("ecs-deploy", ["--version"]),
        ("ecs-deploy", ["--help"]),
        ("ecs-deploy-many", ["--version"]),
        ("ecs-deploy-many", ["--help"]),
        ("ecs-deploy-many", ["deploy", "--help"]),
        ("ecs-deploy-many", ["validate", "--help"]),
        ("ecs-deploy-many", ["sim", "serve", "--help"]),
    ],
)
def test_version_and_help_import_nothing_heavy(script: str, args: list[str]) -> None:
    assert forbidden(imported_by(script, *args)) == []


def test_the_check_sees_a_command_that_runs() -> None:
    """A real command does import what it needs: the check would notice."""
    plan = PYPROJECT.parent / "deploy-plans" / "demo.yaml"
    modules = imported_by("ecs-deploy-many", "validate", str(plan))
    assert "yaml" in forbidden(modules)
