"""The journal's record format: JSON Lines, one record per line, every field stable.

Three kinds of record, each with the format version ``v``, the writer's sequence number
``seq`` (0 for its ``run_started``) and ``at`` (the run's clock, simulated in a rehearsal):

- ``run_started``: the run id, the plan (path and digest), every target's definition
  (secrets masked) and digest in plan order, the waves and policies, the options that
  shaped the run, and who ran it (host, pid, runner id, shard ``K/N``);
- ``event``: one ``TargetEvent`` (target name, step, event, level, facts);
- ``run_finished``: the verdict, why the run halted, counts by status.

A run id sorts by start time and is unique across runners: ``20261202T031500Z-1a2b3c``.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ecs_deploy_many.core.errors import JournalError
from ecs_deploy_many.core.events import EventName, TargetEvent
from ecs_deploy_many.core.redact import Redactor, target_record
from ecs_deploy_many.core.target import Target, target_as_data, target_from_data

__all__ = [
    "FORMAT_VERSION",
    "RunFinished",
    "RunStart",
    "RunStarted",
    "TargetRecord",
    "event_record",
    "file_digest",
    "is_run_id",
    "new_run_id",
    "new_runner_id",
    "parse_record",
    "run_finished_record",
    "run_started_record",
    "target_digest",
]

FORMAT_VERSION = 1
_RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")


def new_run_id(now: datetime | None = None) -> str:
    """A new run id: the UTC start time to the second, then 6 random hex digits."""
    started = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def is_run_id(text: str) -> bool:
    return bool(_RUN_ID.fullmatch(text))


def new_runner_id() -> str:
    """Names one process's part of a run, so no runner writes over another's records."""
    return secrets.token_hex(3)


def target_digest(target: Target) -> str:
    """A digest of everything ``target`` says (secrets included, never shown), so a
    later command can tell a target that changed since the run."""
    canonical = json.dumps(target_as_data(target), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def file_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class RunStart:
    """What a run journals before its first target: built by the command that runs it."""

    plan: str
    """The plan's path as given on the command line."""
    plan_digest: str | None
    targets: Sequence[Target]
    waves: Sequence[Mapping[str, Any]]
    """Each wave's ``name``, ``targets`` (names in order), ``bake`` seconds, and its gates:
    ``approval`` (``timeout``) and ``alarms`` (``names``, ``prefixes``), each null when absent."""
    policy: Mapping[str, Any]
    """``max_parallel``, ``per_cluster``, ``failure_budget`` (``amount``, ``percent``),
    ``on_failure``: what a report or a resume needs of the plan's policies."""
    options: Mapping[str, Any] = field(default_factory=dict)
    shard: str = "1/1"


@dataclass(frozen=True)
class TargetRecord:
    """A target as the run journaled it: its definition (secrets masked) and digest."""

    target: Target
    digest: str


@dataclass(frozen=True)
class RunStarted:
    """One runner's ``run_started`` record, read back."""

    run_id: str
    plan: str
    plan_digest: str | None
    targets: tuple[TargetRecord, ...]
    waves: tuple[Mapping[str, Any], ...]
    policy: Mapping[str, Any]
    options: Mapping[str, Any]
    shard: str
    runner: str
    host: str
    pid: int
    version: str
    started: str
    """Wall-clock UTC start, ISO-8601."""
    at: float


@dataclass(frozen=True)
class RunFinished:
    """A runner's ``run_finished`` record, read back."""

    verdict: str
    halted: str | None
    counts: Mapping[str, int]
    failures: int
    started_at: float | None
    finished_at: float | None
    rolled_back_by_policy: tuple[str, ...]
    at: float


