"""The run's summary as Markdown for a GitHub Actions job page (``GITHUB_STEP_SUMMARY``).

The same selections as the terminal summary: counts by status, failed and rolled-back
targets with their reason, the slowest targets. GitHub renders HTML inside Markdown,
so every cell is escaped, and masked by the run's ``Redactor``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

from ecs_deploy_many.core.redact import Redactor
from ecs_deploy_many.deploy.engine import RunResult
from ecs_deploy_many.observe.summary import (
    format_duration,
    problems,
    reason,
    run_duration,
    slowest,
    status_label,
)

__all__ = ["append_github_summary", "markdown_summary"]

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "\\|", "\n": " "})


def markdown_summary(run: RunResult, *, plan_path: str, redactor: Redactor | None = None) -> str:
    """The summary of ``run`` as GitHub-flavoured Markdown."""
    mask = redactor or Redactor()
    mask.keep(run.plan.targets)  # names are shown whole, whatever secret they contain
    total = len(run.results)
    took = format_duration(run_duration(run))
    parts = [
        f"### ecs-deploy-many: {run.verdict}",
        f"{_cell(plan_path)}: {total} target{'s' * (total != 1)} in {took}",
    ]
    if run.halted:
        parts.append(f"> {_cell(str(mask.scrub(run.halted)))}")
    counts = [(status, str(n)) for status, n in run.statistics().items() if n]
    parts.append(_table(("status", "targets"), counts))
    failed = [
        (r.target.name, r.target.wave or "", status_label(r), reason(r, mask))
        for r in problems(run)
    ]
    if failed:
        parts.append(_table(("failed or rolled back", "wave", "status", "reason"), failed))
    slow = [
        (r.target.name, r.target.wave or "", str(r.status), format_duration(r.duration_s))
        for r in slowest(run)
    ]
    if slow:
        parts.append(_table(("slowest", "wave", "status", "took"), slow))
    return "\n\n".join(parts) + "\n"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join(f"| {' | '.join(map(_cell, line))} |" for line in lines)


def _cell(text: str) -> str:
    return text.translate(_ESCAPES)


def append_github_summary(
    run: RunResult,
    *,
    plan_path: str,
    redactor: Redactor | None = None,
    environ: Mapping[str, str] = os.environ,
) -> None:
    """Append the summary to the file ``GITHUB_STEP_SUMMARY`` names, when it names one."""
    path = environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        out.write(markdown_summary(run, plan_path=plan_path, redactor=redactor))
