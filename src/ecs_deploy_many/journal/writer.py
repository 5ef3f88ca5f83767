"""Journaling a run: a subscriber of its events, plus its start and its end.

``open_journal`` writes ``run_started`` before it returns, so a journal that cannot be
written stops the run before anything changes in AWS (a ``JournalError``). The
``JournalWriter`` it yields is an ``Observer``: each event becomes a record at once, in
the call (no thread, no queue for a directory; an S3 journal's batches go out from a
task of their own). ``finish`` writes ``run_finished``.

A journal that fails once the run is going never stops a deploy in flight: the writer
records why in ``error``, calls ``on_failure`` once (the command says it loudly and the
run exits 1, as for any output it could not write), and writes nothing more, so what
was journaled stays a clean prefix of the run.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

from ecs_deploy_many import __version__
from ecs_deploy_many.core.clock import Clock
from ecs_deploy_many.core.errors import JournalError
from ecs_deploy_many.core.events import EventName, TargetEvent
from ecs_deploy_many.core.redact import Redactor
from ecs_deploy_many.journal.location import DirectoryLocation, JournalLocation
from ecs_deploy_many.journal.records import (
    RunStart,
    event_record,
    new_runner_id,
    run_finished_record,
    run_started_record,
)
from ecs_deploy_many.journal.stores import DirectorySink, S3Sink, s3_client

__all__ = ["JournalWriter", "RunOutcome", "open_journal"]

CHANGING_STEPS = frozenset({"register", "update", "run_task", "rollback"})
"""Steps whose change a resume must know of: their start is made durable before they
call AWS. (Cleanup deregisters revisions too, but nothing later depends on it.)"""
CHANGED = frozenset(
    {
        EventName.REGISTERED,
        EventName.SERVICE_UPDATED,
        EventName.ATTACHED,
        EventName.ROLLBACK_STARTED,
        EventName.ROLLED_BACK,
        EventName.DEPLOYMENT_STOPPED,
        EventName.TARGET_FINISHED,
    }
)
"""Events saying such a change happened or is under way (a deployment the target
follows, the revision a rollback restores), or a target's final state."""


class RunOutcome(Protocol):
    """How a run ended, as ``run_finished`` records it (``deploy.engine.RunResult``)."""

    @property
    def verdict(self) -> str: ...
    @property
    def halted(self) -> str | None: ...
    @property
    def failures(self) -> int: ...
    @property
    def started_at(self) -> float | None: ...
    @property
    def finished_at(self) -> float | None: ...
    @property
    def rolled_back_by_policy(self) -> Collection[str]: ...
    def statistics(self) -> dict[str, int]: ...


class _Sink(Protocol):
    def append(self, line: bytes, *, urgent: bool) -> None: ...


def _line(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":"), default=str).encode() + b"\n"


def _urgent(event: TargetEvent) -> bool:
    """A record written before or after a change to AWS: an S3 journal sends it at once."""
    if event.event is EventName.STEP_STARTED:
        return event.step in CHANGING_STEPS
    return event.event in CHANGED


class JournalWriter:
    """The run's journal as an ``Observer``; ``finish`` ends it."""

    def __init__(
        self,
        sink: _Sink,
        *,
        run_id: str,
        where: str,
        clock: Clock,
        redactor: Redactor,
        on_failure: Callable[[str], None],
    ) -> None:
        self.run_id = run_id
        self.where = where
        """The runner's file or S3 prefix, for messages."""
        self.error: str | None = None
        """Why the journal stopped before the run ended, when it did."""
        self._sink = sink
        self._clock = clock
        self._redactor = redactor
        self._on_failure = on_failure
        self._seq = 1  # run_started is 0

    def __call__(self, event: TargetEvent) -> None:
        self._write(event_record(event, self._seq, self._redactor), urgent=_urgent(event))

    def finish(self, outcome: RunOutcome) -> None:
        """Write ``run_finished``: the run's outcome is known."""
        record = run_finished_record(
            self._seq,
            self._clock.now(),
            verdict=str(outcome.verdict),
            halted=outcome.halted,
            counts=outcome.statistics(),
            failures=outcome.failures,
            started_at=outcome.started_at,
            finished_at=outcome.finished_at,
            rolled_back_by_policy=sorted(outcome.rolled_back_by_policy),
            redactor=self._redactor,
        )
        self._write(record, urgent=True)

    def failed(self, error: BaseException) -> None:
        """The journal cannot be written any more: say so once, then write nothing."""
        if self.error is not None:
            return
        cause = getattr(error, "strerror", None) or str(error) or type(error).__name__
        self.error = f"the run journal at {self.where} could not be written: {cause}"
        self._on_failure(self.error)

    def _write(self, record: Mapping[str, Any], *, urgent: bool) -> None:
        if self.error is not None:
            return
        self._seq += 1
        try:
            self._sink.append(_line(record), urgent=urgent)
        except Exception as error:  # a full disk, a lost mount: the deploys go on
            self.failed(error)


@asynccontextmanager
async def open_journal(
    location: JournalLocation,
    start: RunStart,
    *,
    run_id: str,
    clock: Clock,
    redactor: Redactor,
    on_failure: Callable[[str], None],
) -> AsyncIterator[JournalWriter]:
    """A journal for run ``run_id`` at ``location``, ``run_started`` already written.

    Raises JournalError when it cannot be written; nothing has been changed then.
    Several runners may journal the same run: each writes under its own runner id.
    """
    runner = new_runner_id()
    name = f"{start.shard.replace('/', 'of')}-{runner}"
    started = _line(
        run_started_record(
            start,
            run_id=run_id,
            runner=runner,
            host=socket.gethostname(),
            pid=os.getpid(),
            version=__version__,
            at=clock.now(),
            redactor=redactor,
        )
    )
    if isinstance(location, DirectoryLocation):
        try:
            sink = DirectorySink(location, run_id, name)
        except OSError as error:
            raise _cannot_write(error, location) from None
        try:
            sink.append(started, urgent=True)
        except OSError as error:
            sink.close()
            raise _cannot_write(error, sink.path) from None
        writer = JournalWriter(
            sink,
            run_id=run_id,
            where=str(sink.path),
            clock=clock,
            redactor=redactor,
            on_failure=on_failure,
        )
        try:
            yield writer
        finally:
            sink.close()
        return
    async with s3_client() as client:
        s3 = S3Sink(client, location, run_id, name)
        s3.append(started, urgent=True)
        try:
            await s3.flush()
        except Exception as error:  # no bucket, no credentials, no network
            raise JournalError(f"cannot write the run journal at {s3.url}: {error}") from None
        writer = JournalWriter(
            s3,
            run_id=run_id,
            where=s3.url,
            clock=clock,
            redactor=redactor,
            on_failure=on_failure,
        )
        async with s3.flushing(writer.failed):
            yield writer


def _cannot_write(error: OSError, where: object) -> JournalError:
    cause = error.strerror or str(error)
    return JournalError(f"cannot write the run journal at {error.filename or where}: {cause}")
