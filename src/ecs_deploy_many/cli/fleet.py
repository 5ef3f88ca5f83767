"""`ecs-deploy-many PLAN`: run, check, preview or rehearse a deploy plan.

``cli.many`` declares the flags and imports this module only when a command runs: it
brings the AWS SDK, the engine, the outputs and the simulator with it.

Exit codes: 0 every target succeeded or was unchanged; 1 at least one failed (after
whatever rollback), an output or the run journal could not be written, the run lost its
lock, or an unexpected error stopped the run; 2 plan, fleet or usage error, a journal,
lock table or run table (``--run-table``) that cannot be used at the start, or an image
that cannot be pinned to its digest, nothing touched; 73 another run holds the plan's
lock (``cli.lock``), nothing touched; 75 (EX_TEMPFAIL) outside the plan's release
windows or inside a freeze, nothing touched; 130 interrupted. A webhook of the plan's
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
cancels them. Either way every target's state is recorded and the report written: once
the plan is loaded and until the process exits, signals are held, never default-handled, so a
late one cannot cut an output short. An unexpected error is logged with its traceback
once, and the outputs are written with what is known of every target.

Every run but a check or a dry run is journaled (``journal``): ``run_started`` before
any call to ECS, each event as it happens, ``run_finished`` once the outcome is known,
however the run ended.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence, Sized
from contextlib import AsyncExitStack, asynccontextmanager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import asyncclick as click
import structlog
from rich.console import Console

from ecs_deploy_many.aws.session import ClientPool, StaticKeys
from ecs_deploy_many.aws.watch import PollPolicy
from ecs_deploy_many.cli.lock import held_lock
from ecs_deploy_many.cli.options import start_logging
from ecs_deploy_many.cli.rehearsal import fleet_for_plan
from ecs_deploy_many.cli.signals import HeldSignals, ProcessEnd, cancel_on_signal
from ecs_deploy_many.core.clock import Clock, ScaledClock, real_clock, utc_iso
from ecs_deploy_many.core.errors import FleetError, JournalError, PlanError, RunTableError
from ecs_deploy_many.core.events import Observer, fan_out, target_finished
from ecs_deploy_many.core.history import TargetHistory
from ecs_deploy_many.core.redact import Redactor, run_redactor
from ecs_deploy_many.core.result import Status, TargetResult
from ecs_deploy_many.core.scope import AwsScope
from ecs_deploy_many.deploy.dryrun import (
    TargetPreview,
    format_preview,
    format_status,
    preview_plan,
)
from ecs_deploy_many.deploy.engine import FleetRun, RunResult, RunVerdict
from ecs_deploy_many.deploy.pipeline import RunContext
from ecs_deploy_many.jobs.lock import RunLock
from ecs_deploy_many.jobs.notify import FailedTarget, Notifier
from ecs_deploy_many.jobs.pinning import Pinning, ecr_image, pin_digests
from ecs_deploy_many.jobs.windows import Decision, close_on_schedule, decide, shown
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
from ecs_deploy_many.observe.github import append_github_summary
from ecs_deploy_many.observe.html import write_html_report
from ecs_deploy_many.observe.junit import write_junit
from ecs_deploy_many.observe.log import log_observer
from ecs_deploy_many.observe.progress import ProgressView, show_progress
from ecs_deploy_many.observe.report import run_report, write_report
from ecs_deploy_many.observe.summary import print_summary
from ecs_deploy_many.observe.timeline import Timeline
from ecs_deploy_many.plan import DependencyChoice, Plan, load_plan, select, shard
from ecs_deploy_many.plan.schedule import Schedule
from ecs_deploy_many.sim.fleet import Fleet, load_fleet
from ecs_deploy_many.sim.server import Simulator

__all__ = [
    "Job",
    "check_window_flags",
    "deploy",
    "journal_location",
    "journal_start",
    "plan_digest",
    "plan_or_exit",
    "run_job",
    "status",
    "validate",
    "write_outputs",
]

EXIT_FAILED = 1
EXIT_PLAN = 2
EXIT_OUTSIDE_WINDOW = 75
EXIT_INTERRUPTED = 130
REHEARSAL_SPEED = 20.0
# Keys for the simulator: it checks signatures' shape, not their secret.
REHEARSAL_KEYS = StaticKeys("AKIDREHEARSAL", "rehearsal-secret-not-a-real-key")


def _load(
    path: str,
    only: Sequence[str],
    exclude: Sequence[str],
    dependencies: DependencyChoice,
    part: str | None,
) -> Plan:
    """The plan, selected, then sharded; a PlanError lists every problem with file and
    line."""
    plan = load_plan(path, environ=os.environ)
    if only or exclude:
        plan = select(plan, only, exclude, dependencies=dependencies)
    if part is not None and part != "1/1":
        index, count = _shard_numbers(part)
        plan = shard(plan, index, count)
    return plan


def _shard_numbers(part: str) -> tuple[int, int]:
    """``"2/3"`` -> ``(2, 3)``."""
    index, _, count = part.partition("/")
    return int(index), int(count)


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
    click.echo(
        f"{plan_path}: valid: {_count(plan.targets, 'target')} in {_count(plan.waves, 'wave')}"
    )
    _say_schedule(plan, real_clock())


def _say_schedule(plan: Plan, clock: Clock) -> None:
    """What the plan's release schedule says of a run started now, for the commands
    that only report it (a check, a dry run, a status)."""
    if plan.schedule is not None:
        click.echo(_schedule_line(decide(plan.schedule, clock.now())))


def _schedule_line(decision: Decision) -> str:
    return f"release schedule at {shown(decision.at, decision.zone)}: {decision}"


def _count(items: Sized, noun: str) -> str:
    """``1 target``, ``2 targets``."""
    return f"{len(items)} {noun}{'s' * (len(items) != 1)}"


@dataclass(frozen=True)
class _Where:
    """Where a run's calls go, on which clock, and the plan as aimed there."""

    plan: Plan
    clock: Clock
    keys: StaticKeys | None = None
    endpoint_url: str | None = None
    simulator: Simulator | None = None
    """The in-process simulator of a rehearsal, not started yet."""
    simulated_at: float | None = None
    """The speed of the simulator whose clock times the run, when one does."""


