"""Where a runner's records go, and how a reader finds every runner's records again.

Directory: each runner appends to its own file, ``<dir>/<run id>/<shard>-<runner>.jsonl``.
Every record is written and flushed before the run goes on, and a record written before
or after a change to AWS is ``fsync``ed too (with every record before it), so a SIGKILL
loses at most the record being written (a truncated last line, which readers skip) and
a power loss no transition.

S3 has no append, so each runner writes immutable objects,
``<prefix>/<run id>/<shard>-<runner>/<batch, 6 digits>.jsonl``, each holding the records
since the previous one, with ``If-None-Match: *``: no write can replace an object,
another runner's or its own. A background task writes a batch as soon as a record
comes before or after a change to AWS (a register, update, run-task or rollback step
starts, a revision is registered, a service updated, followed or rolled back, a target
finishes), at least every ``FLUSH_INTERVAL`` seconds otherwise, and a last one when the
run ends. A runner killed meanwhile loses the records since its last batch: at most the
steps its targets took since then, whose effect a resume reads back from ECS (what a
service runs and its deployments) rather than from the journal.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import anyio

from ecs_deploy_many.core.errors import JournalError
from ecs_deploy_many.journal.location import DirectoryLocation, JournalLocation, S3Location
from ecs_deploy_many.journal.records import is_run_id

__all__ = ["DirectorySink", "Part", "S3Sink", "read_run", "run_ids", "s3_client"]

FLUSH_INTERVAL = 5.0
"""Seconds (of the event loop's time) at most between two S3 batches while records wait."""
S3_DEADLINE = 60.0
"""Seconds one S3 write or read may take, retries included."""


@dataclass(frozen=True)
class Part:
    """Some of one runner's records, as stored: a file, or one S3 batch."""

    name: str
    """Where it is, for error messages: a path or an ``s3://`` URL."""
    data: bytes


class DirectorySink:
    """One runner's journal file: every record reaches the operating system before
    ``append`` returns (a SIGKILL loses none), and the disk too when it is written
    before or after a change to AWS (a power loss loses no transition).

    An ``fsync`` costs 0.2 to 4 ms on an ext4 virtual disk and holds the event loop
    meanwhile, so routine records (progress, ECS events, debug) ride on the next
    transition's ``fsync`` instead of paying their own: a power loss may lose those
    written since.
    """

    def __init__(self, location: DirectoryLocation, run_id: str, name: str) -> None:
        run_dir = location.path / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / f"{name}.jsonl"
        self._file: BinaryIO = self.path.open("xb")
        # The new file's name must survive a power loss too.
        for directory in (run_dir, run_dir.parent):
            _fsync_directory(directory)

    def append(self, line: bytes, *, urgent: bool) -> None:
        self._file.write(line)
        self._file.flush()
        if urgent:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class S3Sink:
    """One runner's batches under an S3 prefix, written by ``flushing``'s task."""

    def __init__(self, client: Any, location: S3Location, run_id: str, name: str) -> None:
        self._client = client
        self._bucket = location.bucket
        self._key = location.key(run_id, name)
        self._lines: list[bytes] = []
        self._batches = 0
        self._wake = anyio.Event()
        self.url = f"s3://{self._bucket}/{self._key}/"

    def append(self, line: bytes, *, urgent: bool) -> None:
        self._lines.append(line)
        if urgent:
            self._wake.set()

    async def flush(self) -> None:
        """Write the waiting records as the next batch; a cancellation waits for it."""
        if not self._lines:
            return
        body, self._lines = b"".join(self._lines), []
        self._batches += 1
        key = f"{self._key}/{self._batches:06d}.jsonl"
        with anyio.CancelScope(shield=True), anyio.fail_after(S3_DEADLINE):
            await self._client.put_object(Bucket=self._bucket, Key=key, Body=body, IfNoneMatch="*")

    @asynccontextmanager
    async def flushing(self, on_error: Callable[[Exception], None]) -> AsyncIterator[None]:
        """Batches written in the background meanwhile, and the last one at the end."""

        async def flush_on_demand() -> None:
            while True:
                with anyio.move_on_after(FLUSH_INTERVAL):
                    await self._wake.wait()
                self._wake = anyio.Event()
                try:
                    await self.flush()
                except Exception as error:
                    on_error(error)
                    return

        # The run's own error passes through unchanged, not wrapped in the task group's.
        failure: BaseException | None = None
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(flush_on_demand)
                try:
                    yield
                except BaseException as error:
                    failure = error
                finally:
                    group.cancel_scope.cancel()
        finally:
            try:
                await self.flush()
            except Exception as error:
                on_error(error)
        if failure is not None:
            raise failure


@asynccontextmanager
async def s3_client() -> AsyncIterator[Any]:
    """An S3 client from the environment's credentials (``AWS_ENDPOINT_URL_S3`` too)."""
    import aioboto3  # only a journal in S3 needs the SDK

    async with aioboto3.Session().client("s3") as client:
        yield client


@contextmanager
def _reading(location: S3Location) -> Iterator[None]:
    """An error of the SDK, or a read past its deadline, as a JournalError naming where."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError, TimeoutError) as error:
        raise JournalError(f"cannot read the run journal at {location}: {error}") from None


async def run_ids(location: JournalLocation) -> list[str]:
    """The ids of the runs journaled at ``location``, newest first."""
    if isinstance(location, DirectoryLocation):
        try:
            names = [p.name for p in location.path.iterdir() if p.is_dir()]
        except FileNotFoundError:
            names = []
        except OSError as error:
            raise JournalError(f"cannot read {location}: {error.strerror or error}") from None
    else:
        with _reading(location):
            async with s3_client() as client:
                names = [
                    common["Prefix"].rstrip("/").rpartition("/")[2]
                    async for page in _pages(client, location, location.key() + "/", "/")
                    for common in page.get("CommonPrefixes", [])
                ]
    return sorted((name for name in names if is_run_id(name)), reverse=True)


async def read_run(location: JournalLocation, run_id: str) -> list[list[Part]]:
    """Every runner's records of ``run_id``: one list of parts per runner, in order."""
    if isinstance(location, DirectoryLocation):
        run_dir = location.path / run_id
        try:
            files = sorted(run_dir.glob("*.jsonl"))
            return [[Part(str(path), path.read_bytes())] for path in files]
        except OSError as error:
            raise JournalError(f"cannot read {run_dir}: {error.strerror or error}") from None
    runners: dict[str, list[Part]] = {}
    with _reading(location):
        async with s3_client() as client:
            keys = [
                item["Key"]
                async for page in _pages(client, location, location.key(run_id) + "/")
                for item in page.get("Contents", [])
                if item["Key"].endswith(".jsonl")
            ]
            for key in sorted(keys):
                with anyio.fail_after(S3_DEADLINE):
                    answer = await client.get_object(Bucket=location.bucket, Key=key)
                    data = await answer["Body"].read()
                runner = key.rpartition("/")[0]
                runners.setdefault(runner, []).append(Part(f"s3://{location.bucket}/{key}", data))
    return list(runners.values())


async def _pages(
    client: Any, location: S3Location, prefix: str, delimiter: str | None = None
) -> AsyncIterator[dict[str, Any]]:
    paginator = client.get_paginator("list_objects_v2")
    options = {"Bucket": location.bucket, "Prefix": prefix.lstrip("/")}
    if delimiter:
        options["Delimiter"] = delimiter
    async for page in paginator.paginate(**options):
        yield page
