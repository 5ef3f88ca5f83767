"""Pinned digests: every Amazon ECR image a run deploys, by the digest its tag named
when the run began.

A scheduled job deploys a moving tag (``:release``, ``:stable``). Each distinct image is
resolved once, before the first change, with ECR's BatchGetImage in the image's own
account and region (the SDK's usual credentials; ``AWS_ENDPOINT_URL_ECR`` is honoured);
every target then deploys ``repo@sha256:...``, so a tag pushed again mid-run changes
nothing. A tag or repository that does not exist is a problem of the run, found for
every image at once before anything changes. Images elsewhere (Docker Hub, GHCR, a
private registry) cannot be resolved with ECR's API and are left as they are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aioboto3
import anyio

from ecs_deploy_many.core.errors import ImageError
from ecs_deploy_many.core.images import DEFAULT_TAG, ECR_REGISTRY, parse_image

__all__ = ["EcrImage", "Pinning", "ecr_image", "pin_digests"]

RESOLVE_TIMEOUT = 60.0
"""Seconds ECR has to answer for one repository (an I/O bound, on the event loop's time)."""
# BatchGetImage takes at most 100 image ids a call.
_BATCH = 100
# ECR's failure codes for a tag that names no image.
_NO_SUCH_TAG = frozenset({"ImageNotFound", "ImageTagDoesNotExist"})


@dataclass(frozen=True)
class EcrImage:
    """An image in an ECR repository, named by tag."""

    image: str
    """As the run names it."""
    account: str
    region: str
    repository: str
    """The repository path (``team/app``), without the registry."""
    tag: str
    registry_host: str

    def by_digest(self, digest: str) -> str:
        return f"{self.registry_host}/{self.repository}@{digest}"


def ecr_image(image: str) -> EcrImage | None:
    """``image`` as an ECR image named by tag, or None when it is elsewhere or is
    named by digest already (there is nothing to pin)."""
    try:
        ref = parse_image(image)
    except ImageError:
        return None
    host = ECR_REGISTRY.fullmatch(ref.registry or "")
    if host is None or ref.digest is not None:
        return None
    return EcrImage(
        image, host["account"], host["region"], ref.path, ref.tag or DEFAULT_TAG, str(ref.registry)
    )


@dataclass
class Pinning:
    """What resolving a run's images found."""

    digests: dict[str, str] = field(default_factory=dict)
    """Each ECR image by tag -> its digest (``sha256:...``)."""
    pins: dict[str, str] = field(default_factory=dict)
    """Each ECR image by tag -> the same image by digest, as ``RunContext.pins`` wants."""
    not_in_ecr: list[str] = field(default_factory=list)
    """Images left as they are: not in ECR, or named by digest already."""
    problems: list[str] = field(default_factory=list)
    """Images that could not be resolved, each with why: the run must not start."""


async def pin_digests(images: Iterable[str]) -> Pinning:
    """Resolve every ECR image among ``images`` to its digest, with the environment's
    credentials.

    One BatchGetImage per repository (and per 100 tags), the repositories at once, each
    answered within ``RESOLVE_TIMEOUT`` seconds or reported as a problem.
    """
    pinning = Pinning()
    by_repository: dict[tuple[str, str, str], list[EcrImage]] = defaultdict(list)
    for image in dict.fromkeys(images):
        in_ecr = ecr_image(image)
        if in_ecr is None:
            pinning.not_in_ecr.append(image)
        else:
            by_repository[in_ecr.account, in_ecr.region, in_ecr.repository].append(in_ecr)
    if not by_repository:
        return pinning
    session = aioboto3.Session()
    found: dict[EcrImage, str] = {}
    failed: dict[EcrImage, str] = {}

    async def resolve(wanted: list[EcrImage]) -> None:
        """One repository's tags; whatever goes wrong is each image's problem."""
        first = wanted[0]
        try:
            with anyio.fail_after(RESOLVE_TIMEOUT):
                async with session.client("ecr", region_name=first.region) as ecr:
                    for start in range(0, len(wanted), _BATCH):
                        batch = wanted[start : start + _BATCH]
                        answer = await ecr.batch_get_image(
                            registryId=first.account,
                            repositoryName=first.repository,
                            imageIds=[{"imageTag": image.tag} for image in batch],
                        )
                        _record(batch, answer, found, failed)
        except TimeoutError:
            for image in wanted:
                failed[image] = f"ECR did not answer within {RESOLVE_TIMEOUT:g} s"
        except Exception as error:  # the SDK's errors: no credentials, denied, unreachable
            for image in wanted:
                failed[image] = _why(error, image)

    async with anyio.create_task_group() as group:
        for wanted in by_repository.values():
            group.start_soon(resolve, wanted)
    for wanted in by_repository.values():
        for ecr in wanted:
            if ecr in found:
                pinning.digests[ecr.image] = found[ecr]
                pinning.pins[ecr.image] = ecr.by_digest(found[ecr])
            else:
                pinning.problems.append(f"{ecr.image}: {failed.get(ecr, 'ECR did not answer')}")
    return pinning


def _record(
    batch: list[EcrImage],
    answer: Mapping[str, Any],
    found: dict[EcrImage, str],
    failed: dict[EcrImage, str],
) -> None:
    by_tag = {image.tag: image for image in batch}
    for got in answer.get("images", []):
        image_id = got.get("imageId", {})
        if image_id.get("imageTag") in by_tag and image_id.get("imageDigest"):
            found[by_tag[image_id["imageTag"]]] = str(image_id["imageDigest"])
    for failure in answer.get("failures", []):
        image = by_tag.get(failure.get("imageId", {}).get("imageTag"))
        if image is None or image in found:
            continue
        code = failure.get("failureCode", "")
        failed[image] = (
            f"tag {image.tag!r} does not exist in repository {image.repository!r}"
            if code in _NO_SUCH_TAG
            else f"ECR: {code}: {failure.get('failureReason', '')}"
        )


def _why(error: Exception, image: EcrImage) -> str:
    """An SDK error as the reason an image could not be resolved."""
    response = getattr(error, "response", None)
    code = response.get("Error", {}).get("Code", "") if isinstance(response, dict) else ""
    if code == "RepositoryNotFoundException":
        return (
            f"repository {image.repository!r} does not exist in account {image.account} "
            f"({image.region})"
        )
    return f"cannot read it from ECR: {error}"
