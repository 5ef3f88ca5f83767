"""`ecs-deploy-many PLAN`: run, check, preview or rehearse a deploy plan.

``cli.many`` declares the flags and imports this module only when a command runs: it
brings the AWS SDK, the engine, the outputs and the simulator with it.

Exit codes: 0 every target succeeded or was unchanged; 1 at least one failed (after
whatever rollback), an output or the run journal could not be written, the run lost its
lock, or an unexpected error stopped the run; 2 plan, fleet or usage error, a journal,
lock table or run table (``--run-table``) that cannot be used at the start, an image
that cannot be pinned to its digest, or something a target references that does not
exist (``cli.verify``; ``--no-verify`` skips the check), nothing touched; 73 another
run holds the plan's lock (``cli.lock``), nothing touched; 75 (EX_TEMPFAIL) outside the
plan's release windows or inside a freeze, nothing touched; 130 interrupted. A webhook of the plan's
``notifications`` never changes the code.

The plan's ``schedule`` is checked once the plan is loaded, before any call to AWS
(``jobs.windows``); ``--wait-for-window`` waits on the run's clock instead of refusing.
A run the schedule allowed is watched: when its window closes or a freeze begins, it
starts nothing new, in-flight targets finish, the rest end ``skipped``, and it exits 1
like any halted run, not 75: a scheduler that retries on 75 must not start a release
again that is half done. A rehearsal (``--simulate``) reports what the schedule says
but is never refused nor made to wait; it is watched like a run when the schedule
allows it now. Rollbacks ignore the schedule: a rollback is an emergency.

The first SIGINT or SIGTERM starts nothing new and gives in-flight targets
``--interrupt-grace`` seconds to finish; a second one (or the grace running out)
cancels them (with ``--stop-deployments-on-interrupt``, a cancelled target's service
deployment is stopped and rolled back by ECS). Either way every target's state is
recorded and the report written: once the plan is loaded and until the process exits,
signals are held, never default-handled, so a late one cannot cut an output short. An
unexpected error is logged with its traceback once, and the outputs are written with
what is known of every target.

Every run but a check or a dry run is journaled (``journal``): ``run_started`` before
any call to ECS, each event as it happens, ``run_finished`` once the outcome is known,
however the run ended.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack, nullcontext
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import anyio
import anyio.abc
import asyncclick as click
import structlog
from rich.console import Console

from ecs_deploy_many.cli.discovery import expanded_or_exit, narrowed, refuse_shard
from ecs_deploy_many.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_PLAN
from ecs_deploy_many.cli.gates import check_gate_flags, wave_gates
from ecs_deploy_many.cli.journaling import run_id_of, run_journal, shared_budget
from ecs_deploy_many.cli.lock import held_lock
from ecs_deploy_many.cli.options import count, say, start_logging
from ecs_deploy_many.cli.pinning import pinned, pins_images, previews_and_pins, unpinned
from ecs_deploy_many.cli.schedule import check_window_flags, obey_schedule, say_schedule
from ecs_deploy_many.cli.signals import HeldSignals, ProcessEnd, cancel_on_signal
from ecs_deploy_many.cli.verify import REHEARSAL_NOTE, verify_before_run
from ecs_deploy_many.cli.where import Where, connected, where_of, where_or_exit
from ecs_deploy_many.core.clock import Clock, real_clock, utc_iso
from ecs_deploy_many.core.errors import PlanError
from ecs_deploy_many.core.events import Observer, fan_out, target_finished
from ecs_deploy_many.core.history import TargetHistory
from ecs_deploy_many.core.redact import Redactor, run_redactor
from ecs_deploy_many.core.result import Status, TargetResult
from ecs_deploy_many.deploy.dryrun import (
    TargetPreview,
    format_dry_run,
    format_status,
    preview_plan,
)
from ecs_deploy_many.deploy.engine import FleetRun, RunResult, RunVerdict
from ecs_deploy_many.deploy.pipeline import RunContext
from ecs_deploy_many.jobs.lock import RunLock
from ecs_deploy_many.jobs.notify import FailedTarget, Notifier
from ecs_deploy_many.jobs.pinning import Pinning
from ecs_deploy_many.jobs.windows import close_on_schedule
from ecs_deploy_many.journal import (
    new_run_id,
)
from ecs_deploy_many.observe.github import append_github_summary
from ecs_deploy_many.observe.html import write_html_report
from ecs_deploy_many.observe.junit import write_junit
from ecs_deploy_many.observe.log import log_observer
from ecs_deploy_many.observe.progress import ProgressView, show_progress
from ecs_deploy_many.observe.report import run_report, write_report
from ecs_deploy_many.observe.summary import print_summary
from ecs_deploy_many.observe.timeline import Timeline
from ecs_deploy_many.plan import DependencyChoice, Plan, load_plan
from ecs_deploy_many.plan.expand import has_selectors
from ecs_deploy_many.plan.schedule import Schedule

__all__ = ["Job", "deploy", "plan_or_exit", "run_job", "status", "validate", "write_outputs"]


def _load(
    path: str,
    only: Sequence[str],
    exclude: Sequence[str],
    dependencies: DependencyChoice,
    part: str | None,
) -> Plan:
    """The plan, selected, then sharded; a PlanError lists every problem with file and
    line. A plan with ``select:`` targets is selected once they are expanded
    (``cli.discovery``)."""
    plan = load_plan(path, environ=os.environ)
    refuse_shard(plan, part)
    if has_selectors(plan):
        return plan
    return narrowed(plan, only, exclude, dependencies, part)


def plan_or_exit(
    path: str,
    only: Sequence[str] = (),
    exclude: Sequence[str] = (),
    dependencies: DependencyChoice = "refuse",
    part: str | None = None,
) -> Plan:
    """The plan as ``_load`` reads it; exit 2 naming every problem when it cannot be."""
    try:
        return _load(path, only, exclude, dependencies, part)
    except PlanError as error:
        for issue in error.issues:
            click.echo(f"error: {issue}", err=True)
        count = len(error.issues)
        click.echo(f"{path}: {count} problem{'s' * (count != 1)}; nothing was changed", err=True)
        raise click.exceptions.Exit(EXIT_PLAN) from None


def validate(plan_path: str) -> None:
    """``ecs-deploy-many validate``: say whether the plan is valid; exit 2 when not."""
    _say_valid(plan_path, plan_or_exit(plan_path))


def _say_valid(plan_path: str, plan: Plan) -> None:
    selectors = [t for t in plan.targets if t.unexpanded]
    found = f" ({len(selectors)} finding services when it runs)" if selectors else ""
    click.echo(
        f"{plan_path}: valid: {count(plan.targets, 'target')}{found} in {count(plan.waves, 'wave')}"
    )
    say_schedule(plan, real_clock())


class _Interruptions:
    """First SIGINT/SIGTERM: halt the run, cancel it after the grace; second: cancel now."""

    def __init__(self, run: FleetRun, grace: float) -> None:
        self._run = run
        self._clock = run.context.clock
        self._grace = grace
        self.scope = anyio.CancelScope()
        self._handled = 0

    async def watch(self, signals: HeldSignals, group: anyio.abc.TaskGroup) -> None:
        async for received in signals:
            self._handled += 1
            if self._handled > 1:
                say(f"{received.name} again: stopping in-flight targets now")
                self.scope.cancel()
                continue
            self._run.interrupt(f"the run was interrupted by {received.name}")
            say(
                f"{received.name}: starting nothing new; in-flight targets have "
                f"{self._grace:g} s to finish (send it again to stop them now)"
            )
            group.start_soon(self._cancel_after_grace)

    async def _cancel_after_grace(self) -> None:
        await self._clock.sleep(self._grace)
        self.scope.cancel()


async def _run(
    run: FleetRun,
    job: Job,
    grace: float,
    signals: HeldSignals,
    lock: RunLock | None,
    watched: Schedule | None,
) -> None:
    """Run the job, signals interrupting it, and a lost lock or the ``watched`` schedule's
    closing window halting it; ``run.result`` is complete however it ends."""
    interruptions = _Interruptions(run, grace)

    def lost(reason: str) -> None:
        say(
            f"error: lost the run lock: {reason}; starting nothing new, in-flight targets "
            "finish or roll back, and the run will exit 1"
        )
        run.halt(f"lost the run lock: {reason}")

    def window_closed(reason: str) -> None:
        run.halt(reason)
        say(f"{reason}: starting nothing new; in-flight targets finish")

    async with anyio.create_task_group() as group:
        group.start_soon(interruptions.watch, signals, group)
        if lock is not None:
            group.start_soon(lock.keep, lost)
        if watched is not None:
            group.start_soon(close_on_schedule, watched, run.context.clock, window_closed)
        with interruptions.scope:
            await job.run(run)
        group.cancel_scope.cancel()


def _record_crash(result: RunResult, error: Exception, clock: Clock, observe: Observer) -> None:
    """Complete the record of a run an unexpected error stopped, and log it once.

    Nothing is hidden: the traceback is logged, the run fails, and every target keeps
    what is known of it. A target the error caught mid-way is ``interrupted`` (its
    deployment may still complete); a target never started says so.
    """
    leaves = _leaves(error)
    cause = f"{type(leaves[0]).__name__}: {leaves[0]}"
    cause += f" (and {len(leaves) - 1} more)" if len(leaves) > 1 else ""
    # One error's own traceback says where it struck; the task groups around it do not.
    traceback = leaves[0] if len(leaves) == 1 else error
    structlog.get_logger("ecs_deploy_many").error(
        "unexpected_error", error=cause, exc_info=traceback
    )
    now = clock.now()
    for target in result.plan.targets:
        record = result.results.get(target.name)
        if record is None:
            record = result.results[target.name] = TargetResult(target)
            record.error = "not started: the run stopped on an unexpected error"
        elif record.finished_at is None:  # deploying when the error struck
            record.status, record.finished_at = Status.INTERRUPTED, now
            record.error = f"stopped by an unexpected error: {cause}"
        else:
            continue
        observe(target_finished(record, now, "error"))
    result.results = {t.name: result.results[t.name] for t in result.plan.targets}
    result.verdict = RunVerdict.FAILED
    result.halted = f"the run stopped on an unexpected error: {cause}"
    result.started_at = now if result.started_at is None else result.started_at
    result.finished_at = now


def _leaves(error: BaseException) -> list[BaseException]:
    """The errors inside (nested) exception groups, or the error itself."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def _exit_code(result: RunResult) -> int:
    return {
        RunVerdict.SUCCEEDED: 0,
        RunVerdict.FAILED: EXIT_FAILED,
        RunVerdict.INTERRUPTED: EXIT_INTERRUPTED,
    }[result.verdict]


