"""The ECS gateway: every ECS call the pipeline makes, paced, retried and translated.

The pipeline sees only this module's ``Gateway`` protocol. ``AioBotoGateway`` is the one
implementation: it spends tokens from the client-side buckets before each call (so a
fleet never outruns ECS's throttling), retries throttling and the transient failures of
reads and service updates (server errors, broken connections) for as long as the
caller's deadline allows, repeats other changes a few times (each repeat made so that
it cannot double the change), and turns botocore's ``ClientError`` into ``AwsError``
with the operation and the AWS error code. An ``AwsError`` from a read or an update is
therefore definitive (access denied, no such cluster).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import botocore.exceptions
import structlog
from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from ecs_deploy_many.core.clock import Clock
from ecs_deploy_many.core.errors import AwsError
from ecs_deploy_many.core.memo import AsyncMemo
from ecs_deploy_many.core.ratelimit import (
    ECS_BUCKETS,
    BucketSpec,
    TokenBucket,
    category_of,
    client_side,
)

__all__ = [
    "AioBotoGateway",
    "Gateway",
    "TaskDefinition",
    "update_in_effect",
]

log = structlog.get_logger(__name__)

THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})
SERVER_RETRIES = 4
"""How many times a change is repeated after a transient failure (reads: until cancelled)."""
TRANSIENT_ERRORS = (
    botocore.exceptions.ConnectionError,
    botocore.exceptions.HTTPClientError,
    botocore.exceptions.IncompleteReadError,
    aiohttp.ClientError,
    TimeoutError,
)
"""Failures to reach ECS or to hear its answer: the next attempt may well succeed."""
DESCRIBE_SERVICES_BATCH = 10
DESCRIBE_TASKS_BATCH = 100
DESCRIBE_SERVICE_DEPLOYMENTS_BATCH = 20
PACED_AS = {
    "ListServiceDeployments": "service_read",
    "DescribeServiceDeployments": "service_read",
    "DescribeServiceRevisions": "service_read",
    "StopServiceDeployment": "service_modify",
}
"""The bucket that paces operations ECS's throttling table does not list [unconfirmed]:
the service-deployment calls read and change services, so they spend those budgets."""


@dataclass(frozen=True)
class TaskDefinition:
    """A described revision and the tags ECS keeps beside it."""

    body: dict[str, Any]
    tags: list[dict[str, str]]

    @property
    def arn(self) -> str:
        return str(self.body["taskDefinitionArn"])


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

    async def list_service_deployments(
        self, cluster: str, service: str, *, created_after: float
    ) -> list[dict[str, Any]]: ...

    async def describe_service_deployments(
        self, arns: Sequence[str]
    ) -> dict[str, dict[str, Any] | None]: ...

    async def describe_service_revisions(
        self, arns: Sequence[str]
    ) -> dict[str, dict[str, Any] | None]: ...

    async def stop_service_deployment(self, arn: str) -> None: ...


def _reads(operation: str) -> bool:
    """Whether ``operation`` only reads, so that repeating it can change nothing."""
    return operation.startswith(("Describe", "List", "Get"))


def update_in_effect(
    service: Mapping[str, Any], params: Mapping[str, Any], earlier: set[Any] | None
) -> bool:
    """Whether ``service`` already is as the UpdateService ``params`` ask.

    ``earlier`` holds, for a forced deployment, the deployments that predate the call:
    the update took effect only if a newer one is PRIMARY.
    """
    primary = next(
        (d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), None
    )
    if primary is None:
        return False
    wanted = params.get("taskDefinition")
    running = str(primary.get("taskDefinition", ""))
    if wanted and running != wanted and not running.endswith(f"/{wanted}"):
        return False
    if "desiredCount" in params and service.get("desiredCount") != params["desiredCount"]:
        return False
    return earlier is None or primary.get("id") not in earlier


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
        self._service_revisions: dict[str, dict[str, Any]] = {}

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """Call ``operation``, paced by its bucket; retry what may succeed next time.

        Throttling is retried until the caller's deadline cancels the call, and so is a
        transient failure (a server error, a broken connection) of a read: repeating a
        read is harmless, and the caller's deadline, not a retry count, says how long
        an answer is worth waiting for. A change is repeated only a few times.
        """
        attempts = None if _reads(operation) else SERVER_RETRIES + 1
        return await self._call(operation, params, attempts=attempts)

    async def _call(
        self,
        operation: str,
        params: Mapping[str, Any],
        *,
        attempts: int | None,
        took_effect: Callable[[], Awaitable[dict[str, Any] | None]] | None = None,
    ) -> dict[str, Any]:
        """Call ``operation`` until it answers, the caller is cancelled, or ``attempts``
        transient failures (None: no limit) have been seen.

        After each transient failure of a change, ``took_effect`` may find that the
        failed attempt was carried out all the same: its answer then stands for the
        call's, and the change is not repeated.
        """
        category = category_of(operation) or PACED_AS.get(operation)
        bucket = self._buckets.get(category) if category else None
        method = getattr(self._client, xform_name(operation))
        throttles = failures = 0
        while True:
            if bucket is not None:
                await bucket.take()
            try:
                response: dict[str, Any] = await method(**params)
            except ClientError as exc:
                error = exc.response.get("Error", {})
                code = str(error.get("Code", "Unknown"))
                status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
                if code in THROTTLING_CODES:
                    # Someone else shares the account's bucket: ours was optimistic.
                    if bucket is not None:
                        bucket.drain()
                    await self._clock.sleep(self._backoff(throttles))
                    throttles += 1
                    continue
                failure = AwsError(operation, code, str(error.get("Message", "")))
                if status < 500:
                    raise failure from exc
                cause: Exception = exc
            except ParamValidationError as exc:  # our request is wrong: retrying cannot help
                raise AwsError(operation, "ParamValidationError", str(exc)) from exc
            except TRANSIENT_ERRORS as exc:
                failure, cause = AwsError(operation, type(exc).__name__, str(exc)), exc
            except BotoCoreError as exc:  # e.g. no credentials: retrying cannot help
                raise AwsError(operation, type(exc).__name__, str(exc)) from exc
            else:
                if self._verbose:
                    meta = response.get("ResponseMetadata", {})
                    log.debug(
                        "aws_call",
                        operation=operation,
                        request_id=meta.get("RequestId"),
                        http_status=meta.get("HTTPStatusCode"),
                        retries=throttles + failures,
                    )
                return response
            failures += 1
            if took_effect is not None and (answer := await took_effect()) is not None:
                return answer
            if attempts is not None and failures >= attempts:
                raise failure from cause
            await self._clock.sleep(self._backoff(failures))

    def _backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff, in simulated seconds."""
        return self._random.uniform(0.0, min(20.0, 0.5 * 2 ** min(attempt, 6)))

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
        """UpdateService; repeated after transient failures, like a read, until the
        caller's deadline, and never doubling the change.

        A failed attempt may have been carried out all the same. ECS starts a deployment
        only when an update changes something or forces one, so repeating an update
        that took effect changes nothing more. Still, before each repeat DescribeServices
        says whether the service already is as asked (for a forced deployment: whether
        a deployment newer than the call has started), and then its answer stands.
        """
        where = {"cluster": params["cluster"]} if params.get("cluster") else {}
        service_name = str(params["service"])

        async def describe() -> dict[str, Any]:
            response = await self.call("DescribeServices", **where, services=[service_name])
            found: list[dict[str, Any]] = response.get("services", [])
            return found[0] if found else {}

        earlier = None
        if params.get("forceNewDeployment"):
            earlier = {d.get("id") for d in (await describe()).get("deployments", [])}

        async def took_effect() -> dict[str, Any] | None:
            service = await describe()
            return {"service": service} if update_in_effect(service, params, earlier) else None

        response = await self._call("UpdateService", params, attempts=None, took_effect=took_effect)
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
        """RunTask; one client token for every attempt, so a repeat never starts a second task."""
        params.setdefault("clientToken", uuid.uuid4().hex)
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

    async def list_service_deployments(
        self, cluster: str, service: str, *, created_after: float
    ) -> list[dict[str, Any]]:
        """The service's deployments created after ``created_after`` (epoch seconds), as
        ECS lists them (``ServiceDeploymentBrief``s), every page."""
        params: dict[str, Any] = {
            "cluster": cluster,
            "service": service,
            "createdAt": {"after": created_after},
        }
        briefs: list[dict[str, Any]] = []
        while True:
            response = await self.call("ListServiceDeployments", **params)
            briefs.extend(response.get("serviceDeployments", []))
            token = response.get("nextToken")
            if not token:
                return briefs
            params["nextToken"] = token

    async def describe_service_deployments(
        self, arns: Sequence[str]
    ) -> dict[str, dict[str, Any] | None]:
        """Describe service deployments twenty per call; a missing one maps to None."""
        return await self._describe_by_arn(
            "DescribeServiceDeployments",
            "serviceDeploymentArns",
            "serviceDeployments",
            "serviceDeploymentArn",
            arns,
        )

    async def describe_service_revisions(
        self, arns: Sequence[str]
    ) -> dict[str, dict[str, Any] | None]:
        """Describe service revisions twenty per call; each is asked once, as a revision
        never changes."""
        wanted = [arn for arn in dict.fromkeys(arns) if arn not in self._service_revisions]
        found = await self._describe_by_arn(
            "DescribeServiceRevisions",
            "serviceRevisionArns",
            "serviceRevisions",
            "serviceRevisionArn",
            wanted,
        )
        self._service_revisions.update({arn: rev for arn, rev in found.items() if rev})
        return {arn: self._service_revisions.get(arn) for arn in arns}

    async def stop_service_deployment(self, arn: str) -> None:
        """Ask ECS to stop a service deployment and roll it back to the revision before."""
        await self.call("StopServiceDeployment", serviceDeploymentArn=arn, stopType="ROLLBACK")

    async def _describe_by_arn(
        self, operation: str, param: str, key: str, arn_key: str, arns: Sequence[str]
    ) -> dict[str, dict[str, Any] | None]:
        """Describe ``arns`` twenty per call (both operations' limit), by ARN."""
        found: dict[str, dict[str, Any] | None] = dict.fromkeys(arns)
        for start in range(0, len(arns), DESCRIBE_SERVICE_DEPLOYMENTS_BATCH):
            batch = list(arns[start : start + DESCRIBE_SERVICE_DEPLOYMENTS_BATCH])
            response = await self.call(operation, **{param: batch})
            for item in response.get(key, []):
                found[item[arn_key]] = item
        return found
