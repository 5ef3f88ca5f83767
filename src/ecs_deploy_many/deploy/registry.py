"""The task-definition revisions of a run: registered once, protected while in use.

Registrations are ECS's scarcest budget (a burst of 20, then one a second per account
and region). A fleet often renders the same definition for many services (a family
shared by many services getting one new image); those targets share one new revision.

``--max-definitions`` cleanups of many targets on one family run side by side: each
must spare every revision any target of the run runs or could roll back to, and a
revision is deregistered once, not once per target.

A cleanup also spares what the rest of the account and region uses: every revision a
service runs or one of its deployments still references (another service of the family,
outside the run, may run an older revision), and every revision a task meant to run
uses. Finding those costs a few list and describe calls, made only when a cleanup has
something to deregister and shared by every cleanup of the run: the services once per
account and region, the tasks once per family. When they cannot be read (no permission
to list services, say), the cleanup keeps every revision and says why.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio

from ecs_deploy_many.aws.gateway import Gateway, TaskDefinition
from ecs_deploy_many.core.errors import AwsError
from ecs_deploy_many.core.memo import AsyncMemo
from ecs_deploy_many.core.scope import AwsScope
from ecs_deploy_many.deploy.cleanup import revisions_to_deregister
from ecs_deploy_many.deploy.taskdef import fingerprint

__all__ = ["Cleanup", "RunRevisions"]

_REFERENCING = ("PRIMARY", "ACTIVE")
"""The deployments whose revision a service may still run or return to."""


@dataclass(frozen=True)
class Cleanup:
    """What a cleanup did: the revisions gone, or why it kept them all."""

    deregistered: tuple[str, ...] = ()
    kept_because: str | None = None


@dataclass(frozen=True)
class _InUse:
    """Revisions something in an account and region uses, or why that is unknown."""

    revisions: frozenset[str] = frozenset()
    unknown: str | None = None


class RunRevisions:
    """What a run knows about revisions, shared by all its targets."""

    def __init__(self) -> None:
        self._registered: AsyncMemo[tuple[AwsScope, str], TaskDefinition] = AsyncMemo()
        self._deregistered: AsyncMemo[tuple[AwsScope, str], None] = AsyncMemo()
        self._in_use: set[str] = set()
        self._clusters: AsyncMemo[AwsScope, list[str]] = AsyncMemo()
        self._used_by_services: AsyncMemo[AwsScope, _InUse] = AsyncMemo()
        self._used_by_tasks: AsyncMemo[tuple[AwsScope, str], _InUse] = AsyncMemo()

    def in_use(self, *arns: str | None) -> None:
        """Note revisions a target runs or may roll back to: no cleanup touches them."""
        self._in_use.update(arn for arn in arns if arn)

    async def register(
        self,
        gateway: Gateway,
        scope: AwsScope,
        definition: Mapping[str, Any],
        *,
        earlier: TaskDefinition | None = None,
    ) -> tuple[TaskDefinition, bool]:
        """The revision for ``definition`` and whether another target registered it.

        ``earlier`` is a revision holding ``definition`` that an earlier run registered:
        it is taken instead of registering another.
        """
        registered_here = False

        async def register() -> TaskDefinition:
            nonlocal registered_here
            registered_here = True
            return earlier or await gateway.register_task_definition(definition)

        revision = await self._registered.get((scope, fingerprint(definition)), register)
        self.in_use(revision.arn)
        return revision, not registered_here

    async def clean_up(
        self, gateway: Gateway, scope: AwsScope, *, family: str, keep: int
    ) -> Cleanup:
        """Deregister the revisions of ``family`` beyond the newest ``keep`` (0: none),
        sparing every revision in use in the run or the account and region."""
        if keep == 0:
            return Cleanup()
        active = await gateway.list_task_definitions(family)
        surplus = revisions_to_deregister(active, family=family, keep=keep, protected=self._in_use)
        if not surplus:
            return Cleanup()
        services = await self._used_by_services.get(
            scope,
            lambda: _checked(
                "the services",
                self._across_clusters(gateway, scope, partial(_service_revisions, gateway)),
            ),
        )
        tasks = await self._used_by_tasks.get(
            (scope, family),
            lambda: _checked(
                f"the tasks of {family}",
                self._across_clusters(gateway, scope, partial(_task_revisions, gateway, family)),
            ),
        )
        unknown = services.unknown or tasks.unknown
        if unknown:
            return Cleanup(kept_because=f"cannot tell which revisions are in use: {unknown}")
        used = services.revisions | tasks.revisions
        doomed = [arn for arn in surplus if arn not in used]
        for arn in doomed:
            await self._deregistered.get(
                (scope, arn), partial(gateway.deregister_task_definition, arn)
            )
        return Cleanup(tuple(doomed))

    async def _across_clusters(
        self, gateway: Gateway, scope: AwsScope, read: Callable[[str], Awaitable[set[str]]]
    ) -> frozenset[str]:
        """The union of ``read`` over the clusters of the account and region, read side
        by side; the first AWS error is raised as it is."""
        found: set[str] = set()
        errors: list[AwsError] = []

        async def read_one(cluster: str) -> None:
            try:
                found.update(await read(cluster))
            except AwsError as error:
                errors.append(error)

        clusters = await self._clusters.get(scope, gateway.list_clusters)
        async with anyio.create_task_group() as group:
            for cluster in clusters:
                group.start_soon(read_one, cluster)
        if errors:
            raise errors[0]
        return frozenset(found)


async def _service_revisions(gateway: Gateway, cluster: str) -> set[str]:
    """Every revision a service of ``cluster`` runs or one of its deployments references."""
    arns = await gateway.list_services(cluster)
    if not arns:
        return set()
    found: set[str] = set()
    for service in (await gateway.describe_services(cluster, arns)).values():
        if service is not None:
            found.add(service["taskDefinition"])
            found.update(
                deployment["taskDefinition"]
                for deployment in service.get("deployments", [])
                if deployment.get("status") in _REFERENCING
            )
    return found


async def _task_revisions(gateway: Gateway, family: str, cluster: str) -> set[str]:
    """Every revision of ``family`` a task of ``cluster`` meant to run uses (standalone
    tasks too)."""
    arns = await gateway.list_tasks(cluster, family=family)
    if not arns:
        return set()
    described = await gateway.describe_tasks(cluster, arns)
    return {task["taskDefinitionArn"] for task in described["tasks"]}


async def _checked(what: str, reading: Awaitable[frozenset[str]]) -> _InUse:
    """The revisions ``reading`` finds, or why ``what`` could not be read (remembered for
    the run, so a missing permission costs one refused call, not one per target)."""
    try:
        return _InUse(await reading)
    except AwsError as error:
        return _InUse(unknown=f"reading {what} failed: {error}")