async def deploy(plan_path: str, options: dict[str, Any]) -> None:
    """``ecs-deploy-many deploy``: run, check, preview or rehearse the plan; exits with
    the outcome's code."""
    if options["journal"] and options["no_journal"]:
        raise click.UsageError("--journal and --no-journal contradict each other")
    check_window_flags(options)
    run_id = run_id_of(options, journaled=not (options["dry_run"] or options["check_only"]))
    plan = plan_or_exit(
        plan_path,
        options["only"],
        options["exclude"],
        options["dependencies"] or "refuse",
        options["shard"],
    )
    if options["max_parallel"]:
        plan = replace(plan, max_parallel=options["max_parallel"])
    check_gate_flags(plan, options)
    if options["check_only"]:
        _say_valid(plan_path, plan)
        return
    await run_job(plan, plan_path, options, None if options["dry_run"] else Job(run_id))


@dataclass(frozen=True)
class Job:
    """What a run of the plan does: deploy it (continuing an earlier run from ``prior``,
    under that run's id), or put back what an earlier run changed (``roll_back``)."""

    run_id: str = field(default_factory=new_run_id)
    prior: Mapping[str, TargetHistory] | None = None
    roll_back: Mapping[str, TargetHistory] | None = None
    reason: str = ""
    force: bool = False

    async def run(self, run: FleetRun) -> RunResult:
        if self.roll_back is not None:
            return await run.roll_back(self.roll_back, reason=self.reason, force=self.force)
        return await run.run()


