"""`ecs-deploy-many`: fleet rollouts from a deploy plan, and the local ECS simulator.

``ecs-deploy-many PLAN ...`` is short for ``ecs-deploy-many deploy PLAN ...``; the other
subcommands are ``validate PLAN``, ``verify PLAN``, ``init``, ``iam-policy PLAN``,
``status PLAN``, ``runs``, ``show RUN``, ``resume RUN``, ``rollback RUN``, ``approve RUN WAVE``,
``lock status|break PLAN`` and ``sim serve``.

This module only declares the commands and their flags, so ``--version`` and ``--help``
start at once: a command imports what it uses (``cli.fleet``: the AWS SDK, the engine,
the outputs, the simulator) when it runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncclick as click

from ecs_deploy_many import __version__
from ecs_deploy_many.cli.options import log_options, stop_deployments_option
from ecs_deploy_many.cli.signals import ProcessEnd
from ecs_deploy_many.cli.sim import sim

JOURNAL_HELP = (
    "Where run journals are: a directory or s3://bucket/prefix (default: "
    "$ECS_DEPLOY_MANY_STATE_DIR, else $XDG_STATE_HOME/ecs-deploy-many/runs, else "
    "~/.local/state/ecs-deploy-many/runs)."
)


F = TypeVar("F", bound=Callable[..., Any])


def _journal_option(command: F) -> F:
    option = click.option("--journal", metavar="PATH|s3://BUCKET/PREFIX", help=JOURNAL_HELP)
    return option(command)


def _lock_wait_option(command: F) -> F:
    option = click.option(
        "--lock-wait",
        type=click.FloatRange(min=0),
        metavar="SECONDS",
        help="When another run holds the plan's lock, wait this long for it (else exit 73).",
    )
    return option(command)


def _report_options(command: F) -> F:
    """--report, --junit and --html: the files a run (or ``show``) writes."""
    for option in reversed(
        [
            click.option(
                "--report",
                "report_path",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Write a JSON report of every target here.",
            ),
            click.option(
                "--junit",
                "junit_path",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Write JUnit XML here: one test case per target, for CI test reports.",
            ),
            click.option(
                "--html",
                "html_path",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Write a self-contained HTML report with each target's timeline here.",
            ),
        ]
    ):
        command = option(command)
    return command


def _window_options(command: F) -> F:
    """--wait-for-window, --ignore-windows and --reason: a run and the plan's schedule."""
    for option in reversed(
        [
            click.option(
                "--wait-for-window",
                type=click.FloatRange(min=0),
                is_flag=False,
                flag_value=math.inf,
                metavar="[MAX]",
                help="Outside the plan's release windows or in a freeze, wait for the next "
                "opening (at most MAX seconds; no value: however long) instead of exiting 75.",
            ),
            click.option(
                "--ignore-windows",
                is_flag=True,
                help="Deploy regardless of the plan's release windows and freezes "
                "(needs --reason).",
            ),
            click.option(
                "--reason",
                metavar="TEXT",
                help="With --ignore-windows: why; it goes into the logs and the report.",
            ),
        ]
    ):
        command = option(command)
    return command


def _allow_no_match_option(command: F) -> F:
    option = click.option(
        "--allow-no-match",
        is_flag=True,
        help="A select: target that finds no service is a warning, not an error.",
    )
    return option(command)


