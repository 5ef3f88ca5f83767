"""A dry run and ``status``: what deploying each target would change, found by reading alone.

A preview resolves the base revision and renders the new one with the pipeline's own
functions, so it predicts the deploy rather than imitating it, then compares the result
with the revision in use now. It calls only DescribeServices and DescribeTaskDefinition:
it is safe to run against production at any time. No secret appears in a preview: every
place a task definition holds one (``replace_task_definition_secrets``) shows ``***1``,
``***2``... in both revisions, equal numbers for equal values, so a change still shows,
and errors are masked like every other output. A service whose revision would not change
but whose deployment is not steady says what the deploy would do: wait for a deployment
still in progress, or deploy again after one that failed. ``status`` shows the same
reading the other way round: what runs now (revision, images, how its deployment
stands), then what the plan would change.

Each service also says how ECS deploys it, when that is not the ECS controller's rolling
update without alarms: its strategy (BLUE_GREEN, LINEAR, CANARY, with the bake time) and
deployment alarms; a service under the CODE_DEPLOY or EXTERNAL controller ``will be
refused`` (``deploy.strategy``), as the deploy refuses it before changing anything.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import anyio

from ecs_deploy_many.aws.gateway import Gateway, TaskDefinition
from ecs_deploy_many.core.errors import AwsError, DeployError, EcsDeployError
from ecs_deploy_many.core.redact import (
    MASK,
    Redactor,
    replace_task_definition_secrets,
    task_definition_secrets,
)
from ecs_deploy_many.core.target import Target, TargetKind
from ecs_deploy_many.deploy.pipeline import (
    Accounts,
    base_definition,
    describe_target_service,
    registers_revision,
    render_revision,
)
from ecs_deploy_many.deploy.steps import primary_deployment
from ecs_deploy_many.deploy.strategy import (
    controller_of,
    deployed_by,
    is_default,
    refuse_foreign_controller,
)
from ecs_deploy_many.deploy.taskdef import (
    ContainerChange,
    RenderedTaskDefinition,
    diff_task_definitions,
    same_content,
)
from ecs_deploy_many.deploy.wait import Rollout, rollout_of
from ecs_deploy_many.plan.model import Plan

__all__ = [
    "TargetPreview",
    "format_dry_run",
    "format_preview",
    "format_status",
    "format_totals",
    "preview_plan",
    "preview_target",
]


@dataclass(frozen=True)
class TargetPreview:
    """What deploying one target would change, or why that cannot be known."""

    name: str
    kind: TargetKind
    cluster: str | None
    service: str | None
    task_definition: str | None
    region: str | None
    current_task_definition: str | None = None
    """The revision the service runs, or the task-definition target's base revision."""
    changes: tuple[ContainerChange, ...] = ()
    """Images the rendering sets, relative to the base revision (as the deploy logs them)."""
    images: tuple[str, ...] = ()
    """Every image the rendering sets, changed or not: what a deploy would pin."""
    differences: tuple[str, ...] = ()
    """What the new revision changes relative to the current one, a line each."""
    unchanged: bool = False
    """The new revision would hold exactly what the current one does."""
    rollout: Rollout | None = None
    """How the service's deployment stands: an unchanged revision whose deployment is
    still rolling out is waited for, one whose deployment failed is deployed again."""
    force_new_deployment: bool = False
    """Tasks are replaced even when the revision is unchanged."""
    running_images: tuple[str, ...] = ()
    """The images of ``current_task_definition``, container by container."""
    rollout_detail: str = ""
    """The PRIMARY deployment's task counts and ECS's rollout state reason."""
    controller: str | None = None
    """The service's deployment controller (ECS, CODE_DEPLOY, EXTERNAL)."""
    deployed_by: str = ""
    """How ECS deploys the service (``deploy.strategy.deployed_by``); empty for the ECS
    controller's rolling update without alarms, which goes without saying."""
    settings: tuple[str, ...] = ()
    """The service's desired count and deployment percentages the deploy changes,
    a line each (``desired count: 2 -> 4``)."""
    error: str | None = None
    definition: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)
    """The task definition the deploy starts tasks from: the rendered revision, or the
    running one when the deploy registers none (``deploy.verify`` checks what it
    references). It holds secrets: never shown."""

    @property
    def refused(self) -> bool:
        """A service the deploy refuses for its deployment controller."""
        return self.controller not in (None, "ECS")

    @property
    def changes_anything(self) -> bool:
        """Whether deploying the target would change it (an error changes nothing)."""
        if self.error is not None:
            return False
        return not self.unchanged or self.force_new_deployment or bool(self.settings)


