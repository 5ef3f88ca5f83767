"""Reads that say whether what a task definition references exists: ECR images, Secrets
Manager secrets, SSM parameters, IAM roles and CloudWatch Logs log groups.

Each function takes a client of its service (``aws.session.ClientPool.client``) and many
names at once, and answers each with a ``Finding``. Only AWS's own "no such thing" makes
a thing ``missing``; any other answer (access denied, throttled, unreachable) means it
could not be checked, which is not the same: a deploy role often may not read them.
No value is ever read: a secret is described, never fetched, and a parameter's value
is dropped unread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import anyio
from botocore.exceptions import BotoCoreError, ClientError

__all__ = [
    "FOUND",
    "Finding",
    "find_images",
    "find_log_groups",
    "find_parameters",
    "find_roles",
    "find_secrets",
    "unchecked",
]

CHECK_TIMEOUT: Final = 60.0
"""Seconds one service has to answer for all of its names."""
_PARALLEL_CALLS = 8
"""Calls in flight at once to a service without a batch read (DescribeSecret, GetRole)."""
_ECR_BATCH = 100
_SSM_BATCH = 10
_NO_SUCH_IMAGE = frozenset({"ImageNotFound", "ImageTagDoesNotExist"})
_DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)


@dataclass(frozen=True)
class Finding:
    """What AWS said of one referenced thing."""

    state: Literal["found", "missing", "unchecked"]
    detail: str = ""


FOUND: Final = Finding("found")


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def unchecked(error: Exception) -> Finding:
    """An answer that says nothing of the thing itself, said on one short line."""
    if isinstance(error, ClientError):
        code = _code(error)
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _DENIED or status == 403:
            shown = code if code and not code.isdigit() else f"HTTP {status}"
            return Finding("unchecked", f"access denied ({shown})")
        message = error.response.get("Error", {}).get("Message", "")
        return Finding("unchecked", _one_line(f"{code}: {message}" if message else code))
    if isinstance(error, TimeoutError):
        return Finding("unchecked", f"no answer within {CHECK_TIMEOUT:g} s")
    return Finding("unchecked", _one_line(str(error) or type(error).__name__))


def _one_line(text: str, limit: int = 200) -> str:
    """An error's text on one line, cut: some services answer an error with a page."""
    words = " ".join(text.split())
    return words if len(words) <= limit else f"{words[: limit - 3]}..."


async def _each_once(
    names: Iterable[str], ask: Callable[[str], Awaitable[Finding]]
) -> dict[str, Finding]:
    """``ask`` for every name, a few at a time; whatever goes wrong is that name's."""
    findings: dict[str, Finding] = {}
    limiter = anyio.CapacityLimiter(_PARALLEL_CALLS)

    async def one(name: str) -> None:
        async with limiter:
            try:
                with anyio.fail_after(CHECK_TIMEOUT):
                    findings[name] = await ask(name)
            except (ClientError, BotoCoreError, TimeoutError, ValueError) as error:
                findings[name] = unchecked(error)

    async with anyio.create_task_group() as group:
        for name in dict.fromkeys(names):
            group.start_soon(one, name)
    return findings


async def _batched(
    names: Sequence[str], size: int, ask: Callable[[list[str]], Awaitable[dict[str, Finding]]]
) -> dict[str, Finding]:
    """``ask`` for ``size`` names a call; a failed call leaves each of its names unchecked."""
    findings: dict[str, Finding] = {}
    unique = list(dict.fromkeys(names))
    for start in range(0, len(unique), size):
        batch = unique[start : start + size]
        try:
            with anyio.fail_after(CHECK_TIMEOUT):
                findings |= await ask(batch)
        except (ClientError, BotoCoreError, TimeoutError, ValueError) as error:
            findings |= dict.fromkeys(batch, unchecked(error))
    return findings