def _shard(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    """``--shard K/N``, checked: ``1 <= K <= N``."""
    if value is None:
        return None
    index, _slash, count = value.partition("/")
    if not (index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise click.BadParameter(f"{value!r} is not K/N with 1 <= K <= N (e.g. 2/3)")
    return f"{int(index)}/{int(count)}"


class _PlanFirstGroup(click.Group):
    """A group whose first argument, when it names no subcommand, is a plan to deploy."""

    async def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["deploy", *args]
        result: list[str] = await super().parse_args(ctx, args)
        return result


@click.group(cls=_PlanFirstGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ecs-deploy-many", message="%(prog)s %(version)s")
async def cli(**_: Any) -> None:
    """Roll out container images to many Amazon ECS services at once.

    \b
    ecs-deploy-many PLAN [OPTIONS]     deploy a plan (see `ecs-deploy-many deploy --help`)
    ecs-deploy-many validate PLAN      check a plan, calling nothing
    ecs-deploy-many init -c GLOB       write a plan from the services running now
    ecs-deploy-many verify PLAN        do the images, secrets, roles, log groups exist?
    ecs-deploy-many iam-policy PLAN    the IAM policy a run of PLAN needs
    ecs-deploy-many status PLAN        what runs now against what the plan would deploy
    ecs-deploy-many runs               list the journaled runs, newest first
    ecs-deploy-many show RUN           a journaled run's summary and reports
    ecs-deploy-many resume RUN         continue a killed or interrupted run
    ecs-deploy-many rollback RUN       put back every service a run changed
    ecs-deploy-many approve RUN WAVE   let a run's wave waiting for approval start
    ecs-deploy-many lock status PLAN   who holds the plan's run lock
    ecs-deploy-many lock break PLAN    remove it (--reason is recorded)
    ecs-deploy-many sim serve          run the local ECS simulator
    """


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
@_allow_no_match_option
@click.option("--validate", "check_only", is_flag=True, help="Only check the plan.")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option(
    "--no-verify",
    is_flag=True,
    help="Deploy without first checking that the images, secrets, roles and log groups "
    "each target references exist (see `ecs-deploy-many verify`).",
)
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
@_window_options
@click.option(
    "--shard",
    metavar="K/N",
    callback=_shard,
    help="Run shard K of N: a deterministic share of the (selected) targets, whole "
    "clusters and scopes together, one runner each; needs --run-id when N > 1.",
)
@click.option(
    "--run-id",
    metavar="ID",
    help="Journal under this run id (e.g. 20261202T031500Z-1a2b3c), the same for every "
    "shard of the run.",
)
@click.option(
    "--run-table",
    metavar="TABLE",
    help="A DynamoDB table (string partition key pk) where the shards of the run share "
    "one failure budget and one halt.",
)
@_report_options
@_journal_option
@click.option("--no-journal", is_flag=True, help="Keep no journal of this run.")
@_lock_wait_option
@click.option(
    "--interrupt-grace",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds in-flight targets get after SIGINT/SIGTERM.",
)
@stop_deployments_option
@log_options
async def deploy(plan_path: str, **options: Any) -> None:
    """Deploy every target of PLAN (a YAML deploy plan)."""
    from ecs_deploy_many.cli import fleet

    await fleet.deploy(plan_path, options)


@click.command()
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False))
async def validate(plan_path: str) -> None:
    """Check PLAN without calling AWS: exit 0 when it is valid, 2 when not."""
    from ecs_deploy_many.cli import fleet

    fleet.validate(plan_path)


@click.command()
@click.option(
    "-c",
    "--cluster",
    "clusters",
    multiple=True,
    required=True,
    metavar="NAME|GLOB",
    help="A cluster, by name or glob (repeat for more).",
)
@click.option("--region", help="The region (default: the SDK's, e.g. $AWS_REGION).")
@click.option("--profile", help="The AWS profile (written into the plan's defaults).")
@click.option("--endpoint-url", metavar="URL", help="ECS endpoint (e.g. a running simulator).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the plan here (default: standard output).",
)
@click.option("--force", is_flag=True, help="Overwrite --output when it exists.")
@log_options
async def init(**options: Any) -> None:
    """Write a plan from the services running now: one target per ACTIVE service of the
    clusters, with the images it runs (so its dry run changes nothing).

    Reads only (ListClusters, ListServices, DescribeServices, DescribeTaskDefinition).
    Exit 0 when written, 1 when ECS could not be read, 2 when the file exists (without
    --force) or no service was found.
    """
    from ecs_deploy_many.cli import init as command

    await command.init(options)


@click.command()
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False))
@click.option("--only", multiple=True, metavar="GLOB", help="Verify only matching targets.")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Leave matching targets out.")
@click.option("--endpoint-url", metavar="URL", help="ECS endpoint (e.g. a running simulator).")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the findings as JSON here.",
)
@_allow_no_match_option
@log_options
async def verify(plan_path: str, **options: Any) -> None:
    """Check that what PLAN's task definitions reference exists, per target.

    Renders each target's task definition as the dry run does (reading only
    DescribeServices and DescribeTaskDefinition), then asks, once for each distinct
    thing: ECR for images (others are not checked), Secrets Manager and SSM Parameter
    Store for secrets, IAM for the task and execution roles, CloudWatch Logs for awslogs
    log groups (unless awslogs-create-group). Exit 0 when nothing is missing (things
    that could not be checked, say access denied, are warnings), 2 when something is,
    1 when a target could not be read. A run checks the same first (--no-verify skips).
    """
    from ecs_deploy_many.cli import verify as command

    await command.verify(plan_path, options)


