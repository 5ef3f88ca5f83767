"""Container image references: parsing, the ``-e`` tag rules, retagging, and matching.

The grammar is Docker's, ``[domain[:port]/][repo/...]image[:tag][@sha256:digest]``.
New images given by the user are parsed strictly, so a typo fails before anything is
registered. Images already in a task definition are whatever ECS accepted, so they are
split leniently and never raise while being matched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from ecs_deploy_many.core.errors import ImageError

__all__ = [
    "ECR_REGISTRY",
    "ImageRef",
    "parse_image",
    "resolve_image",
    "runs_repository",
    "same_repository",
    "tag_problem",
    "with_tag",
]

DEFAULT_TAG = "latest"

# One component of a host name or of a repository path: letters or digits, joined by
# single separators ("." "_" "__" or a run of "-"), so it never starts or ends with one.
_COMPONENT = re.compile(r"[A-Za-z0-9]+(?:(?:[._]|__|-+)[A-Za-z0-9]+)*")
_PORT = re.compile(r"[0-9]+")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_WHITESPACE = re.compile(r"\s")
# Docker Hub spells one repository several ways; these all mean "no registry".
_DOCKER_HUB = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
ECR_REGISTRY = re.compile(
    r"(?P<account>[0-9]{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
)
"""Amazon ECR's registry host names: ``<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]``."""


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference; ``str()`` gives it back as written."""

    registry: str | None
    """``host[:port]``, or None when the image names no registry."""
    path: str
    """The repository path without the registry, e.g. ``team/app``."""
    tag: str | None = None
    digest: str | None = None
    """``sha256:<hex>``, without the ``@``."""

    @property
    def repository(self) -> str:
        """The image without tag or digest: what a container's image is matched on."""
        return f"{self.registry}/{self.path}" if self.registry else self.path

    def __str__(self) -> str:
        text = self.repository
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def _split(ref: str) -> ImageRef:
    """Cut a reference into its parts by position alone, validating nothing."""
    name, at, digest = ref.partition("@")
    tag = None
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1 :]
    first, slash, rest = name.partition("/")
    # Docker's rule: the first component is a registry only if it looks like a host.
    if slash and ("." in first or ":" in first or first == "localhost"):
        return ImageRef(first, rest, tag, digest if at else None)
    return ImageRef(None, name, tag, digest if at else None)


def tag_problem(tag: str) -> str | None:
    """What is wrong with an image tag, or None when Docker accepts it."""
    if _TAG.fullmatch(tag):
        return None
    if not tag:
        return "the tag is empty"
    return (
        f"tag {tag!r} must be letters, digits, '.', '_' or '-', not start with '.' or '-', "
        "and be at most 128 characters"
    )


def _registry_problem(registry: str) -> str | None:
    host, colon, port = registry.partition(":")
    if not _COMPONENT.fullmatch(host):
        return f"registry host {host!r} must be letters and digits joined by '.', '_' or '-'"
    if colon and not _PORT.fullmatch(port):
        return f"registry port {port!r} must be digits"
    return None


def _path_problem(path: str) -> str | None:
    for component in path.split("/"):
        if not _COMPONENT.fullmatch(component):
            return (
                f"repository path component {component!r} must be letters and digits "
                "joined by '.', '_', '__' or '-' (it cannot start or end with one)"
            )
    if path != path.lower():
        return f"repository path {path!r} must be lowercase"
    return None


def _problem(ref: str, image: ImageRef) -> str | None:
    """What is wrong with a split reference, or None when it follows the grammar."""
    name = image.repository
    if _WHITESPACE.search(ref):
        return "it contains whitespace"
    if name.startswith("/"):
        return "it starts with '/'"
    if name.endswith("/"):
        return "the repository ends with '/'"
    if "//" in name:
        return "the repository contains '//'"
    if image.digest is not None and not _DIGEST.fullmatch(image.digest):
        return "the digest must be 'sha256:' followed by 64 lowercase hex digits"
    if image.tag is not None and (bad_tag := tag_problem(image.tag)):
        return bad_tag
    if image.registry is not None and (registry_problem := _registry_problem(image.registry)):
        return registry_problem
    return _path_problem(image.path)


def parse_image(ref: str) -> ImageRef:
    """Parse a user-given image strictly; ImageError says what is wrong.

    Both a tag and a digest may be given (``app:1.2@sha256:...``), as Docker and ECS accept.
    """
    if not ref:
        raise ImageError(ref, "the image is empty")
    image = _split(ref)
    if problem := _problem(ref, image):
        raise ImageError(ref, problem)
    return image


def resolve_image(image: str, *, tag_env_var: str | None, environ: Mapping[str, str]) -> str:
    """Apply the ``-e`` rules: fill in a missing tag, never override an explicit one.

    No tag and no digest: the tag is the variable's value when set and non-empty, else
    ``latest``. A digest is replaced by the variable's tag when there is one.
    """
    ref = parse_image(image)
    if ref.tag is not None:
        return str(ref)
    env_tag = environ.get(tag_env_var, "") if tag_env_var else ""
    if env_tag:
        if problem := tag_problem(env_tag):
            raise ImageError(f"{ref.repository}:{env_tag}", f"{problem} (from ${tag_env_var})")
        return str(replace(ref, tag=env_tag, digest=None))
    if ref.digest is not None:
        return str(ref)
    return str(replace(ref, tag=DEFAULT_TAG))


def _lenient(image: str) -> ImageRef | None:
    """Split an image found in a task definition, or None when it names no repository."""
    if not image or _WHITESPACE.search(image):
        return None
    ref = _split(image)
    return ref if ref.path else None


def with_tag(image: str, tag: str) -> str:
    """Give an existing image a new tag, keeping its registry (and port) and repository.

    Any tag or digest it had is replaced. The image is split leniently, since it comes
    from a task definition; the new tag is validated.
    """
    if problem := tag_problem(tag):
        raise ImageError(f"{_split(image).repository}:{tag}", problem)
    ref = _lenient(image)
    if ref is None:
        raise ImageError(image, "there is no repository to give a new tag")
    return str(replace(ref, tag=tag, digest=None))


def _match_key(ref: ImageRef) -> str:
    """The repository path an image is matched on, Docker Hub's aliases folded together."""
    if ref.registry is None or ref.registry in _DOCKER_HUB:
        return ref.path.removeprefix("library/")
    return ref.path


def same_repository(current: str, new: str) -> bool:
    """Whether a container running ``current`` should get ``new``.

    The repository paths must be equal; the registries may differ, so ``app:2`` matches a
    container running ``123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1``. A current
    image that cannot be read simply does not match; a bad new image raises ImageError.
    """
    new_key = _match_key(parse_image(new))
    current_ref = _lenient(current)
    return current_ref is not None and _match_key(current_ref) == new_key


def runs_repository(current: str, repository: str) -> bool:
    """Whether an image found running is of ``repository`` in its registry (Docker Hub
    when it names none, its aliases folded together): stricter than ``same_repository``,
    so that a selector never takes a service off a mirror or a private registry."""
    wanted = parse_image(repository)
    current_ref = _lenient(current)
    return current_ref is not None and _registry_key(current_ref) == _registry_key(wanted)


def _registry_key(ref: ImageRef) -> tuple[str, str]:
    registry = "docker.io" if ref.registry is None or ref.registry in _DOCKER_HUB else ref.registry
    return registry, _match_key(ref)
