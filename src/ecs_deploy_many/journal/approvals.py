"""Approvals of a run's waves, kept beside its journal: whoever can reach the journal
(a directory, or the S3 prefix runners on other machines write to) can approve.

One JSON object per approved wave, ``<run id>/approvals/<wave>.json`` (the wave's name
percent-encoded), holding who approved it, when (UTC) and their note. Readers of the
journal's records skip it (they read ``*.jsonl``). The first approval stands: a file is
created exclusively, an S3 object written with ``If-None-Match: *``; a second
``approve`` reports the first. Every runner (each shard) of the run reads the same one.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import anyio

from ecs_deploy_many.core.errors import JournalError
from ecs_deploy_many.journal.location import DirectoryLocation, JournalLocation, S3Location
from ecs_deploy_many.journal.stores import S3_DEADLINE, s3_client

__all__ = ["JournalApprovals", "WaveApproval", "now_utc", "read_approval", "record_approval"]


@dataclass(frozen=True)
class WaveApproval:
    """One wave's approval, as recorded."""

    wave: str
    by: str
    at: str
    """UTC, ISO-8601, to the second."""
    note: str = ""


def _key(run_id: str, wave: str) -> str:
    return f"{run_id}/approvals/{quote(wave, safe='')}.json"


def _parsed(data: bytes, where: str) -> WaveApproval:
    try:
        item = json.loads(data)
        return WaveApproval(item["wave"], item["by"], item["at"], item.get("note", ""))
    except (ValueError, KeyError, TypeError):
        raise JournalError(f"{where} is no approval record") from None


async def read_approval(location: JournalLocation, run_id: str, wave: str) -> WaveApproval | None:
    """``wave``'s approval in run ``run_id``, or None; JournalError when it cannot be read."""
    if isinstance(location, DirectoryLocation):
        path = location.path / _key(run_id, wave)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise JournalError(f"cannot read {path}: {error.strerror or error}") from None
        return _parsed(data, str(path))
    key = location.key(_key(run_id, wave))
    url = f"s3://{location.bucket}/{key}"
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        async with s3_client() as client:
            with anyio.fail_after(S3_DEADLINE):
                answer = await client.get_object(Bucket=location.bucket, Key=key)
                data = await answer["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise JournalError(f"cannot read {url}: {error}") from None
    except (BotoCoreError, TimeoutError) as error:
        raise JournalError(f"cannot read {url}: {error}") from None
    return _parsed(data, url)


async def record_approval(
    location: JournalLocation, run_id: str, approval: WaveApproval
) -> WaveApproval:
    """Record ``approval`` unless the wave has one: the approval that stands."""
    body = json.dumps(asdict(approval), indent=2).encode() + b"\n"
    if isinstance(location, DirectoryLocation):
        return _record_in_directory(location.path / _key(run_id, approval.wave), body, approval)
    return await _record_in_s3(location, run_id, approval, body)


def _record_in_directory(path: Path, body: bytes, approval: WaveApproval) -> WaveApproval:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("xb") as file:
            file.write(body)
            file.flush()
            os.fsync(file.fileno())
    except FileExistsError:
        return _parsed(path.read_bytes(), str(path))
    except OSError as error:
        raise JournalError(f"cannot write {path}: {error.strerror or error}") from None
    return approval


async def _record_in_s3(
    location: S3Location, run_id: str, approval: WaveApproval, body: bytes
) -> WaveApproval:
    from botocore.exceptions import BotoCoreError, ClientError

    key = location.key(_key(run_id, approval.wave))
    url = f"s3://{location.bucket}/{key}"
    try:
        async with s3_client() as client:
            with anyio.fail_after(S3_DEADLINE):
                await client.put_object(Bucket=location.bucket, Key=key, Body=body, IfNoneMatch="*")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "PreconditionFailed":
            first = await read_approval(location, run_id, approval.wave)
            if first is not None:
                return first
        raise JournalError(f"cannot write {url}: {error}") from None
    except (BotoCoreError, TimeoutError) as error:
        raise JournalError(f"cannot write {url}: {error}") from None
    return approval


@dataclass(frozen=True)
class JournalApprovals:
    """A run's approvals, as the engine's gates read them (``deploy.gates.Approvals``)."""

    location: JournalLocation
    run_id: str
    journal_option: str | None = None
    """``--journal`` as the run was given it, for the command that approves."""

    async def approval(self, wave: str) -> WaveApproval | None:
        return await read_approval(self.location, self.run_id, wave)

    def how_to_approve(self, wave: str) -> str:
        where = f" --journal {self.journal_option}" if self.journal_option else ""
        return f"ecs-deploy-many approve {self.run_id} {shlex.quote(wave)}{where}"


def now_utc() -> str:
    """The time an approval records: UTC, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