async def preview_target(
    target: Target,
    accounts: Accounts,
    redactor: Redactor | None = None,
    pins: Mapping[str, str] | None = None,
    described: dict[str, Any] | None = None,
) -> TargetPreview:
    """Preview ``target``; anything that would make its deploy fail becomes ``error``.

    ``redactor`` (the run's, else a new one) learns the secrets of every definition read;
    ``pins`` are the run's pinned images (``RunContext.pins``); ``described`` is the
    target's service as ECS described it just now, when the caller has read it already.
    """
    mask = redactor or Redactor()
    mask.keep([target])
    if target.task_definition_body is not None:
        mask.add(task_definition_secrets(target.task_definition_body))
    preview = TargetPreview(
        name=target.name,
        kind=target.kind,
        cluster=target.cluster,
        service=target.service,
        task_definition=target.task_definition,
        region=target.scope.region,
        force_new_deployment=target.force_new_deployment,
    )
    try:
        gateway = await accounts.gateway(target.scope)
        if target.kind == "service":
            service = described or await describe_target_service(accounts, target)
            arn = service["taskDefinition"]
            preview = replace(
                preview,
                current_task_definition=arn,
                rollout=rollout_of(service),
                rollout_detail=_rollout_detail(service),
                controller=controller_of(service),
                deployed_by="" if is_default(service) else deployed_by(service),
                settings=_setting_changes(target, service),
            )
            refuse_foreign_controller(service)
            if not registers_revision(target):
                running = await gateway.describe_task_definition(arn)
                return replace(
                    preview,
                    unchanged=True,
                    running_images=_images(running),
                    definition=running.body,
                )
            base = await base_definition(gateway, target, arn)
        else:
            base = await base_definition(gateway, target)
        mask.add(task_definition_secrets(base.body))
        current = await _current(gateway, target, base, preview.current_task_definition)
        if current is not None:
            mask.add(task_definition_secrets(current.body))
            preview = replace(
                preview, current_task_definition=current.arn, running_images=_images(current)
            )
        return _compared(preview, current, render_revision(target, base, pins), mask)
    except EcsDeployError as error:
        return replace(preview, error=mask.scrub(str(error)))


async def _current(
    gateway: Gateway, target: Target, base: TaskDefinition, arn: str | None
) -> TaskDefinition | None:
    """The revision in use: a service's ``arn``, else the task definition's newest.

    Usually that is the base itself, described already; a file or a family's newest
    revision is not. None when a file starts a family ECS does not know yet.
    """
    if "taskDefinitionArn" in base.body and arn in (None, base.arn):
        return base
    try:
        return await gateway.describe_task_definition(arn or str(target.task_definition))
    except AwsError as error:
        if arn is not None or error.code != "ClientException":  # ECS's code for "no such"
            raise
        return None


_SETTINGS = (
    ("desired count", "desired_count", ("desiredCount",)),
    (
        "minimum healthy percent",
        "min_healthy_percent",
        ("deploymentConfiguration", "minimumHealthyPercent"),
    ),
    ("maximum percent", "max_percent", ("deploymentConfiguration", "maximumPercent")),
)


