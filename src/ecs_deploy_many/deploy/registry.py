"""The task-definition revisions of a run: registered once, protected while in use.

Registrations are ECS's scarcest budget (a burst of 20, then one a second per account
and region). A fleet often renders the same definition for many services (a family
shared by many services getting one new image); those targets share one new revision.

``--max-definitions`` cleanups of many targets on one family run side by side: each
must spare every revision any target of the run runs or could roll back to, and a
revision is deregistered once, not once per target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from ecs_deploy_many.aws.gateway import Gateway, TaskDefinition
from ecs_deploy_many.aws.scope import AwsScope
from ecs_deploy_many.deploy.cleanup import revisions_to_deregister
from ecs_deploy_many.deploy.taskdef import fingerprint
from ecs_deploy_many.memo import AsyncMemo

__all__ = ["RunRevisions"]


class RunRevisions:
    """What a run knows about revisions, shared by all its targets."""

    def __init__(self) -> None:
        self._registered: AsyncMemo[tuple[AwsScope, str], TaskDefinition] = AsyncMemo()
        self._deregistered: AsyncMemo[tuple[AwsScope, str], None] = AsyncMemo()
        self._in_use: set[str] = set()

    def in_use(self, *arns: str | None) -> None:
        """Note revisions a target runs or may roll back to: no cleanup touches them."""
        self._in_use.update(arn for arn in arns if arn)

    async def register(
        self, gateway: Gateway, scope: AwsScope, definition: Mapping[str, Any]
    ) -> tuple[TaskDefinition, bool]:
        """The revision for ``definition`` and whether another target registered it."""
        registered_here = False

        async def register() -> TaskDefinition:
            nonlocal registered_here
            registered_here = True
            return await gateway.register_task_definition(definition)

        revision = await self._registered.get((scope, fingerprint(definition)), register)
        self.in_use(revision.arn)
        return revision, not registered_here

    async def clean_up(
        self, gateway: Gateway, scope: AwsScope, *, family: str, keep: int
    ) -> Sequence[str]:
        """Deregister the revisions of ``family`` beyond the newest ``keep``, sparing
        every revision in use; return the ones gone (by this target or another)."""
        active = await gateway.list_task_definitions(family)
        doomed = revisions_to_deregister(active, family=family, keep=keep, protected=self._in_use)
        for arn in doomed:
            await self._deregistered.get(
                (scope, arn), partial(gateway.deregister_task_definition, arn)
            )
        return doomed
