"""`ecs-deploy`: single-service mode, a drop-in for the original bash ecs-deploy.

Same flags, same environment fallbacks, same validation order and exit codes:
usage 3; validation 5 to 12; unparseable image 13; failure or timeout 1; success 0.
This module only turns flags into a ``Target`` and an outcome into an exit code.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import asyncclick as click
from rich.console import Console

from ecs_deploy_many import __version__
from ecs_deploy_many.aws.scope import AwsScope
from ecs_deploy_many.aws.session import ClientPool, StaticKeys
from ecs_deploy_many.cli.options import log_options, start_logging
from ecs_deploy_many.clock import Clock, real_clock
from ecs_deploy_many.deploy.images import resolve_image
from ecs_deploy_many.deploy.pipeline import RunContext, deploy_target
from ecs_deploy_many.deploy.result import Status, TargetResult
from ecs_deploy_many.deploy.shorthand import parse_network_configuration
from ecs_deploy_many.deploy.target import Target
from ecs_deploy_many.deploy.taskdef_file import read_task_definition_file
from ecs_deploy_many.errors import CredentialsError, EcsDeployError, ImageError, UsageError
from ecs_deploy_many.observe.events import fan_out
from ecs_deploy_many.observe.log import Redactor, log_observer, run_redactor
from ecs_deploy_many.observe.progress import ProgressView, show_progress
from ecs_deploy_many.observe.summary import summary_line

__all__ = ["build_target", "cli", "main", "run"]

EXIT_USAGE = 3
EXIT_IMAGE = 13
EXIT_INTERRUPTED = 130


def build_target(options: Mapping[str, Any], environ: Mapping[str, str]) -> Target:
    """Validate flags in the original's order and build the one target."""
    o = options
    if not o["service_name"] and not o["task_definition"]:
        raise UsageError(5, "one of -n/--service-name or -d/--task-definition is required")
    if o["service_name"] and o["task_definition"]:
        raise UsageError(6, "give only one of -n/--service-name and -d/--task-definition")
    if o["service_name"] and not o["cluster"]:
        raise UsageError(7, "-n/--service-name needs -c/--cluster")
    if not (o["image"] or o["tag_only"] or o["force_new_deployment"]):
        raise UsageError(8, "give -i/--image (or -to/--tag-only, or --force-new-deployment)")
    max_definitions = _max_definitions(o["max_definitions"])
    if not o["run_task"]:
        if o["launch_type"]:
            raise UsageError(10, "--launch-type is only valid with --run-task")
        if o["network_configuration"] or o["wait_for_success"]:
            raise UsageError(
                11, "--network-configuration and --wait-for-success are only valid with --run-task"
            )
        if o["platform_version"]:
            raise UsageError(12, "--platform-version is only valid with --run-task")
    elif not (o["task_definition"] and o["cluster"]):
        raise UsageError(EXIT_USAGE, "--run-task needs -d/--task-definition and -c/--cluster")

    image = None
    if o["image"] and not o["tag_only"]:
        try:
            image = resolve_image(o["image"], tag_env_var=o["tag_env_var"], environ=environ)
        except ImageError as error:
            raise UsageError(EXIT_IMAGE, str(error)) from None

    return Target(
        name=o["service_name"] or o["task_definition"],
        cluster=o["cluster"],
        service=o["service_name"],
        task_definition=o["task_definition"],
        image=image,
        tag_only=o["tag_only"],
        desired_count=o["desired_count"],
        min_healthy_percent=o["min"],
        max_percent=o["max"],
        timeout=float(o["timeout"]),
        rollback=o["enable_rollback"],
        use_latest_task_def=o["use_latest_task_def"],
        force_new_deployment=o["force_new_deployment"],
        skip_deployments_check=o["skip_deployments_check"],
        task_definition_body=_task_definition_file(o["task_definition_file"]),
        max_definitions=max_definitions,
        copy_task_definition_tags=o["copy_task_definition_tags"],
        run_task=o["run_task"],
        wait_for_success=o["wait_for_success"],
        launch_type=o["launch_type"],
        platform_version=o["platform_version"],
        network_configuration=_network_configuration(o["network_configuration"]),
        scope=AwsScope(
            region=o["region"],
            profile=None if o["aws_instance_profile"] else o["profile"],
            assume_role=o["aws_assume_role"],
            endpoint_url=o["endpoint_url"],
        ),
    )


