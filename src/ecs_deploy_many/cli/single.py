"""`ecs-deploy`: single-service mode, a drop-in for the original bash ecs-deploy.

Same flags, same environment fallbacks, same validation order and exit codes:
usage 3; validation 5 to 12; unparseable image or tag 13; failure or timeout 1;
interrupted 130; success 0. This module only turns flags into a ``Target`` and an
outcome into an exit code. ``--version`` and ``--help`` need nothing more than the flags:
the AWS SDK, the pipeline and the outputs are imported when a deploy begins.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import asyncclick as click

from ecs_deploy_many import __version__
from ecs_deploy_many.cli.completion import completion_requested
from ecs_deploy_many.cli.options import log_options, start_logging, stop_deployments_option
from ecs_deploy_many.core.clock import Clock, real_clock
from ecs_deploy_many.core.endpoints import endpoint_url_problem, region_problem
from ecs_deploy_many.core.errors import CredentialsError, EcsDeployError, ImageError, UsageError
from ecs_deploy_many.core.images import resolve_image, tag_problem
from ecs_deploy_many.core.quotas import MAX_TASKS_PER_SERVICE
from ecs_deploy_many.core.result import Status, TargetResult
from ecs_deploy_many.core.scope import AwsScope
from ecs_deploy_many.core.target import ContainerEdits, Target, TaskEdits

if TYPE_CHECKING:
    from rich.console import Console

    from ecs_deploy_many.aws.session import StaticKeys
    from ecs_deploy_many.core.redact import Redactor

__all__ = ["build_target", "cli", "main", "run"]

EXIT_USAGE = 3
EXIT_MAX_DEFINITIONS = 9
EXIT_IMAGE = 13
EXIT_INTERRUPTED = 130
# More revisions than any family holds in practice: a bound, so the number stays a number.
MAX_DEFINITIONS = 1_000_000


def build_target(options: Mapping[str, Any], environ: Mapping[str, str]) -> Target:
    """Validate flags in the original's order and build the one target."""
    o = options
    if not o["service_name"] and not o["task_definition"]:
        raise UsageError(5, "one of -n/--service-name or -d/--task-definition is required")
    if o["service_name"] and o["task_definition"]:
        raise UsageError(6, "give only one of -n/--service-name and -d/--task-definition")
    if o["service_name"] and not o["cluster"]:
        raise UsageError(7, "-n/--service-name needs -c/--cluster")
    edits = task_edits(o)
    if not (o["image"] or o["tag_only"] or o["force_new_deployment"] or edits):
        raise UsageError(
            8, "give -i/--image (or -to/--tag-only, --force-new-deployment, or an edit: --env ...)"
        )
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
    if o["tag_only"] is not None and (problem := tag_problem(o["tag_only"])):
        raise UsageError(EXIT_IMAGE, f"-to/--tag-only: {problem}")
    if o["image"] and not o["tag_only"]:
        try:
            image = resolve_image(o["image"], tag_env_var=o["tag_env_var"], environ=environ)
        except ImageError as error:
            raise UsageError(EXIT_IMAGE, str(error)) from None
    # Empty counts as not given (CI templates pass "$VAR"): the environment decides.
    if o["region"] and (problem := region_problem(o["region"])):
        raise UsageError(EXIT_USAGE, f"-r/--region: {problem}")
    if o["endpoint_url"] and (problem := endpoint_url_problem(o["endpoint_url"])):
        raise UsageError(EXIT_USAGE, f"--endpoint-url: {problem}")

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
        edits=edits,
        scope=AwsScope(
            region=o["region"] or None,
            profile=None if o["aws_instance_profile"] else o["profile"],
            assume_role=o["aws_assume_role"],
            endpoint_url=o["endpoint_url"] or None,
        ),
    )


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ROLE = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/\S+|[\w+=,.@/-]{1,512}")


