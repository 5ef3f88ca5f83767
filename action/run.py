"""The action's run step: ecs-deploy-many with the action's inputs, then its outputs.

Runs in the action's virtual environment. Reads the inputs from the ``INPUT_*``
variables action.yml sets, runs ``ecs-deploy-many deploy PLAN`` (or ``ecs-deploy`` with
``ecs-deploy-args``), appends the outputs read from the JSON report to
``$GITHUB_OUTPUT``, and exits with the tool's exit code, so a failed rollout fails the
step. The tool writes the job summary itself; when it wrote no report (a dry run, a
plan error, single-service mode) this script appends a short one instead.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def main() -> int:
    single = os.environ.get("INPUT_ECS_DEPLOY_ARGS", "").strip()
    plan = os.environ.get("INPUT_PLAN", "").strip()
    if bool(single) == bool(plan):
        print("::error::give the action either `plan` or `ecs-deploy-args`", flush=True)
        return 3
    if single:
        code = subprocess.call([BIN / "ecs-deploy", *shlex.split(single)])
        verdict = "succeeded" if code == 0 else "failed"
        _outputs({"verdict": verdict, "exit-code": code, "report": "", "run-id": ""})
        _summary(f"### ecs-deploy: {verdict}\n\nexit code {code}; the step's log has the details\n")
        return code
    default_report = Path(os.environ["RUNNER_TEMP"], "ecs-deploy-many", "report.json")
    report = Path(_input("REPORT") or default_report)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.unlink(missing_ok=True)  # a report left from an earlier run is not this run's
    code = subprocess.call([BIN / "ecs-deploy-many", "deploy", plan, *_flags(report)])
    if report.is_file():
        _outputs(_from_report(json.loads(report.read_text(encoding="utf-8")), report))
    else:
        verdict = "dry-run" if _flag("DRY_RUN") and code == 0 else "error"
        _outputs({"verdict": verdict, "report": "", "run-id": "", "counts": "{}"})
        _summary(
            f"### ecs-deploy-many: {verdict}\n\n{plan}: exit code {code}; "
            "no report was written, the step's log has the details.\n"
        )
    _outputs({"exit-code": code})
    return code


def _flags(report: Path) -> list[str]:
    """The command line the inputs make, after ``deploy PLAN``."""
    flags = ["--report", str(report), "--log-format", _input("LOG_FORMAT") or "console"]
    for glob in _input("ONLY").split():
        flags += ["--only", glob]
    for glob in _input("EXCLUDE").split():
        flags += ["--exclude", glob]
    if _flag("DRY_RUN"):
        flags.append("--dry-run")
    if _flag("SIMULATE"):
        flags.append("--simulate")
    if fleet := _input("FLEET"):
        flags += ["--fleet", fleet]
    for name in ("JUNIT", "HTML"):
        if path := _input(name):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            flags += [f"--{name.lower()}", path]
    return flags + shlex.split(_input("ARGS"))


def _from_report(report: dict[str, Any], path: Path) -> dict[str, object]:
    counts: dict[str, int] = report.get("counts") or {}
    outputs: dict[str, object] = {
        "verdict": report.get("result") or "unknown",
        "report": str(path),
        "run-id": report.get("run_id") or "",
        "counts": json.dumps(counts, separators=(",", ":")),
    }
    outputs.update({status.replace("_", "-"): n for status, n in counts.items()})
    return outputs


def _input(name: str) -> str:
    return os.environ.get(f"INPUT_{name}", "").strip()


def _flag(name: str) -> bool:
    """A boolean input: true, True, yes or 1 (GitHub passes inputs as strings)."""
    return _input(name).lower() in {"true", "yes", "1"}


def _outputs(values: dict[str, object]) -> None:
    with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as out:
        out.writelines(f"{name}={value}\n" for name, value in values.items())


def _summary(markdown: str) -> None:
    if path := os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(path, "a", encoding="utf-8") as out:
            out.write(markdown)


if __name__ == "__main__":
    sys.exit(main())
