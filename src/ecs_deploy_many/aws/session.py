"""Credentials, regions and the client pool: one ECS client per (credentials, region).

Every target with the same ``AwsScope`` shares one client, one set of token buckets and
one service watcher per cluster, so the whole run spends one account's API budget
through one door. Assumed roles are resolved once per (role, base credentials).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import aioboto3
import anyio
from aiobotocore.config import AioConfig
from anyio.abc import TaskGroup
from botocore.exceptions import BotoCoreError, ClientError

from ecs_deploy_many.aws.gateway import AioBotoGateway
from ecs_deploy_many.aws.ratelimit import BucketSpec
from ecs_deploy_many.aws.scope import AwsScope
from ecs_deploy_many.aws.watch import PollPolicy, ServiceWatcher
from ecs_deploy_many.clock import Clock
from ecs_deploy_many.errors import CredentialsError

__all__ = ["ClientPool", "StaticKeys"]

SESSION_NAME = "ecs-deploy-many"
# Connections per client: polls, updates and registrations of many targets share them.
MAX_POOL_CONNECTIONS = 64


@dataclass(frozen=True)
class StaticKeys:
    """Access keys given on the command line; never printed."""

    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


@dataclass
class _Account:
    """What targets sharing one scope share."""

    gateway: AioBotoGateway
    watchers: dict[str, ServiceWatcher] = field(default_factory=dict)


class ClientPool:
    """Creates and owns the ECS clients of a run; use as an async context manager."""

    def __init__(
        self,
        clock: Clock,
        *,
        keys: StaticKeys | None = None,
        endpoint_url: str | None = None,
        bucket_specs: Mapping[str, BucketSpec] | None = None,
        poll_policy: PollPolicy | None = None,
        verbose: bool = False,
    ) -> None:
        self._clock = clock
        self._keys = keys
        self._endpoint_url = endpoint_url
        self._bucket_specs = dict(bucket_specs or {})
        self._poll_policy = poll_policy
        self._verbose = verbose
        self._accounts: dict[AwsScope, _Account] = {}
        self._lock = anyio.Lock()
        self._stack = AsyncExitStack()
        self._task_group: TaskGroup | None = None

    async def __aenter__(self) -> Self:
        await self._stack.__aenter__()
        self._task_group = await self._stack.enter_async_context(anyio.create_task_group())
        self._stack.callback(self._task_group.cancel_scope.cancel)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._stack.__aexit__(exc_type, exc, tb)

    def gateways(self) -> list[AioBotoGateway]:
        """Every gateway created so far (for statistics)."""
        return [account.gateway for account in self._accounts.values()]

    async def gateway(self, scope: AwsScope) -> AioBotoGateway:
        """The shared gateway for ``scope``, created on first use."""
        return (await self._account(scope)).gateway

    async def watcher(self, scope: AwsScope, cluster: str) -> ServiceWatcher:
        """The one service watcher of ``cluster`` in ``scope``, started on first use."""
        account = await self._account(scope)
        watcher = account.watchers.get(cluster)
        if watcher is None:
            assert self._task_group is not None, "ClientPool used outside 'async with'"
            watcher = ServiceWatcher(account.gateway, cluster, self._clock, self._poll_policy)
            account.watchers[cluster] = watcher
            self._task_group.start_soon(watcher.run)
        return watcher

    async def _account(self, scope: AwsScope) -> _Account:
        async with self._lock:
            account = self._accounts.get(scope)
            if account is None:
                client = await self._open_client(scope)
                gateway = AioBotoGateway(
                    client, self._clock, bucket_specs=self._bucket_specs, verbose=self._verbose
                )
                account = self._accounts[scope] = _Account(gateway)
            return account

    async def _open_client(self, scope: AwsScope) -> Any:
        session = await self._session(scope)
        config = AioConfig(
            retries={"total_max_attempts": 1},  # the gateway retries, paced by its buckets
            max_pool_connections=MAX_POOL_CONNECTIONS,
            connect_timeout=10,
            read_timeout=30,
        )
        endpoint = scope.endpoint_url or self._endpoint_url
        return await self._stack.enter_async_context(
            session.client("ecs", endpoint_url=endpoint, config=config)
        )

    async def _session(self, scope: AwsScope) -> aioboto3.Session:
        keys = self._keys
        try:
            session = aioboto3.Session(
                aws_access_key_id=keys.access_key_id if keys else None,
                aws_secret_access_key=keys.secret_access_key if keys else None,
                aws_session_token=keys.session_token if keys else None,
                profile_name=None if keys else scope.profile,
                region_name=scope.region,
            )
        except BotoCoreError as exc:  # e.g. ProfileNotFound
            raise CredentialsError(f"{exc}: check -p/--profile or AWS_PROFILE") from exc
        if not session.region_name:
            raise CredentialsError(
                "no AWS region: pass -r/--region (plan: region) or set AWS_DEFAULT_REGION"
            )
        if await session.get_credentials() is None:
            raise CredentialsError(
                "no AWS credentials: pass -p/--profile or -k/-s, set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or run where an instance or task role is available"
            )
        if scope.assume_role:
            return await self._assume_role(session, scope.assume_role)
        return session

    async def _assume_role(self, session: aioboto3.Session, role_arn: str) -> aioboto3.Session:
        """Exchange the base credentials for the role's; every later call uses the role."""
        try:
            async with session.client("sts") as sts:
                response = await sts.assume_role(RoleArn=role_arn, RoleSessionName=SESSION_NAME)
        except (ClientError, BotoCoreError) as exc:
            raise CredentialsError(f"cannot assume role {role_arn}: {exc}") from exc
        credentials = response["Credentials"]
        return aioboto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=session.region_name,
        )