def task_edits(o: Mapping[str, Any]) -> TaskEdits:
    """The edit flags (``--env app KEY=VALUE`` ...) as the target's task-definition edits."""
    per: dict[str, dict[str, Any]] = {}

    def container(name: str) -> dict[str, Any]:
        return per.setdefault(
            name, {"environment": {}, "secrets": {}, "docker_labels": {}, "ulimits": {}}
        )

    for flag, key in (
        ("env", "environment"),
        ("secret", "secrets"),
        ("docker_label", "docker_labels"),
    ):
        for name, assignment in o[flag]:
            variable, value = _assignment(f"--{flag.replace('_', '-')}", name, assignment)
            container(name)[key][variable] = value
    for flag, key in (("unset_env", "environment"), ("unset_secret", "secrets")):
        for name, variable in o[flag]:
            container(name)[key][_env_name(f"--{flag.replace('_', '-')}", name, variable)] = None
    for flag, key in (("command", "command"), ("entry_point", "entry_point")):
        for name, text in o[flag]:
            container(name)[key] = _words(f"--{flag.replace('_', '-')}", name, text)
    for flag, key in (
        ("container_cpu", "cpu"),
        ("container_memory", "memory"),
        ("container_memory_reservation", "memory_reservation"),
    ):
        for name, size in o[flag]:
            container(name)[key] = size
    sizes = {kind: _task_size(o, kind) for kind in ("cpu", "memory")}
    for flag in ("task_role", "execution_role"):
        if o[flag] is not None and not _ROLE.fullmatch(o[flag]):
            raise UsageError(
                EXIT_USAGE,
                f"--{flag.replace('_', '-')}: expected a role ARN "
                f"(arn:aws:iam::123456789012:role/name) or a role name, got {o[flag]!r}",
            )
    return TaskEdits(
        containers={name: ContainerEdits(**edits) for name, edits in per.items()},
        cpu=sizes["cpu"],
        memory=sizes["memory"],
        task_role=o["task_role"],
        execution_role=o["execution_role"],
        exclusive_environment=o["exclusive_env"],
        exclusive_secrets=o["exclusive_secrets"],
    )


def _task_size(o: Mapping[str, Any], kind: str) -> str | None:
    given = o[f"task_{kind}"]
    if given is None:
        return None
    from ecs_deploy_many.core.ecs_api import task_size, task_size_rule  # botocore's model

    size = task_size(given, kind)
    if size is None:
        raise UsageError(
            EXIT_USAGE, f"--task-{kind}: expected {task_size_rule(kind)}, got {given!r}"
        )
    return size


def _env_name(flag: str, container: str, name: str) -> str:
    if not _ENV_NAME.fullmatch(name):
        raise UsageError(
            EXIT_USAGE,
            f"{flag} {container} {name!r}: a variable name is letters, digits and _, "
            "not starting with a digit",
        )
    return name


def _assignment(flag: str, container: str, text: str) -> tuple[str, str]:
    """``KEY=VALUE``; the value is never quoted back (it may be a secret)."""
    name, equals, value = text.partition("=")
    if not equals:
        raise UsageError(
            EXIT_USAGE, f"{flag} {container} ...: expected KEY=VALUE (value not shown)"
        )
    return _env_name(flag, container, name), value


def _words(flag: str, container: str, text: str) -> tuple[str, ...]:
    try:
        words = tuple(shlex.split(text))
    except ValueError as error:
        raise UsageError(EXIT_USAGE, f"{flag} {container}: {error}") from None
    if not words:
        raise UsageError(EXIT_USAGE, f"{flag} {container}: give the command, not an empty string")
    return words


def _max_definitions(value: str | None) -> int | None:
    """How many revisions to keep; 0 keeps them all, as in the original (no clean-up)."""
    if value is None:
        return None
    digits = value.strip()
    if not re.fullmatch(r"[0-9]{1,7}", digits) or int(digits) > MAX_DEFINITIONS:
        shown = value if len(value) <= 20 else f"{value[:20]}... ({len(value)} characters)"
        raise UsageError(
            EXIT_MAX_DEFINITIONS,
            f"--max-definitions must be a whole number from 0 to {MAX_DEFINITIONS} "
            f"(0 keeps every revision), got {shown!r}",
        )
    return int(digits) or None