async def find_images(
    ecr: Any, registry: str, repository: str, references: Sequence[str]
) -> dict[str, Finding]:
    """Each tag or digest (``sha256:...``) of one ECR repository: BatchGetImage, 100 a call."""

    async def ask(batch: list[str]) -> dict[str, Finding]:
        ids = [{"imageDigest" if r.startswith("sha256:") else "imageTag": r} for r in batch]
        try:
            answer = await ecr.batch_get_image(
                registryId=registry, repositoryName=repository, imageIds=ids
            )
        except ClientError as error:
            if _code(error) != "RepositoryNotFoundException":
                raise
            gone = Finding("missing", f"repository {repository!r} does not exist in {registry}")
            return dict.fromkeys(batch, gone)
        found: dict[str, Finding] = {}
        for image in answer.get("images", []):
            image_id = image.get("imageId", {})
            for key in ("imageTag", "imageDigest"):
                if image_id.get(key) in batch:
                    found[image_id[key]] = FOUND
        for failure in answer.get("failures", []):
            image_id = failure.get("imageId", {})
            reference = image_id.get("imageTag") or image_id.get("imageDigest")
            if reference not in batch or reference in found:
                continue
            code = failure.get("failureCode", "")
            found[reference] = (
                Finding("missing", f"not in repository {repository!r}")
                if code in _NO_SUCH_IMAGE
                else Finding("unchecked", f"ECR: {code}: {failure.get('failureReason', '')}")
            )
        return {
            r: found.get(r, Finding("missing", f"not in repository {repository!r}")) for r in batch
        }

    return await _batched(references, _ECR_BATCH, ask)


async def find_secrets(secretsmanager: Any, secret_ids: Iterable[str]) -> dict[str, Finding]:
    """Each Secrets Manager secret (ARN or name): DescribeSecret, which reads no value."""

    async def ask(secret_id: str) -> Finding:
        try:
            described = await secretsmanager.describe_secret(SecretId=secret_id)
        except ClientError as error:
            if _code(error) == "ResourceNotFoundException":
                return Finding("missing", "no such secret")
            raise
        if described.get("DeletedDate"):
            return Finding("missing", "the secret is scheduled for deletion")
        return FOUND

    return await _each_once(secret_ids, ask)


async def find_parameters(ssm: Any, names: Sequence[str]) -> dict[str, Finding]:
    """Each SSM parameter (name or ARN): GetParameters, 10 a call; values are dropped."""

    async def ask(batch: list[str]) -> dict[str, Finding]:
        answer = await ssm.get_parameters(Names=batch, WithDecryption=False)
        invalid = set(answer.get("InvalidParameters", []))
        return {
            name: Finding("missing", "no such parameter") if name in invalid else FOUND
            for name in batch
        }

    return await _batched(names, _SSM_BATCH, ask)


async def find_roles(iam: Any, names: Iterable[str]) -> dict[str, Finding]:
    """Each IAM role by name: GetRole. The finding's detail is the role's ARN."""

    async def ask(name: str) -> Finding:
        try:
            role = await iam.get_role(RoleName=name)
        except ClientError as error:
            if _code(error) == "NoSuchEntity":
                return Finding("missing", "no such role")
            raise
        return Finding("found", str(role.get("Role", {}).get("Arn", "")))

    return await _each_once(names, ask)


async def find_log_groups(logs: Any, names: Iterable[str]) -> dict[str, Finding]:
    """Each CloudWatch Logs log group by name: DescribeLogGroups by prefix, paged until
    the name shows or the prefix's groups end."""

    async def ask(name: str) -> Finding:
        token: dict[str, str] = {}
        while True:
            answer = await logs.describe_log_groups(logGroupNamePrefix=name, limit=50, **token)
            if any(group.get("logGroupName") == name for group in answer.get("logGroups", [])):
                return FOUND
            if not answer.get("nextToken"):
                return Finding("missing", "no such log group")
            token = {"nextToken": answer["nextToken"]}

    return await _each_once(names, ask)
