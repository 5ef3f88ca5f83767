"""`ecs-deploy-many PLAN`: run, check, preview or rehearse a deploy plan.

Exit codes: 0 every target succeeded or was unchanged; 1 at least one failed (after
whatever rollback); 2 plan or usage error, nothing touched; 130 interrupted.
The first SIGINT or SIGTERM starts nothing new and gives in-flight targets
``--interrupt-grace`` seconds to finish; a second one (or the grace running out)
cancels them. Either way every target's state is recorded and the report written.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import asyncclick as click

from ecs_deploy_many.aws.scope import AwsScope
from ecs_deploy_many.aws.session import ClientPool, StaticKeys
from ecs_deploy_many.aws.watch import PollPolicy
from ecs_deploy_many.cli.options import log_options, start_logging
from ecs_deploy_many.clock import Clock, ScaledClock, real_clock
from ecs_deploy_many.deploy.dryrun import format_preview, preview_plan
from ecs_deploy_many.deploy.engine import FleetRun, RunResult, RunVerdict
from ecs_deploy_many.deploy.pipeline import RunContext
from ecs_deploy_many.errors import PlanError
from ecs_deploy_many.observe.events import Observer, fan_out
from ecs_deploy_many.observe.github import append_github_summary
from ecs_deploy_many.observe.html import write_html_report
from ecs_deploy_many.observe.junit import write_junit
from ecs_deploy_many.observe.log import Redactor, log_observer, run_redactor
from ecs_deploy_many.observe.progress import ProgressView, show_progress
from ecs_deploy_many.observe.report import run_report, write_report
from ecs_deploy_many.observe.summary import print_summary
from ecs_deploy_many.observe.timeline import Timeline
from ecs_deploy_many.plan import DependencyChoice, Plan, load_plan, select
from ecs_deploy_many.sim.fleet import Fleet, load_fleet
from ecs_deploy_many.sim.rehearsal import fleet_for_plan
from ecs_deploy_many.sim.server import Simulator

__all__ = ["deploy", "validate"]

EXIT_FAILED = 1
EXIT_PLAN = 2
EXIT_INTERRUPTED = 130
REHEARSAL_SPEED = 20.0
# Keys for the simulator: it checks signatures' shape, not their secret.
REHEARSAL_KEYS = StaticKeys("AKIDREHEARSAL", "rehearsal-secret-not-a-real-key")


def _load(
    path: str, only: Sequence[str], exclude: Sequence[str], dependencies: DependencyChoice
) -> Plan:
    """The plan, selected; a PlanError lists every problem with file and line."""
    plan = load_plan(path, environ=os.environ)
    return select(plan, only, exclude, dependencies=dependencies) if only or exclude else plan


def _plan_or_exit(
    path: str,
    only: Sequence[str] = (),
    exclude: Sequence[str] = (),
    dependencies: DependencyChoice = "refuse",
) -> Plan:
    try:
        return _load(path, only, exclude, dependencies)
    except PlanError as error:
        for issue in error.issues:
            click.echo(f"error: {issue}", err=True)
        count = len(error.issues)
        click.echo(f"{path}: {count} problem{'s' * (count != 1)}; nothing was changed", err=True)
        raise click.exceptions.Exit(EXIT_PLAN) from None


@click.command()
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False))
async def validate(plan_path: str) -> None:
    """Check PLAN without calling AWS: exit 0 when it is valid, 2 when not."""
    _say_valid(plan_path, _plan_or_exit(plan_path))


def _say_valid(plan_path: str, plan: Plan) -> None:
    waves = len(plan.waves)
    click.echo(
        f"{plan_path}: valid: {len(plan.targets)} targets in {waves} wave{'s' * (waves != 1)}"
    )


@dataclass(frozen=True)
class _Where:
    """Where a run's calls go and on which clock."""

    clock: Clock
    keys: StaticKeys | None
    endpoint_url: str | None


@asynccontextmanager
async def _rehearsal(
    plan: Plan, fleet_file: Path | None, speed: float
) -> AsyncIterator[tuple[Plan, _Where]]:
    """An in-process simulator holding what the plan names, and the plan aimed at it."""
    base = load_fleet(fleet_file) if fleet_file else None
    region = base.region if base else os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    # Profiles and roles name real accounts; a rehearsal only needs the region.
    targets = tuple(
        replace(t, scope=AwsScope(region=t.scope.region or region)) for t in plan.targets
    )
    plan = replace(plan, targets=targets)
    fleet: Fleet = fleet_for_plan(plan, base)
    async with Simulator(fleet, speed=speed) as sim:
        click.echo(
            f"rehearsing against an in-process ECS simulator at {speed:g}x ({sim.endpoint_url})",
            err=True,
        )
        yield plan, _Where(sim.clock, REHEARSAL_KEYS, sim.endpoint_url)


@asynccontextmanager
async def _remote(
    plan: Plan, endpoint_url: str | None, speed: float
) -> AsyncIterator[tuple[Plan, _Where]]:
    """AWS, or a simulator serving elsewhere; ``speed`` is that simulator's clock speed."""
    clock = real_clock() if speed == 1 else ScaledClock(speed)
    yield plan, _Where(clock, None, endpoint_url)


