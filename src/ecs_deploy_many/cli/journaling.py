"""A run's journal and run record at the command line: where, under which id, from when.

The journal (``journal``) gets ``run_started`` before any call to ECS; one that cannot be
written then ends the command (exit 2). Shards of one run share an id (``--run-id``)
and, with ``--run-table``, a DynamoDB record of their failure budget and halt.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

import asyncclick as click

from ecs_deploy_many.cli.exits import EXIT_PLAN
from ecs_deploy_many.cli.options import say
from ecs_deploy_many.cli.where import Where
from ecs_deploy_many.core.errors import JournalError, RunTableError
from ecs_deploy_many.core.redact import Redactor
from ecs_deploy_many.journal import (
    JournalLocation,
    JournalWriter,
    RunStart,
    file_digest,
    locate,
    new_run_id,
    open_journal,
)
from ecs_deploy_many.journal.records import is_run_id
from ecs_deploy_many.journal.run_table import RunTable, open_run_table
from ecs_deploy_many.plan import Plan, Wave
from ecs_deploy_many.plan.shard import shard_numbers

__all__ = [
    "journal_location",
    "journal_start",
    "plan_digest",
    "run_id_of",
    "run_journal",
    "shared_budget",
]


def run_id_of(options: Mapping[str, Any], *, journaled: bool) -> str:
    """``--run-id``, checked, or a new id; the shards of a ``journaled`` run (not a dry
    run or a check) must be given theirs."""
    run_id: str | None = options["run_id"]
    example = "e.g. $(date -u +%Y%m%dT%H%M%SZ)-$(openssl rand -hex 3)"
    if run_id is not None and not is_run_id(run_id):
        raise click.UsageError(
            f"--run-id {run_id!r} is no run id: give the UTC start time and 6 hex digits "
            f"like 20261202T031500Z-1a2b3c ({example})"
        )
    part = options["shard"]
    if journaled and part is not None and shard_numbers(part)[1] > 1 and run_id is None:
        raise click.UsageError(
            f"--shard {part} needs --run-id ID, the same for every shard of the run, so "
            f"their journals and run record meet ({example}, made once for all shards)"
        )
    return run_id or new_run_id()


def journal_location(options: dict[str, Any]) -> JournalLocation:
    """Where ``--journal`` says journals are (the default location without it)."""
    try:
        return locate(options["journal"], os.environ)
    except JournalError as error:
        raise click.UsageError(str(error)) from None


async def run_journal(
    stack: AsyncExitStack,
    where: Where,
    plan_path: str,
    options: dict[str, Any],
    redactor: Redactor,
    run_id: str,
) -> JournalWriter | None:
    """The run's journal, ``run_started`` written, or None with ``--no-journal``.

    One that cannot be written ends the command (exit 2) before any call to ECS.
    """
    if options["no_journal"]:
        say(f"run {run_id} (not journaled)")
        return None
    location = journal_location(options)
    start = journal_start(where.plan, plan_path, options, where.simulated_at)

    def journal_failed(message: str) -> None:
        say(
            f"error: {message}; the deploys go on, but this run cannot be resumed or rolled "
            "back from its journal, and it will exit 1"
        )

    try:
        journal = await stack.enter_async_context(
            open_journal(
                location,
                start,
                run_id=run_id,
                clock=where.clock,
                redactor=redactor,
                on_failure=journal_failed,
            )
        )
    except JournalError as error:
        click.echo(f"error: {error}", err=True)
        click.echo(
            f"{plan_path}: nothing was changed (--journal names another place, "
            "--no-journal runs without one)",
            err=True,
        )
        raise click.exceptions.Exit(EXIT_PLAN) from None
    say(f"run {run_id}: journal at {journal.where}")
    return journal


async def shared_budget(
    stack: AsyncExitStack,
    where: Where,
    plan_path: str,
    options: Mapping[str, Any],
    run_id: str,
) -> RunTable | None:
    """The run record the shards share (``--run-table``), this shard's start recorded;
    None without one. One that cannot be used ends the command (exit 2) before any
    call to ECS."""
    table = options.get("run_table")
    if not table:
        return None

    def sharing_failed(message: str) -> None:
        say(
            f"error: {message}; this shard goes on with its own failure budget: a failure "
            "in another shard no longer halts it, nor does one here halt the others"
        )

    try:
        return await stack.enter_async_context(
            open_run_table(
                table,
                run_id,
                shard=options.get("shard") or "1/1",
                budget=where.plan.max_failures,
                on_failure=sharing_failed,
            )
        )
    except RunTableError as error:
        click.echo(f"error: {error}", err=True)
        click.echo(f"{plan_path}: nothing was changed", err=True)
        raise click.exceptions.Exit(EXIT_PLAN) from None


def journal_start(
    plan: Plan, plan_path: str, options: Mapping[str, Any], simulated_at: float | None
) -> RunStart:
    """What the journal records of a run of ``plan`` before its first target: ``options``
    are the command's (``only``, ``exclude``, ``dependencies``, ``max_parallel``,
    ``simulate``, ``endpoint_url``, ``shard``, ``run_table``; any may be left out)."""
    return RunStart(
        plan=plan_path,
        plan_digest=plan_digest(plan_path),
        targets=plan.targets,
        waves=[_wave_record(wave) for wave in plan.waves],
        policy={
            "max_parallel": plan.max_parallel,
            "per_cluster": plan.per_cluster,
            "failure_budget": {
                "amount": plan.failure_budget.amount,
                "percent": plan.failure_budget.percent,
            },
            "on_failure": plan.on_failure,
            "lock": asdict(plan.lock) if plan.lock else None,
        },
        options={
            "only": list(options.get("only", ())),
            "exclude": list(options.get("exclude", ())),
            "dependencies": options.get("dependencies"),
            "max_parallel": options.get("max_parallel"),
            "simulate": options.get("simulate", False),
            "endpoint_url": options.get("endpoint_url"),
            "simulated_at": simulated_at,
            "rollback_of": options.get("rollback_of"),
            "reason": options.get("reason"),
            "windows_ignored": options.get("windows_ignored"),
            "run_table": options.get("run_table"),
        },
        shard=options.get("shard") or "1/1",
    )


def _wave_record(wave: Wave) -> dict[str, Any]:
    """A wave as the journal keeps it: ``approve`` reads its approval gate from there."""
    alarms = wave.alarms
    return {
        "name": wave.name,
        "targets": list(wave.targets),
        "bake": wave.bake,
        "approval": {"timeout": wave.approval.timeout} if wave.approval else None,
        "alarms": {"names": list(alarms.names), "prefixes": list(alarms.prefixes)}
        if alarms
        else None,
    }


def plan_digest(plan_path: str) -> str | None:
    """The plan file's digest, for a resume to see whether it changed; None when it is
    gone (a run made from a journal's plan)."""
    try:
        return file_digest(Path(plan_path).read_bytes())
    except OSError:
        return None
