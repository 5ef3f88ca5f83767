"""`ecs-deploy-many init`: a plan written from the services running now.

One target per ACTIVE service of the clusters (names or globs), named ``cluster/service``
as any listed target, deploying the images its containers run now: ``image:`` for a
one-container task definition, ``containers:`` by name otherwise. Deploying that plan as
written changes nothing (its dry run says every target is ``unchanged``); a release edits
an image or a tag. The services are found by the same batched reads as a plan's
``select:`` targets (``deploy.discover``).

What the plan cannot say as it runs is left out and said in the header: a service under
the CODE_DEPLOY or EXTERNAL deployment controller (a deploy refuses it), a container
whose image names no repository. An image without tag or digest is written with
``:latest`` (what ECS pulls for it), so its first deploy registers that tag explicitly.
``images: {pin_digests: false}``: with pinning on, the first run would redeploy every
service running an Amazon ECR image by tag, to the same image by its digest.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncclick as click
import yaml

from ecs_deploy_many import __version__
from ecs_deploy_many.aws.session import ClientPool, Hints
from ecs_deploy_many.cli.exits import EXIT_FAILED, EXIT_PLAN
from ecs_deploy_many.cli.options import count, say, start_logging
from ecs_deploy_many.core.clock import real_clock, utc_iso
from ecs_deploy_many.core.errors import AwsError, CredentialsError, ImageError
from ecs_deploy_many.core.images import parse_image
from ecs_deploy_many.core.redact import Redactor
from ecs_deploy_many.core.scope import AwsScope
from ecs_deploy_many.deploy.discover import FIND_DEADLINE, FoundService, find_services

__all__ = ["init", "plan_text"]


async def init(options: dict[str, Any]) -> None:
    """Find the services, write the plan; exit 2 before any call when the output exists."""
    output: Path | None = options["output"]
    _refuse_overwrite(output, force=options["force"])
    clock = real_clock()
    start_logging(options, Redactor(), clock)
    region = (
        options["region"] or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    )
    scope = AwsScope(region, options["profile"])
    hints = Hints(region="pass --region", profile="--profile")
    problem: str | None = None
    async with ClientPool(
        clock, endpoint_url=options["endpoint_url"], verbose=options["verbose"], hints=hints
    ) as pool:
        # Caught inside the pool, whose task group would wrap the error in a group.
        try:
            with clock.fail_after(FIND_DEADLINE):
                services = await find_services(await pool.gateway(scope), options["clusters"])
        except (AwsError, CredentialsError) as error:
            problem = f"cannot read the services: {error}"
        except TimeoutError:
            problem = f"ECS did not answer within {FIND_DEADLINE:g} s"
    if problem is not None:
        click.echo(f"error: {problem}", err=True)
        raise click.exceptions.Exit(EXIT_FAILED)
    where = f"clusters {', '.join(options['clusters'])}"
    if not any(service.controller == "ECS" for service in services):
        click.echo(f"error: no service to deploy found in {where}", err=True)
        raise click.exceptions.Exit(EXIT_PLAN)
    origin = where + (f" in {region}" if region else "")
    origin += f", profile {options['profile']}" if options["profile"] else ""
    origin += f", at {options['endpoint_url']}" if options["endpoint_url"] else ""
    text = plan_text(services, origin, utc_iso(clock.now()), region, options["profile"])
    if output is None:
        click.echo(text, nl=False)
        return
    _write(output, text)
    say(f"{output}: {count(services, 'service')} of {where}")


def _refuse_overwrite(output: Path | None, *, force: bool) -> None:
    if output is not None and output.exists() and not force:
        click.echo(f"error: {output} exists: pass --force to overwrite it", err=True)
        raise click.exceptions.Exit(EXIT_PLAN)


def _write(output: Path, text: str) -> None:
    try:
        output.write_text(text)
    except OSError as error:
        click.echo(f"error: cannot write {output}: {error.strerror or error}", err=True)
        raise click.exceptions.Exit(EXIT_FAILED) from None


def plan_text(
    services: Sequence[FoundService],
    origin: str,
    written_at: str,
    region: str | None,
    profile: str | None,
) -> str:
    """The plan for ``services`` as YAML, its header saying when and from where."""
    notes: list[str] = []
    targets = []
    for service in services:
        where = f"{service.cluster}/{service.name}"
        if service.controller != "ECS":
            notes.append(f"{where}: left out: deployment controller {service.controller}")
            continue
        images: dict[str, str] = {}
        for container, image in service.containers:
            written = _written_image(image)
            if written is None:
                notes.append(f"{where}: container {container} left out: image {image!r}")
                continue
            if written != image:
                notes.append(f"{where}: container {container} runs {image}, written {written}")
            images[container] = written
        if not images:
            notes.append(f"{where}: left out: no container image to deploy")
            continue
        target: dict[str, Any] = {"cluster": service.cluster, "service": service.name}
        if len(service.containers) == 1:
            target["image"] = next(iter(images.values()))
        else:
            target["containers"] = images
        targets.append(target)
    defaults = {key: value for key, value in (("region", region), ("profile", profile)) if value}
    plan: dict[str, Any] = {"version": 1}
    if defaults:
        plan["defaults"] = defaults
    plan["images"] = {"pin_digests": False}
    plan["targets"] = targets
    header = [
        f"Written by ecs-deploy-many init {__version__} at {written_at}",
        f"from the ACTIVE services of {origin}: {count(targets, 'target')}.",
        "Each target deploys the images its service runs now (a dry run changes nothing):",
        "edit an image or tag to release it.",
        "pin_digests is off: on, the first run would redeploy each service running an",
        "Amazon ECR image by tag, to the same image by digest.",
        *notes,
    ]
    body = yaml.safe_dump(plan, sort_keys=False, default_flow_style=False, width=100)
    return "".join(f"# {line}\n" for line in header) + body


def _written_image(image: str) -> str | None:
    """``image`` as a plan deploys it unchanged: with ``:latest`` when it has no tag or
    digest; None when it names no repository a plan can give."""
    try:
        ref = parse_image(image)
    except ImageError:
        return None
    if ref.tag is None and ref.digest is None:
        return f"{image}:latest"
    return image
