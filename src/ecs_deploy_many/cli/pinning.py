"""Pinning the ECR images a run deploys to their digests before the first change
(``jobs.pinning``), as the command line asks for it (``images: {pin_digests}``).

The images are those the dry run renders, read the same way: a ``tag_only`` target only
knows its repository once its current task definition is read. A plan that names no
ECR image (and retags none) reads nothing more.
"""

from __future__ import annotations

import structlog

from ecs_deploy_many.aws.session import ClientPool
from ecs_deploy_many.cli.options import count, say
from ecs_deploy_many.cli.where import Where
from ecs_deploy_many.core.redact import Redactor
from ecs_deploy_many.deploy.dryrun import (
    TargetPreview,
    preview_plan,
)
from ecs_deploy_many.jobs.pinning import Pinning, ecr_image, pin_digests
from ecs_deploy_many.plan import Plan

__all__ = ["pinned", "pins_images", "previews_and_pins", "unpinned"]


async def pinned(
    where: Where,
    pool: ClientPool,
    redactor: Redactor,
    *,
    rolling_back: bool,
    previews: list[TargetPreview] | None = None,
) -> Pinning:
    """The digest of every ECR image the job deploys (``images: {pin_digests: ...}``),
    resolved before anything changes, and the images that cannot be.

    The images are those the dry run renders, read the same way: a ``tag_only`` target
    only knows its repository once its current task definition is read. A rehearsal
    pins nothing (its images are taken as present), nor does a rollback (it returns to
    revisions as they were). ``previews`` are the plan's, when read already.
    """
    if rolling_back or not pins_images(where):
        return Pinning()
    _, pinning = await previews_and_pins(where.plan, pool, redactor, previews)
    if pinning.problems:
        return pinning
    log = structlog.get_logger("ecs_deploy_many")
    for image, digest in pinning.digests.items():
        log.info("image_pinned", image=image, digest=digest)
    for image in pinning.not_in_ecr:
        log.info("image_not_pinned", image=image, reason="not a tag in Amazon ECR")
    return pinning


def pins_images(where: Where) -> bool:
    """Whether a run pins its images: only when it may deploy an ECR image, so a plan
    of other registries' images reads nothing more (each is logged as not pinned). A
    rehearsal does not, and says so when the plan has ECR images."""
    plan = where.plan
    if not plan.images.pin_digests:
        return False
    ecr = _may_deploy_ecr_images(plan)
    if where.simulator is not None:
        if ecr:
            say("images are taken as present in a rehearsal: tags are not pinned to digests")
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


async def previews_and_pins(
    plan: Plan, pool: ClientPool, redactor: Redactor, previews: list[TargetPreview] | None = None
) -> tuple[list[TargetPreview], Pinning]:
    """Every target's preview (read unless given), and the digests of the images they
    would deploy."""
    if previews is None:
        previews = await preview_plan(plan, pool, max_parallel=plan.max_parallel, redactor=redactor)
    return previews, await pin_digests(image for p in previews for image in p.images)


def unpinned(plan_path: str, pinning: Pinning) -> str:
    """Say which images cannot be pinned and why, each once; the reason the run deploys
    nothing, which every target repeats, names the first."""
    for problem in pinning.problems:
        say(f"error: {problem}")
    cannot = f"{count(pinning.problems, 'image')} cannot be pinned to a digest"
    say(
        f"{plan_path}: {cannot}; nothing was changed "
        "(images: {pin_digests: false} deploys tags as they are)"
    )
    more = len(pinning.problems) - 1
    others = f" and {count(range(more), 'other')} on stderr" if more else ""
    return f"nothing was deployed: {cannot}: {pinning.problems[0]}{others}"