def _task_definition_file(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    from ecs_deploy_many.plan.taskdef_file import read_task_definition_file  # botocore's model

    try:
        return read_task_definition_file(path)
    except EcsDeployError as error:
        raise UsageError(EXIT_USAGE, f"--task-definition-file: {error}") from None


def _network_configuration(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    from ecs_deploy_many.deploy.shorthand import parse_network_configuration  # botocore's model

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
    from ecs_deploy_many.aws.session import StaticKeys

    key_id = options["aws_access_key"] or environ.get("AWS_ACCESS_KEY_ID")
    secret = options["aws_secret_key"] or environ.get("AWS_SECRET_ACCESS_KEY")
    if not (key_id and secret):
        raise UsageError(EXIT_USAGE, "-k/--aws-access-key and -s/--aws-secret-key go together")
    return StaticKeys(key_id, secret, environ.get("AWS_SESSION_TOKEN"))


@dataclass(frozen=True)
class _Invocation:
    """What the caller of ``run`` says about this run (the click context's object)."""

    clock: Clock | None = None
    """A rehearsal's faster clock; None: real time."""
    process_ends: bool = False
    """The process ends with the command (the console script)."""


async def _deploy(
    target: Target,
    keys: StaticKeys | None,
    clock: Clock,
    *,
    verbose: bool,
    redactor: Redactor,
    console: Console | None,
    process_ends: bool,
    stop_deployments_on_interrupt: bool = False,
) -> int:
    from ecs_deploy_many.aws.session import ClientPool, Hints
    from ecs_deploy_many.cli.signals import HeldSignals, cancel_on_signal
    from ecs_deploy_many.core.events import fan_out
    from ecs_deploy_many.deploy.pipeline import RunContext, deploy_target
    from ecs_deploy_many.observe.log import log_observer
    from ecs_deploy_many.observe.progress import ProgressView, show_progress
    from ecs_deploy_many.observe.summary import summary_line

    # Where this command's users name a region, a profile or keys.
    hints = Hints(
        region="pass -r/--region",
        credentials="pass -p/--profile or -k/-s",
        profile="-p/--profile",
    )
    result = TargetResult(target)
    # The first SIGINT or SIGTERM stops the deploy; later ones are absorbed while it stops
    # and the clients close, and none cuts the last line.
    with HeldSignals(until_exit=process_ends) as signals:
        async with ClientPool(clock, keys=keys, verbose=verbose, hints=hints) as pool:
            refused: CredentialsError | None = None
            stop = anyio.CancelScope()
            async with anyio.create_task_group() as group:
                group.start_soon(cancel_on_signal, signals, stop, "the deploy")
                with stop:
                    try:
                        await pool.gateway(target.scope)  # fail fast: no region or credentials
                    except CredentialsError as error:
                        refused = error
                    else:
                        progress = ProgressView(1)
                        observe = fan_out(log_observer(), progress)
                        context = RunContext(
                            pool,
                            clock,
                            observe,
                            redactor=redactor,
                            stop_deployments_on_interrupt=stop_deployments_on_interrupt,
                        )
                        async with show_progress(progress, clock, console):
                            await deploy_target(target, context, result)
                group.cancel_scope.cancel()
        if refused is not None:
            click.echo(f"ecs-deploy: {refused}", err=True)
            return 1
        if result.status is Status.INTERRUPTED and result.error is None:
            result.error = "interrupted before the deploy began"
        click.echo(summary_line(result, redactor=redactor), err=not result.status.ok)
    if result.status is Status.INTERRUPTED:
        return EXIT_INTERRUPTED
    return 0 if result.status.ok else 1


F = TypeVar("F", bound=Callable[..., Any])


def _per_container(flag: str, metavar: str, help: str, kind: Any = str) -> Callable[[F], F]:
    """A flag given once per change: ``--env app KEY=VALUE --env worker KEY=VALUE``."""
    return click.option(flag, type=(str, kind), metavar=metavar, multiple=True, help=help)


def edit_options(command: F) -> F:
    """Flags that change the new revision besides its images (fabfuel's ``ecs deploy``
    has the same, with short names the original ecs-deploy uses for other things)."""
    options = [
        _per_container("--env", "CONTAINER KEY=VALUE", "Set a variable."),
        _per_container("--unset-env", "CONTAINER KEY", "Remove a variable."),
        _per_container(
            "--secret", "CONTAINER KEY=ARN", "Set a secret (Secrets Manager or SSM ARN or name)."
        ),
        _per_container("--unset-secret", "CONTAINER KEY", "Remove a secret."),
        click.option(
            "--exclusive-env",
            is_flag=True,
            help="The --env variables become a container's whole environment.",
        ),
        click.option(
            "--exclusive-secrets",
            is_flag=True,
            help="The --secret secrets become all of a container's secrets.",
        ),
        _per_container("--command", "CONTAINER CMD", "Set the command (split like a shell)."),
        _per_container("--entry-point", "CONTAINER CMD", "Set the entry point."),
        _per_container("--docker-label", "CONTAINER KEY=VALUE", "Set a docker label."),
        _per_container(
            "--container-cpu", "CONTAINER UNITS", "A container's cpu units.", click.IntRange(0)
        ),
        _per_container(
            "--container-memory", "CONTAINER MIB", "A container's memory.", click.IntRange(6)
        ),
        _per_container(
            "--container-memory-reservation",
            "CONTAINER MIB",
            "A container's memory reservation.",
            click.IntRange(6),
        ),
        click.option("--task-cpu", metavar="UNITS", help="The task's cpu (256, '1 vCPU')."),
        click.option("--task-memory", metavar="MIB", help="The task's memory (512, '1 GB')."),
        click.option("--task-role", metavar="ARN|NAME", help="The task role."),
        click.option("--execution-role", metavar="ARN|NAME", help="The task execution role."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


# The original's image notes and examples; "\b" keeps click from rewrapping a paragraph.
EPILOG = """\
\b
Image format: [domain[:port]/][repo/...]image[:tag|@sha256:digest]
  e.g. mariadb, mariadb:latest, silintl/mariadb, silintl/mariadb:latest,
  private.registry.com:8000/repo/image:tag
Containers whose image has the same repository get the new image (the
registry may differ). Without a tag or digest, the tag is the value of $NAME
with -e NAME, else "latest"; an explicit tag is never overridden. -to TAG
gives every container's image the tag TAG and keeps its repository (-i is
then ignored; by convention -i ignore). The image is never evaluated: let
the shell expand it, as in -i "repo/app:$(git describe)".

\b
Examples:
  Deploy a service (AWS settings from the environment):
    ecs-deploy -c production1 -n doorman-service \\
      -i docker.repo.com/doorman:latest
  All options:
    ecs-deploy -k ABC123 -s SECRETKEY -r us-east-1 -c production1 \\
      -n doorman-service -i docker.repo.com/doorman -m 50 -M 100 -t 240 \\
      -D 2 -e CI_TIMESTAMP -v
  Update a task definition with a new image:
    ecs-deploy -d open-door-task -i docker.repo.com/doorman:17
  Use a profile (for STS delegated credentials, for instance):
    ecs-deploy -p PROFILE -c production1 -n doorman-service \\
      -i docker.repo.com/doorman -t 240 -e CI_TIMESTAMP -v
  Update just the tag of every image in the task (multi-container tasks):
    ecs-deploy -c staging -n core-service -to 0.1.899 -i ignore
  Run a one-off task with the new image and wait for it to exit 0:
    ecs-deploy -c production1 -d migrate -i docker.repo.com/app:17 \\
      --run-task --wait-for-success

\b
Exit codes: 0 success; 1 the deploy failed, timed out or was rolled back;
3 usage; 5-12 invalid flags (the message names the flag); 13 the image or
tag cannot be parsed; 130 interrupted by SIGINT or SIGTERM.
"""


@click.command(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.option("-k", "--aws-access-key", help="AWS access key id (else AWS_ACCESS_KEY_ID).")
@click.option("-s", "--aws-secret-key", help="AWS secret key (else AWS_SECRET_ACCESS_KEY).")
@click.option("-r", "--region", help="AWS region (else AWS_REGION, AWS_DEFAULT_REGION).")
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
@click.option(
    "-D",
    "--desired-count",
    type=click.IntRange(0, MAX_TASKS_PER_SERVICE),
    help=f"Desired task count (ECS runs at most {MAX_TASKS_PER_SERVICE:,} per service).",
)
@click.option("-e", "--tag-env-var", metavar="NAME", help="Take the image tag from $NAME.")
@click.option("-to", "--tag-only", metavar="TAG", help="Set TAG on every container's image.")
@click.option(
    "--max-definitions", metavar="N", help="Keep only the newest N revisions (0: keep all)."
)
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
@click.option(
    "--print-iam-policy",
    is_flag=False,
    flag_value="",
    metavar="[ACCOUNT]",
    help="Print the IAM policy (JSON) this deploy needs, scoped to ACCOUNT (default: any "
    "account, or the one of -a), and exit without calling AWS.",
)
@edit_options
@stop_deployments_option
@log_options
@click.version_option(__version__, prog_name="ecs-deploy", message="%(prog)s %(version)s")
async def cli(**options: Any) -> int:
    """Deploy one ECS service or task definition (the original ecs-deploy's flags)."""
    from ecs_deploy_many.core.redact import run_redactor

    environ = os.environ
    target = build_target(options, environ)
    if options["print_iam_policy"] is not None:
        _print_iam_policy(target, options)
        return 0
    keys = _static_keys(options, environ)
    redactor = run_redactor(
        environ,
        targets=[target],
        keys=[keys.secret_access_key, keys.session_token or ""] if keys else [],
    )
    invocation: _Invocation = click.get_current_context().obj or _Invocation()
    clock = invocation.clock or real_clock()
    console = start_logging(options, redactor, clock)
    return await _deploy(
        target,
        keys,
        clock,
        verbose=options["verbose"],
        redactor=redactor,
        console=console,
        process_ends=invocation.process_ends,
        stop_deployments_on_interrupt=options["stop_deployments_on_interrupt"],
    )


def _print_iam_policy(target: Target, options: Mapping[str, Any]) -> None:
    """The policy of ``--print-iam-policy``: single-service mode verifies nothing and
    journals nothing, so only the target's own calls."""
    from ecs_deploy_many.cli.iam_policy import print_policy
    from ecs_deploy_many.deploy.iam_policy import PolicyInputs

    inputs = PolicyInputs(
        account=options["print_iam_policy"] or None,
        verify=False,
        pin_digests=False,
        stop_deployments=options["stop_deployments_on_interrupt"],
    )
    print_policy(None, [target], inputs)


async def run(
    argv: Sequence[str], *, clock: Clock | None = None, process_ends: bool = False
) -> int:
    """Run with ``argv`` and return the exit code; ``clock`` lets a rehearsal go faster.

    ``process_ends``: the process ends with this run, so signals stay held to the end.
    No arguments at all print the whole help, as the original's usage did, and exit 3;
    but the shell asks for completions with none, so click answers those.
    """
    if not argv and not completion_requested("ecs-deploy"):
        click.echo(cli.get_help(click.Context(cli, info_name="ecs-deploy")), err=True)
        return EXIT_USAGE
    invocation = _Invocation(clock, process_ends)
    try:
        code = await cli.main(list(argv), "ecs-deploy", standalone_mode=False, obj=invocation)
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
    """Console-script entry point.

    While a deploy runs, SIGINT and SIGTERM stop it (it says where, exits 130) and stay
    held until the process exits, so a late one never cuts the last line. Before it, a
    Ctrl-C while the flags are read exits 130 too.
    """
    try:
        sys.exit(anyio.run(partial(run, sys.argv[1:], process_ends=True)))
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