def run_started_record(
    start: RunStart,
    *,
    run_id: str,
    runner: str,
    host: str,
    pid: int,
    version: str,
    at: float,
    redactor: Redactor,
) -> dict[str, Any]:
    """The ``run_started`` record; the targets' definitions pass through ``redactor``."""
    return {
        "v": FORMAT_VERSION,
        "seq": 0,
        "record": "run_started",
        "at": at,
        "run_id": run_id,
        "plan": start.plan,
        "plan_digest": start.plan_digest,
        "targets": [
            {"digest": target_digest(t), "definition": target_record(t, redactor)}
            for t in start.targets
        ],
        "waves": [dict(wave) for wave in start.waves],
        "policy": dict(start.policy),
        "options": redactor.scrub(dict(start.options)),
        "shard": start.shard,
        "runner": runner,
        "host": host,
        "pid": pid,
        "version": version,
        "started": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def event_record(event: TargetEvent, seq: int, redactor: Redactor) -> dict[str, Any]:
    """An ``event`` record; the facts pass through ``redactor`` as a log line's do."""
    return {
        "v": FORMAT_VERSION,
        "seq": seq,
        "record": "event",
        "at": event.at,
        "target": event.target.name,
        "step": event.step,
        "event": str(event.event),
        "level": event.level,
        "facts": redactor.scrub(dict(event.facts)),
    }


def run_finished_record(
    seq: int,
    at: float,
    *,
    verdict: str,
    halted: str | None,
    counts: Mapping[str, int],
    failures: int,
    started_at: float | None,
    finished_at: float | None,
    rolled_back_by_policy: Sequence[str],
    redactor: Redactor,
) -> dict[str, Any]:
    return {
        "v": FORMAT_VERSION,
        "seq": seq,
        "record": "run_finished",
        "at": at,
        "verdict": verdict,
        "halted": redactor.scrub(halted),
        "counts": dict(counts),
        "failures": failures,
        "started_at": started_at,
        "finished_at": finished_at,
        "rolled_back_by_policy": sorted(rolled_back_by_policy),
    }


def parse_record(data: Any) -> RunStarted | RunFinished | dict[str, Any]:
    """A decoded line as a ``RunStarted``, a ``RunFinished``, or an event's dict.

    Raises JournalError (without the place: the reader adds it) when the line is no
    record this version knows.
    """
    if not isinstance(data, dict):
        raise JournalError("not a journal record (a JSON object)")
    if data.get("v") != FORMAT_VERSION:
        raise JournalError(f"journal format version {data.get('v')!r}, not {FORMAT_VERSION}")
    kind = data.get("record")
    try:
        if kind == "event":
            if data["event"] not in set(EventName):
                raise JournalError(f"an event this version does not know: {data['event']!r}")
            if not all(isinstance(data[key], str) for key in ("target", "step", "level")):
                raise TypeError("target, step or level")
            if not isinstance(data["at"], int | float) or not isinstance(data["facts"], dict):
                raise TypeError("at or facts")
            return data
        if kind == "run_started":
            return _run_started(data)
        if kind == "run_finished":
            return RunFinished(
                verdict=data["verdict"],
                halted=data["halted"],
                counts=data["counts"],
                failures=data["failures"],
                started_at=data["started_at"],
                finished_at=data["finished_at"],
                rolled_back_by_policy=tuple(data["rolled_back_by_policy"]),
                at=data["at"],
            )
    except KeyError as error:
        raise JournalError(f"{kind} record without {error}") from None
    except TypeError as error:
        raise JournalError(f"{kind} record with a wrong {error}") from None
    raise JournalError(f"not a journal record: {kind!r}")


def _run_started(data: dict[str, Any]) -> RunStarted:
    return RunStarted(
        run_id=data["run_id"],
        plan=data["plan"],
        plan_digest=data["plan_digest"],
        targets=tuple(
            TargetRecord(target_from_data(item["definition"]), item["digest"])
            for item in data["targets"]
        ),
        waves=tuple(data["waves"]),
        policy=data["policy"],
        options=data["options"],
        shard=data["shard"],
        runner=data["runner"],
        host=data["host"],
        pid=data["pid"],
        version=data["version"],
        started=data["started"],
        at=data["at"],
    )