def _where(plan: Plan, options: dict[str, Any]) -> _Where:
    """Where ``plan`` runs: AWS, a simulator elsewhere, or a rehearsal's own simulator."""
    speed = options["speed"]
    if not options["simulate"]:
        if speed is not None and not options["endpoint_url"]:
            raise click.UsageError("--speed only applies with --simulate or --endpoint-url")
        clock = real_clock() if speed in (None, 1) else ScaledClock(speed)
        return _Where(plan, clock, endpoint_url=options["endpoint_url"], simulated_at=speed)
    speed = speed or REHEARSAL_SPEED
    fleet_file = options["fleet_file"]
    base = load_fleet(fleet_file) if fleet_file else None
    environ = os.environ
    region = (
        base.region
        if base
        else environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    )
    # Profiles and roles name real accounts; a rehearsal only needs the region.
    targets = tuple(
        replace(t, scope=AwsScope(region=t.scope.region or region)) for t in plan.targets
    )
    plan = replace(plan, targets=targets)
    # The plan may name what the simulator, like ECS, refuses (a service "api v2").
    made_for = f"the simulator's fleet made for {plan.source}"
    try:
        fleet: Fleet = fleet_for_plan(plan, base)
    except FleetError as error:
        raise FleetError(made_for, error.key, error.message) from None
    except ValueError as error:  # pydantic's
        raise FleetError(made_for, "", str(error)) from None
    simulator = Simulator(fleet, speed=speed)
    return _Where(plan, simulator.clock, REHEARSAL_KEYS, simulator=simulator, simulated_at=speed)


def _where_or_exit(plan_path: str, plan: Plan, options: dict[str, Any]) -> _Where:
    try:
        return _where(plan, options)
    except FleetError as error:
        click.echo(f"error: {error}", err=True)
        click.echo(f"{plan_path}: cannot be rehearsed; nothing was changed", err=True)
        raise click.exceptions.Exit(EXIT_PLAN) from None


@asynccontextmanager
async def _connected(where: _Where, *, verbose: bool) -> AsyncIterator[ClientPool]:
    """Clients for the run, the rehearsal's simulator serving meanwhile."""
    async with AsyncExitStack() as stack:
        endpoint_url = where.endpoint_url
        if where.simulator is not None:
            simulator = await stack.enter_async_context(where.simulator)
            endpoint_url = simulator.endpoint_url
            lock = "; the run lock is in the process (its table or file untouched)"
            click.echo(
                f"rehearsing against an in-process ECS simulator at {where.simulated_at:g}x "
                f"({endpoint_url}){lock if where.plan.lock else ''}",
                err=True,
            )
        plan = where.plan
        yield await stack.enter_async_context(
            ClientPool(
                where.clock,
                keys=where.keys,
                endpoint_url=endpoint_url,
                bucket_specs=plan.rate_limits,
                poll_policy=PollPolicy(plan.polling.initial_interval, plan.polling.max_interval),
                verbose=verbose,
            )
        )


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
                _say(f"{received.name} again: stopping in-flight targets now")
                self.scope.cancel()
                continue
            self._run.interrupt(f"the run was interrupted by {received.name}")
            _say(
                f"{received.name}: starting nothing new; in-flight targets have "
                f"{self._grace:g} s to finish (send it again to stop them now)"
            )
            group.start_soon(self._cancel_after_grace)

    async def _cancel_after_grace(self) -> None:
        await self._clock.sleep(self._grace)
        self.scope.cancel()