@click.command(name="iam-policy")
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False))
@click.option("--only", multiple=True, metavar="GLOB", help="Only matching targets.")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Leave matching targets out.")
@click.option(
    "--account",
    metavar="ID",
    help="The account of targets that assume no role (default: any account, *).",
)
@click.option(
    "--role",
    "roles",
    multiple=True,
    metavar="ARN|NAME",
    help="A task or execution role the run may pass (repeat); replaces the wildcard "
    "for targets whose running revision names the roles.",
)
@_journal_option
@click.option("--run-table", metavar="TABLE", help="The DynamoDB table shards share.")
@click.option("--no-verify", is_flag=True, help="Runs skip verify: no reads of references.")
@stop_deployments_option
@click.option(
    "--for",
    "for_",
    type=click.Choice(["run", "dry-run"]),
    default="run",
    show_default=True,
    help="dry-run: only the reads a --dry-run makes.",
)
@click.option(
    "--explain", is_flag=True, help="Say on stderr which feature of the plan needs each statement."
)
async def iam_policy(plan_path: str, **options: Any) -> None:
    """Print the IAM policy (JSON) a run of PLAN needs: exactly the actions its
    targets and features can call, each scoped to the narrowest resources ECS and IAM
    support. Calls nothing. `validate` needs no permission at all.
    """
    from ecs_deploy_many.cli import fleet
    from ecs_deploy_many.cli import iam_policy as command

    plan = fleet.plan_or_exit(plan_path, options["only"], options["exclude"], "include")
    command.print_plan_policy(plan, options)


@click.command()
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False))
@click.option("--only", multiple=True, metavar="GLOB", help="Show only matching targets.")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Leave matching targets out.")
@_allow_no_match_option
@click.option("--endpoint-url", metavar="URL", help="ECS endpoint (e.g. a running simulator).")
@log_options
async def status(plan_path: str, **options: Any) -> None:
    """Show, per target of PLAN, what runs now and what deploying PLAN would change.

    Reads only (DescribeServices, DescribeTaskDefinition): the revision each service
    runs, its images, whether its newest deployment is steady, still deploying or
    failed, and the plan's change. Exit 0, or 1 when a target could not be read.
    """
    from ecs_deploy_many.cli import fleet

    await fleet.status(plan_path, options)


@click.command()
@_journal_option
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="At most this many."
)
async def runs(journal: str | None, limit: int) -> None:
    """List journaled runs, newest first: id, plan, start, verdict, counts."""
    from ecs_deploy_many.cli import runs as commands

    await commands.list_runs(journal, limit)


@click.command()
@click.argument("run_id", metavar="RUN")
@_journal_option
@_report_options
async def show(run_id: str, journal: str | None, **outputs: Any) -> None:
    """Print the summary of RUN (its id, or the start of one) from its journal alone, and
    write its reports."""
    from ecs_deploy_many.cli import runs as commands

    await commands.show_run(run_id, journal, outputs)


def _target_run_options(command: Any) -> Any:
    """Where a resumed or rolled-back run's calls go, and its outputs."""
    for option in reversed(
        [
            click.option(
                "--endpoint-url", metavar="URL", help="ECS endpoint (e.g. a running simulator)."
            ),
            click.option(
                "--speed",
                type=click.FloatRange(min=0, min_open=True),
                help="With --endpoint-url: that simulator's clock speed.",
            ),
            _report_options,
            _journal_option,
            _lock_wait_option,
            click.option(
                "--interrupt-grace",
                type=click.FloatRange(min=0),
                default=30.0,
                show_default=True,
                help="Seconds in-flight targets get after SIGINT/SIGTERM.",
            ),
            stop_deployments_option,
            log_options,
        ]
    ):
        command = option(command)
    return command


