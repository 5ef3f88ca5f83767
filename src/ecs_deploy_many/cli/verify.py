"""`ecs-deploy-many verify PLAN`, and the same checks before a run (``--no-verify`` skips).

The checks are ``deploy.verify``'s, on the definitions the dry run renders. Before a run
they come after the plan is loaded, the schedule allows the run and the lock is held,
and before the first change: a run where something is missing deploys nothing and exits
2. A thing that could not be checked is a warning: the run goes on, since a deploy
role often may not read secrets or roles.

Where the services are: each is asked through the SDK's own endpoint settings. When
ECS is at an endpoint URL (a simulator), a service with no endpoint of its own
(``AWS_ENDPOINT_URL_<SERVICE>`` or ``AWS_ENDPOINT_URL``) is not asked: real AWS would
be asked about a simulated fleet. A rehearsal (``--simulate``) checks nothing and says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import asyncclick as click

from ecs_deploy_many.aws.session import ClientPool
from ecs_deploy_many.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_PLAN
from ecs_deploy_many.cli.options import say, start_logging
from ecs_deploy_many.cli.signals import HeldSignals, ProcessEnd, cancel_on_signal
from ecs_deploy_many.cli.where import Where, connected, where_of
from ecs_deploy_many.core.redact import Redactor, run_redactor
from ecs_deploy_many.deploy.dryrun import TargetPreview, preview_plan
from ecs_deploy_many.deploy.verify import (
    SERVICES,
    Service,
    TargetVerification,
    Verification,
    format_verification,
    verify_previews,
)

__all__ = ["REHEARSAL_NOTE", "verify", "verify_before_run"]

REHEARSAL_NOTE = (
    "verify: images, secrets, roles and log groups are not checked against the simulator"
)
_ENDPOINT_VARIABLES: Mapping[Service, str] = {
    "ecr": "AWS_ENDPOINT_URL_ECR",
    "secretsmanager": "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "ssm": "AWS_ENDPOINT_URL_SSM",
    "iam": "AWS_ENDPOINT_URL_IAM",
    "logs": "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
}


def skipped_services(where: Where, environ: Mapping[str, str]) -> dict[Service, str]:
    """The services not to ask, with why: those without an endpoint of their own while
    ECS is at an endpoint URL."""
    ecs = where.endpoint_url or environ.get("AWS_ENDPOINT_URL_ECS")
    if not ecs or environ.get("AWS_ENDPOINT_URL"):
        return {}
    why = f"ECS is at {ecs} and these have no endpoint of their own: AWS_ENDPOINT_URL_<SERVICE>"
    return {
        service: why
        for service, variable in _ENDPOINT_VARIABLES.items()
        if not environ.get(variable)
    }


async def check_previews(
    where: Where, pool: ClientPool, previews: Sequence[TargetPreview]
) -> Verification:
    """``deploy.verify`` on ``previews``, each target in its own scope."""
    scopes = {target.name: target.scope for target in where.plan.targets}
    return await verify_previews(
        previews, scopes, pool, skipped=skipped_services(where, os.environ)
    )


async def verify_before_run(
    where: Where, pool: ClientPool, redactor: Redactor, previews: Sequence[TargetPreview]
) -> str | None:
    """Check the run's targets; say what is missing or unchecked. None when the run may
    go on, else why it deploys nothing."""
    verification = await check_previews(where, pool, previews)
    text = format_verification(verification, redactor)
    if verification.problems:
        say(text)
        missing = sum(len(t.missing) for t in verification.targets)
        refused = sum(t.refused for t in verification.targets)
        found = [f"{missing} missing"] * bool(missing) + [f"{refused} refused"] * bool(refused)
        failing = [t.name for t in verification.targets if t.missing or t.refused]
        return (
            f"nothing was deployed: verify found {' and '.join(found)} in "
            f"{len(failing)} target{'s' * (len(failing) != 1)} ({', '.join(failing[:3])}"
            f"{', ...' if len(failing) > 3 else ''}); --no-verify deploys anyway"
        )
    warnings = [t for t in verification.targets if t.unchecked]
    if warnings or verification.skipped:
        say(text)
    return None


async def verify(plan_path: str, options: dict[str, Any]) -> None:
    """``ecs-deploy-many verify``: check, per target, what the plan's definitions
    reference; exit 0 when nothing is missing, 2 when something is, 1 when a target
    could not be read."""
    from ecs_deploy_many.cli.discovery import expanded_or_exit
    from ecs_deploy_many.cli.fleet import plan_or_exit

    plan = plan_or_exit(plan_path, options["only"], options["exclude"], "skip")
    where = where_of(plan, {"simulate": False, "speed": None, **options})
    where = await expanded_or_exit(where, plan_path, {**options, "dependencies": "skip"})
    plan = where.plan
    redactor = run_redactor(os.environ, targets=plan.targets)
    start_logging(options, redactor, where.clock)
    verification: Verification | None = None
    until_exit = isinstance(click.get_current_context().obj, ProcessEnd)
    with HeldSignals(until_exit=until_exit) as signals:
        async with (
            connected(where, verbose=options["verbose"]) as pool,
            anyio.create_task_group() as group,
        ):
            group.start_soon(cancel_on_signal, signals, group.cancel_scope, "verify")
            previews = await preview_plan(
                plan, pool, max_parallel=plan.max_parallel, redactor=redactor
            )
            verification = await check_previews(where, pool, previews)
            group.cancel_scope.cancel()
    if verification is None:
        click.echo("interrupted: verify stopped before checking every target", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED)
    click.echo(format_verification(verification, redactor))
    if options["report_path"]:
        _write_report(options["report_path"], plan_path, verification, redactor)
    if verification.problems:
        code = EXIT_PLAN
    elif any(t.error for t in verification.targets):
        code = EXIT_FAILED
    else:
        code = 0
    raise click.exceptions.Exit(code)


def _write_report(
    path: Path, plan_path: str, verification: Verification, redactor: Redactor
) -> None:
    """The findings as JSON: per target, each thing missing, not checked or created."""

    def entries(pairs: Any) -> list[dict[str, str]]:
        return [
            {"kind": reference.kind, "reference": reference.shown, "detail": finding.detail}
            for reference, finding in pairs
        ]

    report = {
        "plan": plan_path,
        "missing": sum(len(target.missing) for target in verification.targets),
        "refused": sum(target.refused for target in verification.targets),
        "checked": verification.calls,
        "not_checked_services": {SERVICES[s]: why for s, why in verification.skipped.items()},
        "targets": [
            {
                "name": target.name,
                "verdict": _verdict(target),
                "error": target.error,
                "missing": entries(target.missing),
                "not_checked": entries(target.unchecked),
                "created": [reference.shown for reference in target.created],
                "found": len(target.found),
            }
            for target in verification.targets
        ],
    }
    try:
        Path(path).write_text(json.dumps(redactor.scrub(report), indent=2) + "\n")
    except OSError as error:
        click.echo(f"error: cannot write the report to {path}: {error.strerror}", err=True)
        raise click.exceptions.Exit(EXIT_FAILED) from None


def _verdict(target: TargetVerification) -> str:
    if target.refused:
        return "refused"
    return "error" if target.error else "missing" if target.missing else "ok"
