"""The ECS gateway: every ECS call the pipeline makes, paced, retried and translated.

The pipeline sees only this module's ``Gateway`` protocol. ``AioBotoGateway`` is the one
implementation: it spends tokens from the client-side buckets before each call (so a
fleet never outruns ECS's throttling), retries throttling for as long as the caller's
deadline allows, retries server errors a few times, and turns botocore's ``ClientError``
into ``AwsError`` with the operation and the AWS error code.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import structlog
from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from ecs_deploy_many.aws.ratelimit import (
    ECS_BUCKETS,
    BucketSpec,
    TokenBucket,
    category_of,
    client_side,
)
from ecs_deploy_many.clock import Clock
from ecs_deploy_many.errors import AwsError
from ecs_deploy_many.memo import AsyncMemo

__all__ = ["AioBotoGateway", "Gateway", "GatewayStatistics", "TaskDefinition"]

log = structlog.get_logger(__name__)

THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})
SERVER_RETRIES = 4
DESCRIBE_SERVICES_BATCH = 10
DESCRIBE_TASKS_BATCH = 100


@dataclass(frozen=True)
class TaskDefinition:
    """A described revision and the tags ECS keeps beside it."""

    body: dict[str, Any]
    tags: list[dict[str, str]]

    @property
    def arn(self) -> str:
        return str(self.body["taskDefinitionArn"])


@dataclass
class GatewayStatistics:
    """What a gateway spent: calls per operation, throttled answers, retries."""

    calls: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)
    retried_server_errors: int = 0


class Gateway(Protocol):
    """The ECS calls the pipeline needs."""

    async def describe_services(
        self, cluster: str, services: Sequence[str]
    ) -> dict[str, dict[str, Any] | None]: ...

    async def describe_task_definition(self, name: str) -> TaskDefinition: ...

    async def register_task_definition(self, registration: Mapping[str, Any]) -> TaskDefinition: ...

    async def update_service(self, **params: Any) -> dict[str, Any]: ...

    async def list_task_definitions(self, family: str) -> list[str]: ...

    async def deregister_task_definition(self, arn: str) -> None: ...

    async def run_task(self, **params: Any) -> dict[str, Any]: ...

    async def describe_tasks(self, cluster: str, tasks: Sequence[str]) -> dict[str, Any]: ...

    async def list_clusters(self) -> list[str]: ...

    async def list_services(self, cluster: str) -> list[str]: ...

    async def list_tasks(self, cluster: str, *, family: str) -> list[str]: ...


class AioBotoGateway:
    """``Gateway`` over one aiobotocore ECS client, with client-side token buckets."""

    def __init__(
        self,
        client: Any,
        clock: Clock,
        *,
        bucket_specs: Mapping[str, BucketSpec] | None = None,
        verbose: bool = False,
    ) -> None:
        self._client = client
        self._clock = clock
        self._verbose = verbose
        specs = {**ECS_BUCKETS, **(bucket_specs or {})}
        self._buckets = {
            name: TokenBucket(client_side(spec), clock) for name, spec in specs.items()
        }
        self._random = random.Random()
        self._revisions: AsyncMemo[str, TaskDefinition] = AsyncMemo()
        self.statistics = GatewayStatistics()

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """Call ``operation``, paced by its bucket; retry throttling until cancelled."""
        category = category_of(operation)
        bucket = self._buckets.get(category) if category else None
        method = getattr(self._client, xform_name(operation))
        throttles = server_errors = 0
        while True:
            if bucket is not None:
                await bucket.take()
            self.statistics.calls[operation] += 1
            try:
                response: dict[str, Any] = await method(**params)
            except ClientError as exc:
                error = exc.response.get("Error", {})
                code = str(error.get("Code", "Unknown"))
                status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
                if code in THROTTLING_CODES:
                    # Someone else shares the account's bucket: ours was optimistic.
                    self.statistics.throttled[operation] += 1
                    if bucket is not None:
                        bucket.drain()
                    await self._clock.sleep(self._backoff(throttles))
                    throttles += 1
                    continue
                if status >= 500 and server_errors < SERVER_RETRIES:
                    server_errors += 1
                    self.statistics.retried_server_errors += 1
                    await self._clock.sleep(self._backoff(server_errors))
                    continue
                raise AwsError(operation, code, str(error.get("Message", ""))) from exc
            except ParamValidationError as exc:  # our request is wrong: retrying cannot help
                raise AwsError(operation, "ParamValidationError", str(exc)) from exc
            except (BotoCoreError, aiohttp.ClientError) as exc:
                if server_errors < SERVER_RETRIES:
                    server_errors += 1
                    self.statistics.retried_server_errors += 1
                    await self._clock.sleep(self._backoff(server_errors))
                    continue
                raise AwsError(operation, type(exc).__name__, str(exc)) from exc
            if self._verbose:
                meta = response.get("ResponseMetadata", {})
                log.debug(
                    "aws_call",
                    operation=operation,
                    request_id=meta.get("RequestId"),
                    http_status=meta.get("HTTPStatusCode"),
                    retries=throttles + server_errors,
                )
            return response

    def _backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff, in simulated seconds."""
        return self._random.uniform(0.0, min(20.0, 0.5 * 2**attempt))

    async def describe_services(
        self, cluster: str, services: Sequence[str]
    ) -> dict[str, dict[str, Any] | None]:
        """Describe services ten per call; a missing service maps to None."""
        found: dict[str, dict[str, Any] | None] = dict.fromkeys(services)
        for start in range(0, len(services), DESCRIBE_SERVICES_BATCH):
            batch = list(services[start : start + DESCRIBE_SERVICES_BATCH])
            response = await self.call("DescribeServices", cluster=cluster, services=batch)
            for service in response.get("services", []):
                if service.get("status") != "INACTIVE":
                    found[service["serviceName"]] = service
        return found

    async def describe_task_definition(self, name: str) -> TaskDefinition:
        """Describe a revision; a named revision (``family:N`` or an ARN) is asked once."""

        async def describe() -> TaskDefinition:
            response = await self.call(
                "DescribeTaskDefinition", taskDefinition=name, include=["TAGS"]
            )
            return TaskDefinition(response["taskDefinition"], list(response.get("tags", [])))

        if ":" not in name:  # a bare family means its newest revision, which may change
            return await describe()
        # A revision's content never changes, so describing it again would only spend
        # the task-definition read budget.
        return await self._revisions.get(name, describe)

    async def register_task_definition(self, registration: Mapping[str, Any]) -> TaskDefinition:
        response = await self.call("RegisterTaskDefinition", **registration)
        return TaskDefinition(response["taskDefinition"], list(response.get("tags", [])))

    async def update_service(self, **params: Any) -> dict[str, Any]:
        response = await self.call("UpdateService", **params)
        service: dict[str, Any] = response["service"]
        return service

    async def list_task_definitions(self, family: str) -> list[str]:
        """Every ACTIVE revision ARN of exactly ``family``, oldest first."""
        arns: list[str] = []
        params: dict[str, Any] = {"familyPrefix": family, "status": "ACTIVE", "sort": "ASC"}
        while True:
            response = await self.call("ListTaskDefinitions", **params)
            arns.extend(response.get("taskDefinitionArns", []))
            token = response.get("nextToken")
            if not token:
                return arns
            params["nextToken"] = token

    async def deregister_task_definition(self, arn: str) -> None:
        await self.call("DeregisterTaskDefinition", taskDefinition=arn)

    async def run_task(self, **params: Any) -> dict[str, Any]:
        return await self.call("RunTask", **params)

    async def describe_tasks(self, cluster: str, tasks: Sequence[str]) -> dict[str, Any]:
        """Describe tasks a hundred per call, merging tasks and failures."""
        merged: dict[str, Any] = {"tasks": [], "failures": []}
        for start in range(0, len(tasks), DESCRIBE_TASKS_BATCH):
            batch = list(tasks[start : start + DESCRIBE_TASKS_BATCH])
            response = await self.call("DescribeTasks", cluster=cluster, tasks=batch)
            merged["tasks"].extend(response.get("tasks", []))
            merged["failures"].extend(response.get("failures", []))
        return merged

    async def list_clusters(self) -> list[str]:
        """Every cluster ARN of the account and region."""
        return await self._every("ListClusters", "clusterArns")

    async def list_services(self, cluster: str) -> list[str]:
        """Every service ARN of ``cluster``."""
        return await self._every("ListServices", "serviceArns", cluster=cluster)

    async def list_tasks(self, cluster: str, *, family: str) -> list[str]:
        """The ARNs of ``cluster``'s tasks of ``family`` that are meant to run."""
        return await self._every("ListTasks", "taskArns", cluster=cluster, family=family)

    async def _every(self, operation: str, key: str, **params: Any) -> list[str]:
        """Every item of a paginated list operation, in pages of 100 (ECS's largest)."""
        params["maxResults"] = 100
        items: list[str] = []
        while True:
            response = await self.call(operation, **params)
            items.extend(response.get(key, []))
            token = response.get("nextToken")
            if not token:
                return items
            params["nextToken"] = token