@click.command()
@click.argument("run_id", metavar="RUN")
@click.option("--force", is_flag=True, help="Resume even though the plan changed since the run.")
@click.option(
    "--no-verify", is_flag=True, help="Resume without checking what the targets reference."
)
@_window_options
@click.option(
    "--shard", metavar="K/N", callback=_shard, help="The shard to resume, for a sharded run."
)
@_target_run_options
async def resume(run_id: str, **options: Any) -> None:
    """Continue RUN (its id, or the start of one), killed or interrupted, to the end.

    The plan is read again with the run's selection and must not have changed (else exit
    2, naming what changed, unless --force: changed targets then start afresh). Under
    the run's id, finished targets keep their result, a deployment the run started is
    followed (never a second UpdateService), a registered revision is reused, a begun
    rollback is finished, and the failure budget and halt carry over. The plan's release
    windows and freezes apply as to a new run (exit 75 outside them). A sharded run is
    resumed one shard at a time (--shard K/N), each by its own runner.
    """
    from ecs_deploy_many.cli import runs as commands

    await commands.resume_run(run_id, options)


@click.command()
@click.argument("run_id", metavar="RUN")
@click.option("--reason", required=True, help="Why: in the rollback's logs, journal and reports.")
@click.option("--force", is_flag=True, help="Also put back services deployed again since the run.")
@_target_run_options
async def rollback(run_id: str, **options: Any) -> None:
    """Put every service RUN changed back on its revision from before the run.

    With its desired count and deployment percentages when the run changed them; newest
    wave first, side by side within the plan's limits, each rollback waited for. A
    service that moved on since the run is left alone (skipped) unless --force. The
    rollback is a journaled run of its own, at any time: the plan's release windows and
    freezes do not apply to it. Exit 0 when every service is back (or was left alone),
    1 when one could not be put back.
    """
    from ecs_deploy_many.cli import runs as commands

    await commands.roll_back_run(run_id, options)


@click.command()
@click.argument("run_id", metavar="RUN")
@click.argument("wave", metavar="WAVE")
@_journal_option
@click.option("--note", default="", metavar="TEXT", help="Why: recorded with the approval.")
async def approve(run_id: str, wave: str, journal: str | None, note: str) -> None:
    """Approve WAVE of RUN (its id, or the start of one): a run waiting for it starts the
    wave within 15 s (of its clock).

    The approval is recorded in the run's journal (--journal: the run's own, a directory
    or s3://bucket/prefix), once: approving again reports the first approval. Exit 0
    when approved (or already), 2 when there is no such run or wave, the wave asks for
    no approval, or the journal cannot be written.
    """
    from ecs_deploy_many.cli import gates

    await gates.approve(run_id, wave, journal, note)


@click.group()
async def lock() -> None:
    """Show or break the run lock a plan names (`lock:`)."""


@lock.command(name="status")
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False))
async def lock_status(plan_path: str) -> None:
    """Who holds PLAN's run lock, since when, and until when its lease runs: exit 0 when
    it is free, 73 when it is held."""
    from ecs_deploy_many.cli import fleet
    from ecs_deploy_many.cli import lock as locks

    await locks.lock_status(fleet.plan_or_exit(plan_path), plan_path)


@lock.command(name="break")
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False))
@click.option("--reason", required=True, help="Why: recorded with who broke it.")
async def lock_break(plan_path: str, reason: str) -> None:
    """Remove PLAN's run lock whoever holds it (when that run is gone). The holder, if
    still running, halts at its next heartbeat."""
    from ecs_deploy_many.cli import fleet
    from ecs_deploy_many.cli import lock as locks

    await locks.break_lock(fleet.plan_or_exit(plan_path), plan_path, reason)


cli.add_command(deploy)
cli.add_command(validate)
cli.add_command(init)
cli.add_command(verify)
cli.add_command(iam_policy)
cli.add_command(status)
cli.add_command(runs)
cli.add_command(resume)
cli.add_command(rollback)
cli.add_command(show)
cli.add_command(approve)
cli.add_command(lock)
cli.add_command(sim)


def main() -> None:
    """Console-script entry point; the process ends with the command it runs."""
    cli(obj=ProcessEnd())