async def run_job(plan: Plan, plan_path: str, options: dict[str, Any], job: Job | None) -> None:
    """Run ``job`` on ``plan`` where ``options`` say (a dry run without a job), write
    every output, and exit with the outcome's code."""
    where = await expanded_or_exit(where_or_exit(plan_path, plan, options), plan_path, options)
    redactor = _redactor(plan)
    console = start_logging(options, redactor, where.clock)
    edited = [target for target in plan.targets if target.edits]
    if where.simulator is not None and edited:
        say(
            f"edits of {count(edited, 'target')} are made to the rehearsal's own task "
            "definitions: secrets, roles and the real definitions are not checked"
        )
    # From here to the last output a signal never takes Python's default course.
    until_exit = isinstance(click.get_current_context().obj, ProcessEnd)
    with HeldSignals(until_exit=until_exit) as signals:
        if job is None:
            code = await _read_only(
                where,
                signals,
                redactor,
                format_dry_run,
                "the dry run",
                verbose=options["verbose"],
                pin=True,
            )
        else:
            notifier = _notifier(where, plan_path, job.run_id, redactor)
            async with notifier.delivering() if notifier else nullcontext():
                code = await _deploy(
                    where, plan_path, options, signals, redactor, console, job, notifier
                )
    raise click.exceptions.Exit(code)


def _redactor(plan: Plan) -> Redactor:
    """The run's redactor, which knows the plan's webhook URLs too (each is a secret)."""
    redactor = run_redactor(os.environ, targets=plan.targets)
    redactor.add(webhook.url for webhook in plan.notifications)
    return redactor