def _say(message: str) -> None:
    """A line on stderr while the run goes on.

    ``sys.stderr`` as it is now: while the live view is up it is rich's proxy, which
    prints above the view (``err=True`` would reach the terminal behind it and tear it).
    """
    click.echo(message, file=sys.stderr)


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
        _say(
            f"error: lost the run lock: {reason}; starting nothing new, in-flight targets "
            "finish or roll back, and the run will exit 1"
        )
        run.halt(f"lost the run lock: {reason}")

    def window_closed(reason: str) -> None:
        run.halt(reason)
        _say(f"{reason}: starting nothing new; in-flight targets finish")

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
    run_id = _run_id(options, journaled=not (options["dry_run"] or options["check_only"]))
    plan = plan_or_exit(
        plan_path,
        options["only"],
        options["exclude"],
        options["dependencies"] or "refuse",
        options["shard"],
    )
    if options["max_parallel"]:
        plan = replace(plan, max_parallel=options["max_parallel"])
    if options["check_only"]:
        _say_valid(plan_path, plan)
        return
    await run_job(plan, plan_path, options, None if options["dry_run"] else Job(run_id))


def _run_id(options: Mapping[str, Any], *, journaled: bool) -> str:
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
    if journaled and part is not None and _shard_numbers(part)[1] > 1 and run_id is None:
        raise click.UsageError(
            f"--shard {part} needs --run-id ID, the same for every shard of the run, so "
            f"their journals and run record meet ({example}, made once for all shards)"
        )
    return run_id or new_run_id()