def _max_definitions(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise UsageError(9, f"--max-definitions must be a whole number of 1 or more, got {value!r}")
    return int(value)


def _task_definition_file(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        return read_task_definition_file(path)
    except EcsDeployError as error:
        raise UsageError(EXIT_USAGE, f"--task-definition-file: {error}") from None


def _network_configuration(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        return parse_network_configuration(text)
    except ValueError as error:
        raise UsageError(EXIT_USAGE, f"--network-configuration: {error}") from None


def _static_keys(options: Mapping[str, Any], environ: Mapping[str, str]) -> StaticKeys | None:
    """Keys given as flags win; a flag may pair with the other half from the environment."""
    if not (options["aws_access_key"] or options["aws_secret_key"]):
        return None
    if options["aws_instance_profile"]:
        return None
    key_id = options["aws_access_key"] or environ.get("AWS_ACCESS_KEY_ID")
    secret = options["aws_secret_key"] or environ.get("AWS_SECRET_ACCESS_KEY")
    if not (key_id and secret):
        raise UsageError(EXIT_USAGE, "-k/--aws-access-key and -s/--aws-secret-key go together")
    return StaticKeys(key_id, secret, environ.get("AWS_SESSION_TOKEN"))


async def _deploy(
    target: Target,
    keys: StaticKeys | None,
    clock: Clock,
    *,
    verbose: bool,
    redactor: Redactor,
    console: Console | None,
) -> int:
    async with ClientPool(clock, keys=keys, verbose=verbose) as pool:
        try:
            await pool.gateway(target.scope)  # fail fast on missing region or credentials
        except CredentialsError as error:
            click.echo(f"ecs-deploy: {error}", err=True)
            return 1
        progress = ProgressView(1)
        context = RunContext(pool, clock, fan_out(log_observer(), progress), redactor=redactor)
        result = TargetResult(target)
        async with show_progress(progress, clock, console), anyio.create_task_group() as group:
            group.start_soon(_cancel_on_signal, group.cancel_scope)
            await deploy_target(target, context, result)
            group.cancel_scope.cancel()
    line = summary_line(result, redactor=redactor)
    click.echo(line, err=not result.status.ok)
    if result.status is Status.INTERRUPTED:
        return EXIT_INTERRUPTED
    return 0 if result.status.ok else 1


async def _cancel_on_signal(scope: anyio.CancelScope) -> None:
    """SIGINT or SIGTERM stops the deploy; the result says where it was left."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-k", "--aws-access-key", help="AWS access key id (else AWS_ACCESS_KEY_ID).")
@click.option("-s", "--aws-secret-key", help="AWS secret key (else AWS_SECRET_ACCESS_KEY).")
@click.option("-r", "--region", help="AWS region (else AWS_DEFAULT_REGION).")
@click.option("-p", "--profile", help="AWS profile (else AWS_PROFILE).")
@click.option("--aws-instance-profile", is_flag=True, help="Use the default credential chain.")
@click.option("-a", "--aws-assume-role", metavar="ARN", help="Assume this role for every call.")
@click.option("-c", "--cluster", help="ECS cluster.")
@click.option("-n", "--service-name", help="Service to deploy.")
@click.option("-d", "--task-definition", help="Task definition family to deploy (no service).")
@click.option("-i", "--image", help="New image, e.g. repo/app:1.2 (tag defaults to latest).")
@click.option(
    "-t",
    "--timeout",
    type=click.IntRange(min=1),
    default=90,
    show_default=True,
    help="Seconds to wait for the deployment.",
)
@click.option("-m", "--min", type=click.IntRange(0, 100), help="minimumHealthyPercent.")
@click.option("-M", "--max", type=click.IntRange(min=100), help="maximumPercent.")
@click.option("-D", "--desired-count", type=click.IntRange(min=0), help="Desired task count.")
@click.option("-e", "--tag-env-var", metavar="NAME", help="Take the image tag from $NAME.")
@click.option("-to", "--tag-only", metavar="TAG", help="Set TAG on every container's image.")
@click.option("--max-definitions", metavar="N", help="Keep only the newest N revisions.")
@click.option("--task-definition-file", metavar="PATH", help="Deploy this JSON definition.")
@click.option(
    "--enable-rollback", is_flag=True, help="Roll back to the previous revision on failure."
)
@click.option(
    "--use-latest-task-def", is_flag=True, help="Start from the family's newest revision."
)
@click.option("--force-new-deployment", is_flag=True, help="Replace every task.")
@click.option("--skip-deployments-check", is_flag=True, help="Do not wait for old tasks to drain.")
@click.option("--run-task", is_flag=True, help="Run the new task definition once (with -d).")
@click.option("--wait-for-success", is_flag=True, help="Wait for the task to exit 0.")
@click.option("--launch-type", help="RunTask launch type (FARGATE, EC2, EXTERNAL).")
@click.option("--platform-version", help="RunTask Fargate platform version.")
@click.option("--network-configuration", help="RunTask network configuration (shorthand or JSON).")
@click.option("--copy-task-definition-tags", is_flag=True, help="Copy tags to the new revision.")
@click.option("--endpoint-url", metavar="URL", help="ECS endpoint (e.g. the local simulator).")
@log_options
@click.version_option(__version__, prog_name="ecs-deploy", message="%(prog)s %(version)s")
async def cli(**options: Any) -> int:
    """Deploy one ECS service or task definition (the original ecs-deploy's flags)."""
    environ = os.environ
    target = build_target(options, environ)
    keys = _static_keys(options, environ)
    redactor = run_redactor(
        environ,
        definitions=[target.task_definition_body] if target.task_definition_body else [],
        keys=[keys.secret_access_key, keys.session_token or ""] if keys else [],
    )
    console = start_logging(options, redactor)
    clock = click.get_current_context().obj or real_clock()
    return await _deploy(
        target, keys, clock, verbose=options["verbose"], redactor=redactor, console=console
    )


async def run(argv: Sequence[str], *, clock: Clock | None = None) -> int:
    """Run with ``argv`` and return the exit code; ``clock`` lets a rehearsal go faster."""
    if not argv:
        click.echo(cli.get_usage(click.Context(cli, info_name="ecs-deploy")), err=True)
        return EXIT_USAGE
    try:
        code = await cli.main(list(argv), "ecs-deploy", standalone_mode=False, obj=clock)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.UsageError as error:
        error.show()
        return EXIT_USAGE
    except UsageError as refusal:
        click.echo(f"ecs-deploy: {refusal}", err=True)
        return refusal.exit_code
    except click.Abort:
        return EXIT_INTERRUPTED
    return code if isinstance(code, int) else 0


def main() -> None:
    """Console-script entry point."""
    try:
        sys.exit(anyio.run(run, sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