def _setting_changes(target: Target, service: Mapping[str, Any]) -> tuple[str, ...]:
    """``desired count: 2 -> 4`` for each service setting the target changes."""
    lines = []
    for words, key, where in _SETTINGS:
        wanted = getattr(target, key)
        current: Any = service
        for part in where:
            current = current.get(part) if isinstance(current, Mapping) else None
        if wanted is not None and wanted != current:
            lines.append(f"{words}: {'(none)' if current is None else current} -> {wanted}")
    return tuple(lines)


def _rollout_detail(service: dict[str, Any]) -> str:
    """The PRIMARY deployment's counts and ECS's own words on its rollout."""
    try:
        primary = primary_deployment(service)
    except DeployError:
        return "no PRIMARY deployment"
    counts = f"{primary.get('runningCount', 0)}/{primary.get('desiredCount', 0)} tasks running"
    others = len(service.get("deployments", [])) - 1
    if others:
        counts += f", {others} older deployment{'s' * (others != 1)}"
    reason = primary.get("rolloutStateReason")
    return f"{counts}: {reason}" if reason else counts


def _images(definition: TaskDefinition) -> tuple[str, ...]:
    return tuple(
        str(container.get("image", "")) for container in definition.body["containerDefinitions"]
    )


def _compared(
    preview: TargetPreview,
    current: TaskDefinition | None,
    rendered: RenderedTaskDefinition,
    mask: Redactor,
) -> TargetPreview:
    preview = replace(
        preview,
        changes=rendered.changes,
        images=rendered.images,
        definition=rendered.definition,
    )
    if current is None:
        return preview
    # With its tags, so a revision that would lose them says so.
    registered = {**current.body, "tags": current.tags}
    numbers: dict[str, int] = {}
    old, new = (_masked(body, numbers) for body in (registered, rendered.definition))
    return replace(
        preview,
        differences=tuple(mask.scrub(line) for line in diff_task_definitions(old, new)),
        unchanged=same_content(current.body, rendered.definition),
    )


def _masked(definition: Mapping[str, Any], numbers: dict[str, int]) -> dict[str, Any]:
    """``definition`` with each secret numbered: ``***1``, the same number for the same value.

    Absent and empty values stay as they are: they hold no secret, and ECS treats them alike.
    """

    def number(value: Any, named: bool) -> Any:
        if value is None or value in ("", [], {}):
            return value
        key = json.dumps(value, sort_keys=True, default=str)
        return f"{MASK}{numbers.setdefault(key, len(numbers) + 1)}"

    masked: dict[str, Any] = replace_task_definition_secrets(definition, number)
    return masked


async def preview_plan(
    plan: Plan,
    accounts: Accounts,
    *,
    max_parallel: int,
    redactor: Redactor | None = None,
    pins: Mapping[str, str] | None = None,
) -> list[TargetPreview]:
    """Every target's preview in plan order, at most ``max_parallel`` at a time.

    One ``redactor`` (the run's, else a new one) masks every preview with every secret
    seen; ``pins`` render the images as a run with those pinned digests would.
    """
    limiter = anyio.CapacityLimiter(max_parallel)
    previews: dict[int, TargetPreview] = {}
    mask = redactor or Redactor()

    async def preview(index: int, target: Target) -> None:
        # Every service is described at once, outside the limit, so that each cluster's
        # watcher fills its DescribeServices calls ten services at a time; a service that
        # cannot be read is read again below, where its error becomes the preview's.
        described = None
        if target.kind == "service":
            with contextlib.suppress(EcsDeployError):
                described = await describe_target_service(accounts, target)
        async with limiter:
            previews[index] = await preview_target(target, accounts, mask, pins, described)

    async with anyio.create_task_group() as group:
        for index, target in enumerate(plan.targets):
            group.start_soon(preview, index, target)
    return [previews[index] for index in range(len(plan.targets))]


def format_preview(previews: Iterable[TargetPreview]) -> str:
    """Plain text for a terminal: one block per target, unchanged and failed ones a line."""
    return "\n".join(_block(preview) for preview in previews)


