"""Credentials, regions and the client pool: one ECS client per (credentials, region).

Every target with the same ``AwsScope`` shares one client, one set of token buckets and
one service watcher per cluster, so the whole run spends one account's API budget
through one door. An assumed role's credentials are fetched once per scope and renewed
before they expire, so a run may outlast the role session.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import aioboto3
import anyio
from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioRefreshableCredentials
from aiobotocore.session import AioSession
from anyio.abc import TaskGroup
from botocore.exceptions import BotoCoreError, ClientError

from ecs_deploy_many.aws.gateway import AioBotoGateway
from ecs_deploy_many.aws.watch import PollPolicy, ServiceDeploymentWatcher, ServiceWatcher
from ecs_deploy_many.core.clock import Clock
from ecs_deploy_many.core.endpoints import endpoint_url_problem, region_problem
from ecs_deploy_many.core.errors import CredentialsError
from ecs_deploy_many.core.ratelimit import BucketSpec
from ecs_deploy_many.core.scope import AwsScope

__all__ = ["ClientPool", "Hints", "StaticKeys"]

SESSION_NAME = "ecs-deploy-many"
# Connections per client: polls, updates and registrations of many targets share them.
MAX_POOL_CONNECTIONS = 64


@dataclass(frozen=True)
class StaticKeys:
    """Access keys given on the command line; never printed."""

    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Hints:
    """Where the caller's users name a region, a profile or keys, for the error messages.

    Each front door has its own flags or plan keys; the defaults name none of them.
    """

    region: str = "give the target a region"
    """What to do for a region, before the environment variables (``pass -r/--region``)."""
    credentials: str = ""
    """What to do for credentials, before the environment variables."""
    profile: str = "the profile name"
    """Where a profile name came from, besides AWS_PROFILE."""


@dataclass
class _Account:
    """What targets sharing one scope share."""

    gateway: AioBotoGateway
    watchers: dict[str, ServiceWatcher] = field(default_factory=dict)
    deployment_watcher: ServiceDeploymentWatcher | None = None


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
        hints: Hints | None = None,
        role_session_seconds: int | None = None,
        http_session_cls: Callable[..., Any] | None = None,
    ) -> None:
        """``role_session_seconds`` is how long each set of assumed-role credentials lasts
        (STS's DurationSeconds, 900 or more); None leaves STS's default of one hour.
        ``http_session_cls`` replaces aiobotocore's HTTP session (aiohttp): the seam
        through which tests and rehearsals reach a simulator in-process."""
        self._clock = clock
        self._keys = keys
        self._endpoint_url = endpoint_url
        self._bucket_specs = dict(bucket_specs or {})
        self._poll_policy = poll_policy
        self._verbose = verbose
        self._hints = hints or Hints()
        self._role_session_seconds = role_session_seconds
        self._transport: dict[str, Any] = (
            {} if http_session_cls is None else {"http_session_cls": http_session_cls}
        )
        self._accounts: dict[AwsScope, _Account] = {}
        self._clients: dict[tuple[str, AwsScope], Any] = {}
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

    async def deployment_watcher(self, scope: AwsScope) -> ServiceDeploymentWatcher:
        """The one service-deployment watcher of ``scope``, started on first use."""
        account = await self._account(scope)
        if account.deployment_watcher is None:
            assert self._task_group is not None, "ClientPool used outside 'async with'"
            watcher = ServiceDeploymentWatcher(account.gateway, self._clock, self._poll_policy)
            account.deployment_watcher = watcher
            self._task_group.start_soon(watcher.run)
        return account.deployment_watcher

    async def cloudwatch(self, scope: AwsScope) -> Any:
        """A CloudWatch client for ``scope`` (``aws.alarms`` paces its calls)."""
        return await self.client("cloudwatch", scope)

    async def client(self, service: str, scope: AwsScope) -> Any:
        """A client of another AWS service (CloudWatch, ECR, IAM...) for ``scope``, created
        on first use; the SDK retries its calls. Its endpoint is the SDK's own
        (``AWS_ENDPOINT_URL_<SERVICE>`` included), never the ECS endpoint."""
        async with self._lock:
            client = self._clients.get((service, scope))
            if client is None:
                session, region = await self._session(scope)
                config = AioConfig(retries={"mode": "standard", "total_max_attempts": 3})
                try:
                    client = await self._stack.enter_async_context(
                        session.client(service, region_name=region, config=config)
                    )
                except (BotoCoreError, ValueError) as exc:
                    raise CredentialsError(
                        f"cannot create a {service} client in {region}: {exc}"
                    ) from exc
                self._clients[service, scope] = client
            return client

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
        """The scope's ECS client; anything botocore refuses is a CredentialsError."""
        endpoint = scope.endpoint_url or self._endpoint_url
        if endpoint is not None and (problem := endpoint_url_problem(endpoint)):
            raise CredentialsError(f"endpoint URL: {problem}")
        session, region = await self._session(scope)
        config = AioConfig(
            retries={"total_max_attempts": 1},  # the gateway retries, paced by its buckets
            max_pool_connections=MAX_POOL_CONNECTIONS,
            connect_timeout=10,
            read_timeout=30,
            **self._transport,
        )
        try:
            return await self._stack.enter_async_context(
                session.client("ecs", region_name=region, endpoint_url=endpoint, config=config)
            )
        except (BotoCoreError, ValueError) as exc:  # e.g. a bad AWS_ENDPOINT_URL_ECS
            raise CredentialsError(f"cannot create an ECS client in {region}: {exc}") from exc

    async def _session(self, scope: AwsScope) -> tuple[aioboto3.Session, str]:
        """The session whose credentials the scope's calls use, and the region they go to."""
        keys = self._keys
        hints = self._hints
        try:
            session = aioboto3.Session(
                aws_access_key_id=keys.access_key_id if keys else None,
                aws_secret_access_key=keys.secret_access_key if keys else None,
                aws_session_token=keys.session_token if keys else None,
                profile_name=None if keys else scope.profile,
                region_name=scope.region or os.environ.get("AWS_REGION") or None,
            )
            region = self._region(scope, session.region_name)
            credentials = await session.get_credentials()
        except BotoCoreError as exc:  # e.g. ProfileNotFound
            raise CredentialsError(f"{exc}: check {hints.profile} or AWS_PROFILE") from exc
        if credentials is None:
            hint = f"{hints.credentials}, " if hints.credentials else ""
            raise CredentialsError(
                f"no AWS credentials: {hint}set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "or AWS_PROFILE, or run where an instance or task role is available"
            )
        if scope.assume_role:
            return await self._assume_role(session, scope.assume_role, region), region
        return session, region

    def _region(self, scope: AwsScope, resolved: str | None) -> str:
        """Check the region the SDKs' order gives: the scope's, AWS_REGION,
        AWS_DEFAULT_REGION, the profile's (botocore itself reads only the last two)."""
        if not resolved:
            raise CredentialsError(
                f"no AWS region: {self._hints.region}, or set AWS_REGION or "
                "AWS_DEFAULT_REGION, or a region in the AWS profile"
            )
        if problem := region_problem(resolved):
            source = next(
                (
                    name
                    for name, value in (
                        ("region", scope.region),
                        ("AWS_REGION", os.environ.get("AWS_REGION")),
                        ("AWS_DEFAULT_REGION", os.environ.get("AWS_DEFAULT_REGION")),
                    )
                    if value
                ),
                "the AWS profile's region",
            )
            raise CredentialsError(f"{source}: {problem}")
        return resolved

    async def _assume_role(
        self, base: aioboto3.Session, role_arn: str, region: str
    ) -> aioboto3.Session:
        """A session with the role's credentials, fetched now and renewed before expiry.

        botocore's refreshable credentials call STS again once fewer than 15 minutes
        of the role session remain, so a run may last longer than the session.
        """
        seconds = self._role_session_seconds
        duration = {} if seconds is None else {"DurationSeconds": seconds}

        async def fetch() -> dict[str, str]:
            try:
                async with base.client("sts", region_name=region) as sts:
                    response = await sts.assume_role(
                        RoleArn=role_arn, RoleSessionName=SESSION_NAME, **duration
                    )
            except (ClientError, BotoCoreError, ValueError) as exc:  # ValueError: a bad STS URL
                raise CredentialsError(f"cannot assume role {role_arn}: {exc}") from exc
            credentials = response["Credentials"]
            return {
                "access_key": credentials["AccessKeyId"],
                "secret_key": credentials["SecretAccessKey"],
                "token": credentials["SessionToken"],
                "expiry_time": credentials["Expiration"].isoformat(),
            }

        role = AioSession()
        # botocore has no public setter for refreshable credentials; this is the attribute
        # its own session fills from the credential chain.
        role._credentials = AioRefreshableCredentials.create_from_metadata(  # type: ignore[attr-defined]
            await fetch(), refresh_using=fetch, method="assume-role"
        )
        return aioboto3.Session(botocore_session=role, region_name=region)