def check_window_flags(options: Mapping[str, Any]) -> None:
    """``--wait-for-window``, ``--ignore-windows`` and ``--reason`` make sense together."""
    if options["ignore_windows"] and not options["reason"]:
        raise click.UsageError(
            "--ignore-windows needs --reason TEXT: why this run deploys regardless of the "
            "plan's release windows and freezes (it goes into the logs and the report)"
        )
    if options["reason"] and not options["ignore_windows"]:
        raise click.UsageError("--reason only applies with --ignore-windows")
    if options["ignore_windows"] and options["wait_for_window"] is not None:
        raise click.UsageError("--wait-for-window and --ignore-windows contradict each other")


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
    where = _where_or_exit(plan_path, plan, options)
    redactor = _redactor(plan)
    console = start_logging(options, redactor, where.clock)
    # From here to the last output a signal never takes Python's default course.
    until_exit = isinstance(click.get_current_context().obj, ProcessEnd)
    with HeldSignals(until_exit=until_exit) as signals:
        if job is None:
            code = await _read_only(
                where,
                signals,
                redactor,
                format_preview,
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


def _notifier(where: _Where, plan_path: str, run_id: str, redactor: Redactor) -> Notifier | None:
    """What sends the plan's notifications; None without any, or in a rehearsal, whose
    messages would reach the real channels as if production were being deployed."""
    webhooks = where.plan.notifications
    if not webhooks:
        return None
    if where.simulator is not None:
        _say(f"notifications are not sent in a rehearsal ({_count(webhooks, 'webhook')})")
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


async def _pinned(where: _Where, job: Job, pool: ClientPool, redactor: Redactor) -> Pinning:
    """The digest of every ECR image the job deploys (``images: {pin_digests: ...}``),
    resolved before anything changes, and the images that cannot be.

    The images are those the dry run renders, read the same way: a ``tag_only`` target
    only knows its repository once its current task definition is read. A rehearsal
    pins nothing (its images are taken as present), nor does a rollback (it returns to
    revisions as they were).
    """
    if job.roll_back is not None or not _pins_images(where):
        return Pinning()
    _, pinning = await _previews_and_pins(where.plan, pool, redactor)
    if pinning.problems:
        return pinning
    log = structlog.get_logger("ecs_deploy_many")
    for image, digest in pinning.digests.items():
        log.info("image_pinned", image=image, digest=digest)
    for image in pinning.not_in_ecr:
        log.info("image_not_pinned", image=image, reason="not a tag in Amazon ECR")
    return pinning


def _pins_images(where: _Where) -> bool:
    """Whether a run pins its images: only when it may deploy an ECR image, so a plan
    of other registries' images reads nothing more (each is logged as not pinned). A
    rehearsal does not, and says so when the plan has ECR images."""
    plan = where.plan
    if not plan.images.pin_digests:
        return False
    ecr = _may_deploy_ecr_images(plan)
    if where.simulator is not None:
        if ecr:
            _say("images are taken as present in a rehearsal: tags are not pinned to digests")
        return False
    if not ecr:
        log = structlog.get_logger("ecs_deploy_many")
        for image in sorted(_named_images(plan)):
            log.info("image_not_pinned", image=image, reason="not a tag in Amazon ECR")
    return ecr


def _may_deploy_ecr_images(plan: Plan) -> bool:
    """A target names an ECR image, or retags one whose repository only ECS knows."""
    return any(t.tag_only for t in plan.targets) or any(map(ecr_image, _named_images(plan)))


def _named_images(plan: Plan) -> set[str]:
    """The images the targets name (not those a retag or a task definition file sets)."""
    return {i for t in plan.targets for i in (t.image, *t.containers.values()) if i}


async def _previews_and_pins(
    plan: Plan, pool: ClientPool, redactor: Redactor
) -> tuple[list[TargetPreview], Pinning]:
    """Every target's preview, and the digests of the images they would deploy."""
    previews = await preview_plan(plan, pool, max_parallel=plan.max_parallel, redactor=redactor)
    return previews, await pin_digests(image for p in previews for image in p.images)


def _unpinned(plan_path: str, pinning: Pinning) -> str:
    """Say which images cannot be pinned and why; the reason the run deploys nothing."""
    for problem in pinning.problems:
        _say(f"error: {problem}")
    cannot = f"{_count(pinning.problems, 'image')} cannot be pinned to a digest"
    _say(
        f"{plan_path}: {cannot}; nothing was changed "
        "(images: {pin_digests: false} deploys tags as they are)"
    )
    return f"nothing was deployed: {cannot}: {'; '.join(pinning.problems)}"


async def status(plan_path: str, options: dict[str, Any]) -> None:
    """``ecs-deploy-many status``: per target, what runs now and what the plan would do."""
    plan = plan_or_exit(plan_path, options["only"], options["exclude"], "skip")
    where = _where(plan, {"simulate": False, "speed": None, **options})
    redactor = _redactor(plan)
    start_logging(options, redactor, where.clock)
    until_exit = isinstance(click.get_current_context().obj, ProcessEnd)
    with HeldSignals(until_exit=until_exit) as signals:
        code = await _read_only(
            where, signals, redactor, format_status, "status", verbose=options["verbose"]
        )
    raise click.exceptions.Exit(code)


async def _read_only(
    where: _Where,
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
    async with _connected(where, verbose=verbose) as pool, anyio.create_task_group() as group:
        group.start_soon(cancel_on_signal, signals, group.cancel_scope, what)
        if pin and _pins_images(where):
            previews, pinning = await _previews_and_pins(plan, pool, redactor)
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
        click.echo(f"{_count(pinning.digests, 'image')} pinned to the digest its tag names now")
    _say_schedule(where.plan, where.clock)
    return EXIT_FAILED if pinning.problems or any(p.error for p in previews) else 0


async def _deploy(
    where: _Where,
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
    watched, ignored = await _obey_schedule(where, plan_path, options, signals, job)
    options = {**options, "windows_ignored": ignored}
    progress, timeline = ProgressView(len(plan.targets)), Timeline()
    watchers: list[Observer] = [log_observer(), progress]
    if options["html_path"]:
        watchers.append(timeline)
    if notifier is not None:
        watchers.append(notifier)
    pinning = Pinning()
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
        shared = await _run_table(stack, where, plan_path, options, run_id)
        journal = await _journal(stack, where, plan_path, options, redactor, run_id)
        if notifier is not None:
            notifier.started()
        observe = fan_out(*([journal] if journal else []), *watchers)
        run, during_run = None, 0
        try:
            async with _connected(where, verbose=options["verbose"]) as pool:
                pinning = await _pinned(where, job, pool, redactor)
                context = RunContext(
                    pool, where.clock, observe, redactor=redactor, pins=pinning.pins
                )
                run = FleetRun(plan, context, job.prior, shared)
                if pinning.problems:
                    run.halt(_unpinned(plan_path, pinning))
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
        click.echo(f"{_count(pinning.digests, 'image')} pinned to the digest resolved at the start")
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
        _say(f"{late[0].name} came after the run had ended; every output is written")
    code = EXIT_PLAN if pinning.problems else _exit_code(result)
    lost_lock = lock is not None and lock.lost is not None
    return code if (written and not journal_error and not lost_lock) or code else EXIT_FAILED


async def _obey_schedule(
    where: _Where, plan_path: str, options: Mapping[str, Any], signals: HeldSignals, job: Job
) -> tuple[Schedule | None, str | None]:
    """Whether the plan's schedule lets the job start now (else exit 75, or wait with
    ``--wait-for-window``): the schedule to watch while it runs, if any, and the reason
    the windows are ignored, if they are."""
    schedule = where.plan.schedule
    if schedule is None or job.roll_back is not None:
        return None, None
    decision = decide(schedule, where.clock.now())
    if where.simulator is not None:
        if decision.allowed:
            _say(_schedule_line(decision))
            return schedule, None
        _say(f"{_schedule_line(decision)}: a real run now would exit 75; the rehearsal runs")
        return None, None
    if options["ignore_windows"]:
        reason = options["reason"]
        structlog.get_logger("ecs_deploy_many").warning(
            "release_windows_ignored", reason=reason, schedule=str(decision)
        )
        return None, reason
    wait = options.get("wait_for_window")
    if not decision.allowed and wait is not None:
        decision = await _wait_for_window(schedule, decision, where.clock, wait, signals)
    if not decision.allowed:
        waited = f" (after waiting {wait:g} s)" if wait is not None and wait != math.inf else ""
        click.echo(f"error: {_schedule_line(decision)}{waited}", err=True)
        click.echo(
            f"{plan_path}: nothing was changed (--wait-for-window waits for the next "
            "opening; --ignore-windows --reason TEXT deploys anyway)",
            err=True,
        )
        raise click.exceptions.Exit(EXIT_OUTSIDE_WINDOW)
    _say(_schedule_line(decision))
    return schedule, None


async def _wait_for_window(
    schedule: Schedule, decision: Decision, clock: Clock, wait: float, signals: HeldSignals
) -> Decision:
    """Sleep on ``clock`` until the schedule allows the run, for at most ``wait`` seconds
    (infinite: no limit); the decision then. A signal stops the wait, changing nothing."""
    if decision.opens_at is None:
        return decision
    limit = "" if wait == math.inf else f" (at most {wait:g} s)"
    _say(f"{_schedule_line(decision)}; waiting for it{limit}")
    give_up = clock.now() + wait
    async with anyio.create_task_group() as group:
        group.start_soon(cancel_on_signal, signals, group.cancel_scope, "waiting")
        while not decision.allowed and decision.opens_at is not None and clock.now() < give_up:
            await clock.sleep(min(decision.opens_at.timestamp(), give_up) - clock.now())
            decision = decide(schedule, clock.now())
        group.cancel_scope.cancel()
    if signals.received:
        click.echo(
            "interrupted while waiting for the release window; nothing was changed", err=True
        )
        raise click.exceptions.Exit(EXIT_INTERRUPTED)
    return decision


def journal_location(options: dict[str, Any]) -> JournalLocation:
    """Where ``--journal`` says journals are (the default location without it)."""
    try:
        return locate(options["journal"], os.environ)
    except JournalError as error:
        raise click.UsageError(str(error)) from None


async def _journal(
    stack: AsyncExitStack,
    where: _Where,
    plan_path: str,
    options: dict[str, Any],
    redactor: Redactor,
    run_id: str,
) -> JournalWriter | None:
    """The run's journal, ``run_started`` written, or None with ``--no-journal``.

    One that cannot be written ends the command (exit 2) before any call to ECS.
    """
    if options["no_journal"]:
        _say(f"run {run_id} (not journaled)")
        return None
    location = journal_location(options)
    start = journal_start(where.plan, plan_path, options, where.simulated_at)

    def journal_failed(message: str) -> None:
        _say(
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
    _say(f"run {run_id}: journal at {journal.where}")
    return journal


async def _run_table(
    stack: AsyncExitStack,
    where: _Where,
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
        _say(
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
        waves=[{"name": w.name, "targets": list(w.targets), "bake": w.bake} for w in plan.waves],
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


def plan_digest(plan_path: str) -> str | None:
    """The plan file's digest, for a resume to see whether it changed; None when it is
    gone (a run made from a journal's plan)."""
    try:
        return file_digest(Path(plan_path).read_bytes())
    except OSError:
        return None


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
