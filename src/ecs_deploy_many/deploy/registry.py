"""Shared registrations: identical task definitions are registered once per run.

Registrations are ECS's scarcest budget (a burst of 20, then one a second per account
and region). A fleet often renders the same definition for many services, a family
shared by many services getting one new image; those targets share one new revision.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ecs_deploy_many.aws.gateway import Gateway, TaskDefinition
from ecs_deploy_many.aws.scope import AwsScope
from ecs_deploy_many.deploy.taskdef import fingerprint
from ecs_deploy_many.memo import AsyncMemo

__all__ = ["SharedRegistrations"]


class SharedRegistrations:
    """Register each distinct (scope, definition) once; later askers get that revision."""

    def __init__(self) -> None:
        self._registered: AsyncMemo[tuple[AwsScope, str], TaskDefinition] = AsyncMemo()

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
        return revision, not registered_here