def format_totals(previews: Iterable[TargetPreview]) -> str:
    """``12 targets: 9 change, 3 unchanged`` (and how many could not be read)."""
    listed = list(previews)
    errors = sum(preview.error is not None for preview in listed)
    change = sum(preview.changes_anything for preview in listed)
    totals = f"{len(listed)} target{'s' * (len(listed) != 1)}: {change} change, "
    totals += f"{len(listed) - change - errors} unchanged"
    return totals + (f", {errors} error{'s' * (errors != 1)}" if errors else "")


def format_dry_run(previews: Iterable[TargetPreview]) -> str:
    """A dry run's text: every target's block, then the totals."""
    listed = list(previews)
    return f"{format_preview(listed)}\n{format_totals(listed)}"


def _block(preview: TargetPreview) -> str:
    if preview.error is not None:
        verdict = "will be refused" if preview.refused else "error"
        return f"{preview.name}  {verdict}: {preview.error}"
    how = f" ({preview.deployed_by})" if preview.deployed_by else ""
    if not preview.changes_anything:
        if preview.rollout is Rollout.IN_PROGRESS:
            return f"{preview.name}  unchanged, its deployment still in progress: waited for{how}"
        if preview.rollout is Rollout.FAILED:
            return f"{preview.name}  unchanged, its last deployment failed: deployed again{how}"
        return f"{preview.name}  unchanged{how}"
    lines = [f"{preview.name}  ({_where(preview)})"]
    if preview.deployed_by:
        lines.append(f"  deployed by {preview.deployed_by}")
    current = preview.current_task_definition
    if preview.unchanged and preview.force_new_deployment:
        lines.append(f"  task definition {current} unchanged, new deployment forced")
    elif preview.unchanged:
        lines.append(f"  task definition {current} unchanged")
    else:
        lines.append(f"  task definition {current or '(new family)'} -> new revision")
        lines.extend(f"  {line}" for line in preview.differences)
    lines.extend(f"  {line}" for line in preview.settings)
    return "\n".join(lines)


def _where(preview: TargetPreview) -> str:
    parts = [f"cluster {preview.cluster}"] if preview.cluster else []
    if preview.service:
        parts.append(f"service {preview.service}")
    else:
        parts.append(f"task definition {preview.task_definition}")
    if preview.region:
        parts.append(preview.region)
    return ", ".join(parts)


_ROLLOUT_WORDS = {
    Rollout.STEADY: "steady",
    Rollout.IN_PROGRESS: "deploying",
    Rollout.FAILED: "failed",
}


def format_status(previews: Iterable[TargetPreview]) -> str:
    """Plain text for a terminal: per target, what runs now and what the plan would do."""
    return "\n".join(_status_block(preview) for preview in previews)


def _status_block(preview: TargetPreview) -> str:
    if preview.error is not None and not preview.refused:
        return f"{preview.name}  error: {preview.error}"
    lines = [f"{preview.name}  ({_where(preview)})"]
    if preview.deployed_by:
        lines.append(f"  strategy {preview.deployed_by}")
    running = preview.current_task_definition or "(no revision yet)"
    state = (
        f", {_ROLLOUT_WORDS[preview.rollout]} ({preview.rollout_detail})" if preview.rollout else ""
    )
    lines.append(f"  runs     {running}{state}")
    lines.extend(f"           {image}" for image in preview.running_images)
    if preview.error is not None:
        lines.append(f"  plan     will be refused: {preview.error}")
    elif not preview.changes_anything:
        lines.append("  plan     unchanged")
    elif preview.unchanged and preview.force_new_deployment:
        lines.append("  plan     same revision, new deployment forced")
    elif preview.unchanged:
        lines.append("  plan     same revision")
    else:
        lines.append("  plan     new revision")
        lines.extend(f"           {line}" for line in preview.differences)
    lines.extend(f"           {line}" for line in preview.settings)
    return "\n".join(lines)