def _notifier(where: Where, plan_path: str, run_id: str, redactor: Redactor) -> Notifier | None:
    """What sends the plan's notifications; None without any, or in a rehearsal, whose
    messages would reach the real channels as if production were being deployed."""
    webhooks = where.plan.notifications
    if not webhooks:
        return None
    if where.simulator is not None:
        say(f"notifications are not sent in a rehearsal ({count(webhooks, 'webhook')})")
        return None
    clock = where.clock
    return Notifier(
        webhooks,
        run_id=run_id,
        plan=plan_path,
        targets=len(where.plan.targets),
        now=lambda: utc_iso(clock.now()),
        redactor=redactor,
    )


async def status(plan_path: str, options: dict[str, Any]) -> None:
    """``ecs-deploy-many status``: per target, what runs now and what the plan would do."""
    plan = plan_or_exit(plan_path, options["only"], options["exclude"], "skip")
    where = where_of(plan, {"simulate": False, "speed": None, **options})
    where = await expanded_or_exit(where, plan_path, {**options, "dependencies": "skip"})
    redactor = _redactor(plan)
    start_logging(options, redactor, where.clock)
    until_exit = isinstance(click.get_current_context().obj, ProcessEnd)
    with HeldSignals(until_exit=until_exit) as signals:
        code = await _read_only(
            where, signals, redactor, format_status, "status", verbose=options["verbose"]
        )
    raise click.exceptions.Exit(code)


async def _read_only(
    where: Where,
    signals: HeldSignals,
    redactor: Redactor,
    formatted: Callable[[list[TargetPreview]], str],
    what: str,
    *,
    verbose: bool,
    pin: bool = False,
) -> int:
    """Read every target and print ``formatted`` previews (a dry run, a status); a
    signal stops the reading, never the printing. With ``pin`` (a dry run) the images
    are shown by the digests a run would pin them to now."""
    previews, pinning = None, Pinning()
    plan = where.plan
    async with connected(where, verbose=verbose) as pool, anyio.create_task_group() as group:
        group.start_soon(cancel_on_signal, signals, group.cancel_scope, what)
        if pin and pins_images(where):
            previews, pinning = await previews_and_pins(plan, pool, redactor)
        if previews is None or pinning.pins:  # read again, rendered with the pins
            previews = await preview_plan(
                plan, pool, max_parallel=plan.max_parallel, redactor=redactor, pins=pinning.pins
            )
        group.cancel_scope.cancel()
    if previews is None:
        click.echo(
            f"interrupted: {what} stopped before reading every target; nothing was changed",
            err=True,
        )
        return EXIT_INTERRUPTED
    click.echo(formatted(previews))
    for problem in pinning.problems:
        click.echo(f"error: {problem}", err=True)
    if pinning.digests:
        click.echo(f"{count(pinning.digests, 'image')} pinned to the digest its tag names now")
    say_schedule(where.plan, where.clock)
    return EXIT_FAILED if pinning.problems or any(p.error for p in previews) else 0


