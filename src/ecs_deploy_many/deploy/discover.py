"""Finding the services that run now: a plan's selector targets, and ``init``.

Reads only, batched as ECS allows, every call paced by the gateway's buckets:
ListClusters once per account and region when a cluster is given by glob (paged, the
glob matched here), ListServices per cluster (pages of 100), DescribeServices ten
services per call, and DescribeTaskDefinition once per distinct revision (the gateway
keeps each revision it described). A selector without ``runs`` describes no revision.

A service is found when it is ACTIVE (a DRAINING one is being deleted). It matches
``runs`` when one of its containers runs one of the repositories in that registry
(``core.images.runs_repository``: Docker Hub when the repository names none, its aliases
and ``library/`` folded together). ``image:`` retargets a container by repository path
whatever its registry, and would move a service running ``mirror.example/datadog/agent``
to the registry the image names: a selector for ``datadog/agent`` leaves such a service
out; select it with ``runs: mirror.example/datadog/agent`` and an image of the mirror.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from fnmatch import fnmatchcase

import anyio

from ecs_deploy_many.aws.gateway import Gateway
from ecs_deploy_many.core.images import runs_repository
from ecs_deploy_many.core.scope import AwsScope
from ecs_deploy_many.core.target import Selector
from ecs_deploy_many.deploy.steps import Accounts
from ecs_deploy_many.plan.expand import Expansion, ServiceKey, expand_selectors
from ecs_deploy_many.plan.model import Plan
from ecs_deploy_many.plan.order import is_glob

__all__ = ["FIND_DEADLINE", "FoundService", "discover_selectors", "find_services", "matching"]

FIND_DEADLINE = 600.0
"""Seconds (of the run's clock) finding services may take: thousands of services read
within ECS's rates in a minute or two, so more means ECS is not answering."""


@dataclass(frozen=True)
class FoundService:
    """An ACTIVE service as ECS describes it now."""

    cluster: str
    name: str
    task_definition: str
    """The ARN of the revision its service runs (its primary)."""
    containers: tuple[tuple[str, str], ...] = ()
    """(container name, image) in the revision's order; empty when not described."""
    controller: str = "ECS"
    """Its deployment controller: ECS, CODE_DEPLOY or EXTERNAL."""


def _name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


async def _cluster_names(gateway: Gateway, patterns: Iterable[str]) -> list[str]:
    """Names given exactly, and every cluster a glob matches (one paged ListClusters)."""
    patterns = list(dict.fromkeys(patterns))
    names = [p for p in patterns if not is_glob(p)]
    globs = [p for p in patterns if is_glob(p)]
    if globs:
        listed = sorted(_name(arn) for arn in await gateway.list_clusters())
        names += [n for n in listed if any(fnmatchcase(n, g) for g in globs)]
    return list(dict.fromkeys(names))


async def find_services(
    gateway: Gateway,
    clusters: Iterable[str],
    *,
    describe_definitions: bool = True,
    max_parallel: int = 10,
) -> list[FoundService]:
    """Every ACTIVE service of the clusters ``clusters`` names or globs, sorted by
    cluster and name; with ``describe_definitions``, each with its containers' images.

    An AwsError (a cluster named exactly that does not exist, access denied) propagates.
    """
    limiter = anyio.CapacityLimiter(max_parallel)
    described: dict[str, dict[str, object]] = {}

    async def cluster_services(cluster: str) -> None:
        async with limiter:
            arns = await gateway.list_services(cluster)
        names = sorted(_name(arn) for arn in arns)
        async with limiter:
            services = await gateway.describe_services(cluster, names)
        for name, service in services.items():
            if service is not None and service.get("status") == "ACTIVE":
                described[f"{cluster}/{name}"] = {"cluster": cluster, **service}

    async with _first_error(), anyio.create_task_group() as group:
        for cluster in await _cluster_names(gateway, clusters):
            group.start_soon(cluster_services, cluster)

    containers: dict[str, tuple[tuple[str, str], ...]] = {}

    async def definition(arn: str) -> None:
        async with limiter:
            body = (await gateway.describe_task_definition(arn)).body
        containers[arn] = tuple(
            (str(c.get("name", "")), str(c.get("image", "")))
            for c in body.get("containerDefinitions", [])
        )

    revisions = {str(service["taskDefinition"]) for service in described.values()}
    if describe_definitions:
        async with _first_error(), anyio.create_task_group() as group:
            for arn in sorted(revisions):
                group.start_soon(definition, arn)
    found = [
        FoundService(
            str(service["cluster"]),
            str(service["serviceName"]),
            str(service["taskDefinition"]),
            containers.get(str(service["taskDefinition"]), ()),
            _controller(service),
        )
        for service in described.values()
    ]
    return sorted(found, key=lambda s: (s.cluster, s.name))


@asynccontextmanager
async def _first_error() -> AsyncIterator[None]:
    """The first error of a task group's reads as itself (an AwsError naming the call),
    not wrapped in an exception group: the caller reports it."""
    try:
        yield
    except BaseExceptionGroup as group:
        error: BaseException = group
        while isinstance(error, BaseExceptionGroup):
            error = error.exceptions[0]
        raise error from None


def _controller(service: Mapping[str, object]) -> str:
    controller = service.get("deploymentController")
    if isinstance(controller, Mapping):
        return str(controller.get("type", "ECS"))
    return "ECS"


def matching(selector: Selector, services: Iterable[FoundService]) -> list[FoundService]:
    """The services ``selector`` selects among ``services`` (found in its clusters and
    maybe others)."""
    return [
        service
        for service in services
        if any(fnmatchcase(service.cluster, pattern) for pattern in selector.clusters)
        and (
            not selector.runs
            or any(
                runs_repository(image, repository)
                for _, image in service.containers
                for repository in selector.runs
            )
        )
    ]


async def discover_selectors(plan: Plan, accounts: Accounts, *, max_parallel: int) -> Expansion:
    """``plan`` with its selector targets expanded into the services they match now.

    The clusters of every selector of one account and region are read once.
    """
    selectors: dict[AwsScope, list[Selector]] = {}
    for target in plan.targets:
        if target.unexpanded and target.selector is not None:
            selectors.setdefault(target.scope, []).append(target.selector)
    found: dict[str, Sequence[ServiceKey]] = {}
    for scope, chosen in selectors.items():
        services = await find_services(
            await accounts.gateway(scope),
            (pattern for selector in chosen for pattern in selector.clusters),
            describe_definitions=any(selector.runs for selector in chosen),
            max_parallel=max_parallel,
        )
        for selector in chosen:
            found[selector.name] = [(s.cluster, s.name) for s in matching(selector, services)]
    return expand_selectors(plan, found)
