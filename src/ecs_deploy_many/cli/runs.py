"""`ecs-deploy-many runs`, `show RUN`, `resume RUN` and `rollback RUN`: journaled runs.

``runs`` and ``show`` tell what runs did from their journals alone. ``resume`` continues
a run under its id with the plan as it is now (refused when the plan changed, unless
forced); ``rollback`` puts back what a run changed, as a new journaled run.

``show`` rebuilds the run's ``RunResult`` from each target's last ``target_finished``
and replays the journaled events into the same observers the run had, so its summary
and reports are the ones the run wrote (the JSON report's ``journal_error`` aside: a
journal that failed mid-run cannot tell). The plan file is not read again: it may have
changed since; the journal holds every target's definition.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

import asyncclick as click

from ecs_deploy_many.cli.discovery import narrowed
from ecs_deploy_many.cli.exits import EXIT_PLAN
from ecs_deploy_many.cli.fleet import Job, plan_or_exit, run_job, write_outputs
from ecs_deploy_many.cli.journaling import plan_digest
from ecs_deploy_many.cli.schedule import check_window_flags
from ecs_deploy_many.core.errors import JournalError, PlanError
from ecs_deploy_many.core.events import EventName
from ecs_deploy_many.core.history import TargetHistory
from ecs_deploy_many.core.redact import Redactor
from ecs_deploy_many.core.result import Status, TargetResult
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.deploy.engine import RunResult, RunVerdict
from ecs_deploy_many.journal import JournalLocation, RunJournal, find_run, load_run, locate
from ecs_deploy_many.journal import list_runs as listed_runs
from ecs_deploy_many.journal.records import target_digest
from ecs_deploy_many.observe.summary import print_summary
from ecs_deploy_many.observe.timeline import Timeline
from ecs_deploy_many.plan.expand import expand_selectors, has_selectors
from ecs_deploy_many.plan.model import FailureBudget, LockSpec, Plan, Wave

__all__ = ["list_runs", "plan_of", "result_of", "resume_run", "roll_back_run", "show_run"]


async def list_runs(journal: str | None, limit: int) -> None:
    """One line per run, newest first; a run that cannot be read says why."""
    location = _location(journal)
    try:
        runs = await listed_runs(location, limit=limit)
    except JournalError as error:
        _fail(error)
    if not runs:
        click.echo(f"no runs in {location}", err=True)
    for listed in runs:
        run = listed.journal
        if run is None:
            click.echo(f"{listed.run_id}  unreadable: {listed.problem}")
            continue
        counts = ", ".join(
            f"{count} {status.replace('_', ' ')}" for status, count in run.counts().items() if count
        )
        started = run.started
        click.echo(
            f"{run.run_id}  {started.plan}  {started.started}  {_verdict(run)}  "
            f"{len(run.targets)} targets: {counts or 'none finished'}"
        )


def _verdict(run: RunJournal) -> str:
    """The run's verdict, with how many of its shards finished when it has several."""
    if run.shard_count == 1:
        return run.verdict
    return f"{run.verdict} ({len(run.shard_finishes)}/{run.shard_count} shards finished)"


async def show_run(wanted: str, journal: str | None, outputs: dict[str, Any]) -> None:
    """The summary the run printed, and the reports ``outputs`` asks for."""
    location = _location(journal)
    try:
        run = await load_run(location, await find_run(location, wanted))
    except JournalError as error:
        _fail(error)
    started = run.started
    click.echo(
        f"run {run.run_id} of {started.plan}, started {started.started} on {started.host}: "
        f"{_verdict(run)}",
        err=True,
    )
    result = result_of(run)
    timeline = Timeline()
    run.replay(timeline)
    redactor = Redactor()
    outputs = {**outputs, "windows_ignored": started.options.get("windows_ignored")}
    written = write_outputs(
        result, timeline, started.plan, redactor, outputs, run_id=run.run_id, github=False
    )
    print_summary(result, redactor=redactor, simulated_at=started.options.get("simulated_at"))
    if not written:
        raise click.exceptions.Exit(1)


# What a resume or a rollback runs with besides its own flags: never a rehearsal.
_RUN_DEFAULTS = {"simulate": False, "fleet_file": None, "no_journal": False, "speed": None}


