"""The run report: one JSON document saying what became of every target.

Scripts, CI jobs and scheduled releases read it instead of parsing logs, so its keys
are stable and its statuses are ``Status`` and ``RunVerdict`` names. Times are ISO-8601
UTC, taken from the run's clock (simulated in a rehearsal, so a rehearsal's report reads
like the real run's). Error messages and ECS events can echo anything a call was given,
so every value goes through the run's ``Redactor``; names (targets, clusters, services,
regions, waves, task-definition ARNs) are never rewritten.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ecs_deploy_many.core.clock import utc_iso
from ecs_deploy_many.core.redact import Redactor
from ecs_deploy_many.core.result import TargetResult
from ecs_deploy_many.deploy.engine import RunResult

__all__ = ["run_report", "write_report"]


def run_report(
    run: RunResult,
    *,
    plan_path: str,
    redactor: Redactor | None = None,
    run_id: str | None = None,
    journal_error: str | None = None,
    images: Mapping[str, str] | None = None,
    windows_ignored: str | None = None,
) -> dict[str, Any]:
    """The report of ``run``: the verdict, counts by status, and every target in plan order.

    ``run_id`` names the run's journal; ``journal_error`` says why the journal stopped
    before the run ended, when it did; ``windows_ignored`` is the reason given for
    deploying regardless of the plan's release windows and freezes, when one was;
    ``shared_budget_error`` why a shard stopped sharing the run's failure budget
    (``--run-table``), when it did; ``images`` maps each image deployed by tag to the
    digest it was pinned to.
    """
    started, finished = run.started_at, run.finished_at
    results = [run.results[t.name] for t in run.plan.targets if t.name in run.results]
    report = {
        "run_id": run_id,
        "plan": plan_path,
        "started_at": _iso(started),
        "finished_at": _iso(finished),
        "duration_s": None if started is None or finished is None else round(finished - started, 3),
        "result": str(run.verdict),
        "halted": run.halted,
        "failures": run.failures,
        "failure_budget": str(run.plan.failure_budget),
        "counts": run.statistics(),
        "journal_error": journal_error,
        "windows_ignored": windows_ignored,
        "shared_budget_error": run.shared_budget_error,
        "images": dict(images or {}),
        "targets": [_target(result) for result in results],
    }
    if redactor is None:
        return report
    redactor.keep(run.plan.targets)  # names are shown whole, whatever secret they contain
    scrubbed: dict[str, Any] = redactor.scrub(report)
    return scrubbed


def _target(result: TargetResult) -> dict[str, Any]:
    target = result.target
    return {
        "name": target.name,
        "kind": target.kind,
        "cluster": target.cluster,
        "service": target.service,
        "task_definition": target.task_definition,
        "region": target.scope.region,
        "wave": target.wave,
        "depends_on": list(target.depends_on),
        "status": str(result.status),
        "old_task_definition": result.old_task_definition,
        "new_task_definition": result.new_task_definition,
        "deployment_id": result.deployment_id,
        "error": result.error,
        "error_code": result.error_code,
        "failed_step": result.failed_step,
        "allow_failure": target.allow_failure,
        "started_at": _iso(result.started_at),
        "finished_at": _iso(result.finished_at),
        "duration_s": result.duration_s,
        "service_events": [
            {"at": _iso(event.get("at")), "message": event.get("message", "")}
            for event in result.service_events
        ],
    }


def _iso(epoch: float | None) -> str | None:
    """An epoch time as ISO-8601 UTC with a ``Z``, like the log lines' timestamps."""
    if not epoch:  # None, or 0 for an ECS event without a time
        return None
    return utc_iso(epoch)


def write_report(path: str | os.PathLike[str], report: Mapping[str, Any]) -> None:
    """Write ``report`` as JSON; a reader sees the previous file or this one, never half.

    The temporary file sits beside ``path`` (a rename is atomic only within a file
    system) and is created like any other file, so the report gets the usual permissions.
    """
    final = Path(path)
    temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    try:
        with temporary.open("x", encoding="utf-8") as out:
            json.dump(report, out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