class _Interruptions:
    """First SIGINT/SIGTERM: halt the run, cancel it after the grace; second: cancel now."""

    def __init__(self, run: FleetRun, clock: Clock, grace: float) -> None:
        self._run = run
        self._clock = clock
        self._grace = grace
        self.scope = anyio.CancelScope()
        self._received = 0

    async def watch(self, group: anyio.abc.TaskGroup) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                self._received += 1
                name = signal.Signals(signum).name
                if self._received > 1:
                    _say(f"{name} again: stopping in-flight targets now")
                    self.scope.cancel()
                    continue
                self._run.interrupt(f"the run was interrupted by {name}")
                _say(
                    f"{name}: starting nothing new; in-flight targets have {self._grace:g} s "
                    "to finish (send it again to stop them now)"
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


async def _run(plan: Plan, context: RunContext, grace: float) -> RunResult:
    """Run the plan under signal handling; the result is complete however it ended."""
    run = FleetRun(plan, context)
    interruptions = _Interruptions(run, context.clock, grace)
    async with anyio.create_task_group() as group:
        group.start_soon(interruptions.watch, group)
        with interruptions.scope:
            await run.run()
        group.cancel_scope.cancel()
    return run.result


def _exit_code(result: RunResult) -> int:
    return {
        RunVerdict.SUCCEEDED: 0,
        RunVerdict.FAILED: EXIT_FAILED,
        RunVerdict.INTERRUPTED: EXIT_INTERRUPTED,
    }[result.verdict]


@click.command()
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False))
@click.option("--only", multiple=True, metavar="GLOB", help="Deploy only matching targets.")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Leave matching targets out.")
@click.option(
    "--with-dependencies",
    "dependencies",
    flag_value="include",
    help="Also deploy what the selected targets depend on (else a left-out one is an error).",
)
@click.option(
    "--skip-dependencies",
    "dependencies",
    flag_value="skip",
    help="Deploy the selected targets without what they depend on (already deployed).",
)
@click.option("--validate", "check_only", is_flag=True, help="Only check the plan.")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--simulate", is_flag=True, help="Rehearse against an in-process simulator.")
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    help="Simulated seconds per real second of the simulator: the in-process one of "
    "--simulate (default 20), or the one at --endpoint-url, so deadlines, polls and "
    "rate limits keep its pace.",
)
@click.option(
    "--fleet",
    "fleet_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --simulate: a simulator fleet file (behaviour rules, timings).",
)
@click.option(
    "--max-parallel", type=click.IntRange(min=1), help="Override concurrency.max_parallel."
)
@click.option("--endpoint-url", metavar="URL", help="ECS endpoint (e.g. a running simulator).")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a JSON report of every target here.",
)
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write JUnit XML here: one test case per target, for CI test reports.",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a self-contained HTML report with each target's timeline here.",
)
@click.option(
    "--interrupt-grace",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds in-flight targets get after SIGINT/SIGTERM.",
)
@log_options
async def deploy(plan_path: str, **options: Any) -> None:
    """Deploy every target of PLAN (a YAML deploy plan)."""
    plan = _plan_or_exit(
        plan_path, options["only"], options["exclude"], options["dependencies"] or "refuse"
    )
    if options["max_parallel"]:
        plan = replace(plan, max_parallel=options["max_parallel"])
    if options["check_only"]:
        _say_valid(plan_path, plan)
        return
    files = [t.task_definition_body for t in plan.targets if t.task_definition_body is not None]
    redactor = run_redactor(os.environ, definitions=files)
    console = start_logging(options, redactor)
    speed = options["speed"]
    if speed is not None and not (options["simulate"] or options["endpoint_url"]):
        raise click.UsageError("--speed only applies with --simulate or --endpoint-url")
    where = (
        _rehearsal(plan, options["fleet_file"], speed or REHEARSAL_SPEED)
        if options["simulate"]
        else _remote(plan, options["endpoint_url"], speed or 1.0)
    )
    async with where as (plan, place):
        polling = PollPolicy(plan.polling.initial_interval, plan.polling.max_interval)
        async with ClientPool(
            place.clock,
            keys=place.keys,
            endpoint_url=place.endpoint_url,
            bucket_specs=plan.rate_limits,
            poll_policy=polling,
            verbose=options["verbose"],
        ) as pool:
            if options["dry_run"]:
                previews = await preview_plan(plan, pool, max_parallel=plan.max_parallel)
            else:
                progress, timeline = ProgressView(len(plan.targets)), Timeline()
                watchers: list[Observer] = [log_observer(), progress]
                if options["html_path"]:
                    watchers.append(timeline)
                context = RunContext(pool, place.clock, fan_out(*watchers), redactor=redactor)
                async with show_progress(progress, place.clock, console):
                    result = await _run(plan, context, options["interrupt_grace"])
    # Exit codes leave only once the pool and the simulator have shut down.
    if options["dry_run"]:
        click.echo(format_preview(previews))
        raise click.exceptions.Exit(EXIT_FAILED if any(p.error for p in previews) else 0)
    _write_outputs(result, timeline, plan_path, redactor, options)
    print_summary(result, redactor=redactor)
    raise click.exceptions.Exit(_exit_code(result))


def _write_outputs(
    result: RunResult,
    timeline: Timeline,
    plan_path: str,
    redactor: Redactor,
    options: dict[str, Any],
) -> None:
    """The files asked for, and the GitHub job summary when running in GitHub Actions."""
    if options["report_path"]:
        write_report(
            options["report_path"], run_report(result, plan_path=plan_path, redactor=redactor)
        )
    if options["junit_path"]:
        write_junit(options["junit_path"], result, plan_path=plan_path, redactor=redactor)
    if options["html_path"]:
        write_html_report(
            options["html_path"], result, timeline, plan_path=plan_path, redactor=redactor
        )
    append_github_summary(result, plan_path=plan_path, redactor=redactor)