async def resume_run(wanted: str, options: dict[str, Any]) -> None:
    """Continue RUN: the plan reloaded with the run's selection, under the run's id, each
    target from where its events left it (``deploy.resume``)."""
    check_window_flags(options)
    run = await _journaled_run(wanted, options)
    started = run.started
    chosen = started.options
    part = _shard_to_resume(run, options.get("shard"))
    if chosen.get("rollback_of"):
        _fail(
            JournalError(
                f"run {run.run_id} is a rollback of run {chosen['rollback_of']}: roll that "
                "run back again instead (services already back are left as they are)"
            )
        )
    plan = plan_or_exit(
        started.plan,
        chosen.get("only") or (),
        chosen.get("exclude") or (),
        chosen.get("dependencies") or "refuse",
        part,
    )
    if has_selectors(plan):
        plan = _as_journaled(plan, run)
    if chosen.get("max_parallel"):
        plan = replace(plan, max_parallel=chosen["max_parallel"])
    changes = run.changes(plan_digest(started.plan), plan.targets, shard=part)
    if changes and not options["force"]:
        for change in changes:
            click.echo(f"error: {change} since run {run.run_id}", err=True)
        click.echo(
            f"{started.plan}: changed since the run; nothing was changed (--force resumes "
            "with the plan as it is now: changed targets start afresh)",
            err=True,
        )
        raise click.exceptions.Exit(EXIT_PLAN)
    then = {record.target.name: record.digest for record in run.target_records}
    now = {target.name: target_digest(target) for target in plan.targets}
    prior = {
        name: history
        for name, history in run.histories.items()
        if name in now and then.get(name) == now[name]
    }
    which = f"shard {part} of run" if part else "run"
    click.echo(f"resuming {which} {run.run_id} of {started.plan}", err=True)
    job = Job(run_id=run.run_id, prior=prior)
    await run_job(plan, started.plan, {**_RUN_DEFAULTS, **chosen, **options, "shard": part}, job)


def _as_journaled(plan: Plan, run: RunJournal) -> Plan:
    """The plan's selector targets expanded into the services the run found, with the
    plan's settings as they are now: a resume follows those services and looks for no
    other (a service created since is for the next run). The run's selection applies."""
    found: dict[str, list[tuple[str, str]]] = {}
    for target in run.targets:
        if target.selector is not None and target.cluster and target.service:
            found.setdefault(target.selector.name, []).append((target.cluster, target.service))
    chosen = run.started.options
    try:
        return narrowed(
            expand_selectors(plan, found).plan,
            chosen.get("only") or (),
            chosen.get("exclude") or (),
            chosen.get("dependencies") or "refuse",
        )
    except PlanError as error:
        for issue in error.issues:
            click.echo(f"error: {issue}", err=True)
        raise click.exceptions.Exit(EXIT_PLAN) from None


def _shard_to_resume(run: RunJournal, part: str | None) -> str | None:
    """The shard ``--shard`` names, one the run journaled; None for an unsharded run."""
    count = run.shard_count
    if part is None and count == 1:
        return None
    if part is None or int(part.partition("/")[2]) != count:
        _fail(
            JournalError(
                f"run {run.run_id} ran in {count} shard(s): resume one with --shard K/{count}"
            )
        )
    if not any(runner.shard == part for runner in run.runners):
        _fail(
            JournalError(
                f"shard {part} of run {run.run_id} never started, so there is nothing to "
                f"resume: run it with `ecs-deploy-many {run.started.plan} --shard {part} "
                f"--run-id {run.run_id}` and the run's other options"
            )
        )
    return part


async def roll_back_run(wanted: str, options: dict[str, Any]) -> None:
    """Put back every service RUN changed, as a new journaled run (``deploy.rollback``)."""
    run = await _journaled_run(wanted, options)
    reason = f"rollback of run {run.run_id}: {options['reason']}"
    click.echo(
        f"rolling back run {run.run_id} of {run.started.plan} (a rollback is an emergency: "
        "release windows and freezes do not apply)",
        err=True,
    )
    job = Job(roll_back=run.histories, reason=reason, force=options["force"])
    run_options = {**_RUN_DEFAULTS, **options, "rollback_of": run.run_id}
    await run_job(plan_of(run), run.started.plan, run_options, job)