async def _deploy(
    where: Where,
    plan_path: str,
    options: dict[str, Any],
    signals: HeldSignals,
    redactor: Redactor,
    console: Console | None,
    job: Job,
    notifier: Notifier | None,
) -> int:
    """Pin the images, run the job, then write every output and the summary, however the
    run ended. A run whose images cannot all be pinned starts no target and exits 2."""
    plan = where.plan
    run_id = job.run_id
    watched, ignored = await obey_schedule(
        where, plan_path, options, signals, rolling_back=job.roll_back is not None
    )
    options = {**options, "windows_ignored": ignored}
    progress, timeline = ProgressView(len(plan.targets)), Timeline()
    watchers: list[Observer] = [log_observer(), progress]
    if options["html_path"]:
        watchers.append(timeline)
    if notifier is not None:
        watchers.append(notifier)
    pinning, gate_problems = Pinning(), list[str]()
    unverified: str | None = None
    async with AsyncExitStack() as stack:
        lock = await stack.enter_async_context(
            held_lock(
                plan,
                plan_path,
                run_id,
                where.clock,
                wait=options.get("lock_wait") or 0.0,
                rehearsal=where.simulator is not None,
            )
        )
        shared = await shared_budget(stack, where, plan_path, options, run_id)
        journal = await run_journal(stack, where, plan_path, options, redactor, run_id)
        if notifier is not None:
            notifier.started()
        observe = fan_out(*([journal] if journal else []), *watchers)
        run, during_run = None, 0
        try:
            async with connected(where, verbose=options["verbose"]) as pool:
                previews = (
                    await preview_plan(
                        plan, pool, max_parallel=plan.max_parallel, redactor=redactor
                    )
                    if _verifies(where, options, job)
                    else None
                )
                pinning = await pinned(
                    where,
                    pool,
                    redactor,
                    rolling_back=job.roll_back is not None,
                    previews=previews,
                )
                if previews is not None:  # every problem at once, pinning's too
                    unverified = await verify_before_run(where, pool, redactor, previews)
                context = RunContext(
                    pool,
                    where.clock,
                    observe,
                    redactor=redactor,
                    pins=pinning.pins,
                    stop_deployments_on_interrupt=options.get(
                        "stop_deployments_on_interrupt", False
                    ),
                )
                gates, gate_problems = await wave_gates(where, pool, options, run_id)
                run = FleetRun(plan, context, job.prior, shared, gates)
                if pinning.problems:
                    run.halt(unpinned(plan_path, pinning))
                elif unverified:
                    run.halt(unverified)
                elif gate_problems:
                    run.halt(f"nothing was deployed: {gate_problems[0]}")
                async with show_progress(progress, where.clock, console):
                    try:
                        await _run(run, job, options["interrupt_grace"], signals, lock, watched)
                    finally:
                        during_run = len(signals.received)
        except Exception as error:
            result = run.result if run is not None else RunResult(plan)
            _record_crash(result, error, where.clock, observe)
        else:
            result = run.result
        if journal is not None:
            journal.finish(result)
    journal_error = journal.error if journal is not None else None
    written = write_outputs(
        result,
        timeline,
        plan_path,
        redactor,
        options,
        run_id=run_id,
        journal_error=journal_error,
        images=pinning.digests,
    )
    print_summary(result, redactor=redactor, simulated_at=where.simulated_at)
    if pinning.digests:
        click.echo(f"{count(pinning.digests, 'image')} pinned to the digest resolved at the start")
    if notifier is not None:
        failed = [r for r in result.results.values() if r.status.counts_as_failure]
        notifier.finished(
            str(result.verdict),
            result.statistics(),
            [FailedTarget(r.target.name, str(r.status), r.error or "") for r in failed],
            halted=result.halted,
            report=str(options["report_path"]) if options["report_path"] else None,
        )
    late = signals.received[during_run:]
    if late:
        say(f"{late[0].name} came after the run had ended; every output is written")
    code = EXIT_PLAN if pinning.problems or unverified or gate_problems else _exit_code(result)
    lost_lock = lock is not None and lock.lost is not None
    return code if (written and not journal_error and not lost_lock) or code else EXIT_FAILED


def _verifies(where: Where, options: dict[str, Any], job: Job) -> bool:
    """Whether the run checks what its targets reference first (``cli.verify``): not a
    rollback, nor with ``--no-verify``; a rehearsal says it cannot."""
    if job.roll_back is not None or options.get("no_verify"):
        return False
    if where.simulator is not None:
        say(REHEARSAL_NOTE)
        return False
    return True


def write_outputs(
    result: RunResult,
    timeline: Timeline,
    plan_path: str,
    redactor: Redactor,
    options: dict[str, Any],
    *,
    run_id: str | None,
    journal_error: str | None = None,
    github: bool = True,
    images: Mapping[str, str] | None = None,
) -> bool:
    """The files asked for, and the GitHub job summary when running in GitHub Actions.

    One that cannot be written (a missing directory, a full disk) is said and the others
    are still written; False when one failed.
    """
    writers: list[tuple[str, Callable[[], None]]] = []
    if path := options["report_path"]:
        report = run_report(
            result,
            plan_path=plan_path,
            redactor=redactor,
            run_id=run_id,
            journal_error=journal_error,
            windows_ignored=options.get("windows_ignored"),
            images=images,
        )
        writers.append((f"the report to {path}", partial(write_report, path, report)))
    if path := options["junit_path"]:
        junit = partial(write_junit, path, result, plan_path=plan_path, redactor=redactor)
        writers.append((f"JUnit XML to {path}", junit))
    if path := options["html_path"]:
        html = partial(
            write_html_report, path, result, timeline, plan_path=plan_path, redactor=redactor
        )
        writers.append((f"the HTML report to {path}", html))
    if github:
        summary = partial(append_github_summary, result, plan_path=plan_path, redactor=redactor)
        writers.append(("the GitHub job summary", summary))
    written = True
    for what, write in writers:
        try:
            write()
        except OSError as error:
            click.echo(f"error: cannot write {what}: {error.strerror or error}", err=True)
            written = False
    return written