async def _journaled_run(wanted: str, options: dict[str, Any]) -> RunJournal:
    """The run ``wanted`` names; a rehearsal's cannot be continued (its ECS is gone)."""
    if options.get("speed") is not None and not options.get("endpoint_url"):
        raise click.UsageError("--speed only applies with --endpoint-url")
    location = _location(options["journal"])
    try:
        run = await load_run(location, await find_run(location, wanted))
    except JournalError as error:
        _fail(error)
    if run.started.options.get("simulate"):
        _fail(
            JournalError(
                f"run {run.run_id} was a rehearsal (--simulate): its simulator ended with it; "
                "rehearse the plan again instead"
            )
        )
    return run


def plan_of(run: RunJournal) -> Plan:
    """The run's plan as journaled: its targets (secrets masked), waves and policies (its
    run lock too, so a rollback takes the lock the run took)."""
    started, policy = run.started, run.started.policy
    return Plan(
        source=Path(started.plan),
        targets=run.targets,
        waves=tuple(Wave(w["name"], tuple(w["targets"]), w["bake"]) for w in run.waves),
        max_parallel=policy["max_parallel"],
        per_cluster=policy["per_cluster"],
        failure_budget=FailureBudget(**policy["failure_budget"]),
        on_failure=policy["on_failure"],
        lock=LockSpec(**policy["lock"]) if policy.get("lock") else None,
    )


def result_of(run: RunJournal) -> RunResult:
    """The run's result: each target as its last ``target_finished`` left it; when no
    runner finished the run, the others ``interrupted`` (the default status) as far as
    their events tell."""
    plan = plan_of(run)
    result = RunResult(plan)
    finished: dict[str, TargetResult] = {}
    service_events: dict[str, list[dict[str, Any]]] = {}
    for event in run.events:
        if event.event is EventName.ECS_EVENT:
            seen = {"at": event.facts.get("created_at"), "message": event.facts.get("message")}
            service_events.setdefault(event.target, []).append(seen)
        elif event.event is EventName.TARGET_FINISHED:
            facts = event.facts
            finished[event.target] = TargetResult(
                run.target(event.target),
                Status(facts["status"]),
                old_task_definition=facts.get("old_task_definition"),
                old_desired_count=run.histories[event.target].old_desired_count,
                new_task_definition=facts.get("new_task_definition"),
                deployment_id=facts.get("deployment_id"),
                error=facts.get("error"),
                error_code=facts.get("error_code"),
                failed_step=facts.get("failed_step"),
                started_at=facts.get("started_at"),
                finished_at=facts.get("finished_at"),
                service_events=service_events.get(event.target, []),
            )
    if run.finished is None:  # the runner died: what it had not finished is interrupted
        for target in plan.targets:
            if target.name not in finished:
                finished[target.name] = _cut_short(target, run.histories.get(target.name))
    result.results = {t.name: finished[t.name] for t in plan.targets if t.name in finished}
    if run.finished is not None:
        result.verdict = RunVerdict(run.finished.verdict)
        result.halted = run.finished.halted
        result.started_at, result.finished_at = run.finished.started_at, run.finished.finished_at
        result.rolled_back_by_policy = set(run.finished.rolled_back_by_policy)
    else:  # it lasted at least until its last record
        result.started_at = run.started.at
        result.finished_at = run.events[-1].at if run.events else run.started.at
    return result


def _cut_short(target: Target, history: TargetHistory | None) -> TargetResult:
    """A target whose outcome the journal never got: as far as its history tells."""
    if history is None:
        return TargetResult(target, error="not started when the journal ends")
    return TargetResult(
        target,
        old_task_definition=history.old_task_definition,
        old_desired_count=history.old_desired_count,
        new_task_definition=history.new_task_definition,
        deployment_id=history.deployment_id,
        error="the journal ends before this target finished: its runner stopped",
    )


def _location(journal: str | None) -> JournalLocation:
    try:
        return locate(journal, os.environ)
    except JournalError as error:
        raise click.UsageError(str(error)) from None


def _fail(error: JournalError) -> NoReturn:
    click.echo(f"error: {error}", err=True)
    raise click.exceptions.Exit(EXIT_PLAN)
