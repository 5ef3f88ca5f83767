"""Reading journals back: list the runs at a location, load one run whole.

A run's records may come from several runners (shards of one plan, or a later command
continuing the run); ``load_run`` merges them: each runner's records in the order it
wrote them, runners interleaved by the run clock's ``at``. Each target's events fold
into a ``TargetHistory``, which is where resume and rollback start.

The shards of a run (``--shard K/N``) each journal their share of the plan: the run's
targets are every shard's, in shard order then plan order, and the run is finished once
every shard is (its last ``run_finished`` each): it failed if a shard failed, else it
was interrupted if a shard was, and its counts are the shards' together.

A runner killed mid-write leaves its last line cut short: that line is skipped. Any
other line that is not a record is an error naming its file (or S3 object) and line.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ecs_deploy_many.core.errors import JournalError
from ecs_deploy_many.core.events import EventName, Level, Observer, Step, TargetEvent
from ecs_deploy_many.core.history import TargetHistory
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.journal.location import JournalLocation
from ecs_deploy_many.journal.records import (
    RunFinished,
    RunStarted,
    TargetRecord,
    parse_record,
    target_digest,
)
from ecs_deploy_many.journal.stores import Part, read_run, run_ids

__all__ = ["JournalEvent", "ListedRun", "RunJournal", "find_run", "list_runs", "load_run"]


@dataclass(frozen=True)
class JournalEvent:
    """One journaled ``TargetEvent``, its target named (its definition is in the run's)."""

    target: str
    step: Step
    event: EventName
    level: Level
    at: float
    facts: Mapping[str, Any]


@dataclass
class RunJournal:
    """A run as its journal tells it."""

    run_id: str
    started: RunStarted
    """The first runner's ``run_started``: the plan, its policies and options."""
    runners: tuple[RunStarted, ...]
    """Every runner's ``run_started``, in the order they started."""
    events: tuple[JournalEvent, ...]
    histories: dict[str, TargetHistory] = field(default_factory=dict)
    """Each target that emitted an event, in plan order."""
    shard_finishes: dict[int, RunFinished] = field(default_factory=dict)
    """Each shard's last ``run_finished``, by shard number (1 for an unsharded run)."""

    @property
    def shard_count(self) -> int:
        """How many shards the run has (1 unless it was run with ``--shard K/N``)."""
        return max(_shard(runner)[1] for runner in self.runners)

    @property
    def finished(self) -> RunFinished | None:
        """How the run ended, every shard's outcome merged; None until every shard
        finished."""
        if len(self.shard_finishes) < self.shard_count:
            return None
        return _merged([self.shard_finishes[k] for k in sorted(self.shard_finishes)])

    @property
    def target_records(self) -> tuple[TargetRecord, ...]:
        """Every shard's targets as journaled, in shard order, each in plan order."""
        records: dict[str, TargetRecord] = {}
        for runner in sorted(self.runners, key=lambda runner: _shard(runner)[0]):
            for record in runner.targets:
                records.setdefault(record.target.name, record)
        return tuple(records.values())

    @property
    def waves(self) -> tuple[dict[str, Any], ...]:
        """Every shard's waves merged by name, in the order the shards list them."""
        waves: dict[str, dict[str, Any]] = {}
        for runner in sorted(self.runners, key=lambda runner: _shard(runner)[0]):
            for wave in runner.waves:
                merged = waves.setdefault(wave["name"], {**wave, "targets": []})
                merged["targets"] += [t for t in wave["targets"] if t not in merged["targets"]]
        return tuple(waves.values())

    @property
    def targets(self) -> tuple[Target, ...]:
        """The targets as journaled (secrets masked), in shard order then plan order."""
        return tuple(record.target for record in self.target_records)

    def target(self, name: str) -> Target:
        """The journaled target called ``name`` (KeyError if the run had none)."""
        for target in self.targets:
            if target.name == name:
                return target
        raise KeyError(name)

    @property
    def verdict(self) -> str:
        """The run's verdict, or ``unfinished``."""
        return self.finished.verdict if self.finished else "unfinished"

    def counts(self) -> dict[str, int]:
        """Targets by final status: the run's own counts once it finished, else those of
        the targets it had finished."""
        if self.finished is not None:
            return dict(self.finished.counts)
        counts: dict[str, int] = {}
        for history in self.histories.values():
            if history.status is not None:
                counts[str(history.status)] = counts.get(str(history.status), 0) + 1
        return counts

    def replay(self, observe: Observer) -> None:
        """Hand every journaled event to ``observe``, as the run did."""
        targets = {target.name: target for target in self.targets}
        for event in self.events:
            target = targets.get(event.target) or Target(event.target)
            observe(
                TargetEvent(target, event.step, event.event, event.at, event.facts, event.level)
            )

    def changes(
        self, plan_digest: str | None, targets: Sequence[Target], *, shard: str | None = None
    ) -> list[str]:
        """What differs between the run's plan (the targets of one ``shard``, ``K/N``,
        when given) and ``targets`` (a plan loaded now): targets added, removed or
        changed, and a changed plan file."""
        records = self.target_records
        if shard is not None:
            records = tuple(r for run in self.runners if run.shard == shard for r in run.targets)
        then = {record.target.name: record.digest for record in records}
        now = {target.name: target_digest(target) for target in targets}
        found = [f"target {name} is new" for name in now if name not in then]
        found += [f"target {name} is no longer selected" for name in then if name not in now]
        found += [
            f"target {name} changed" for name in now if name in then and now[name] != then[name]
        ]
        if plan_digest != self.started.plan_digest and not found:
            found.append(f"the plan file {self.started.plan} changed")
        return found


@dataclass(frozen=True)
class ListedRun:
    """A run found at a location: its journal, or why it cannot be read."""

    run_id: str
    journal: RunJournal | None
    problem: str | None = None


async def list_runs(location: JournalLocation, *, limit: int | None = None) -> list[ListedRun]:
    """The runs at ``location``, newest first (at most ``limit``).

    An id gives its run's start to the second; runs started within the same second
    are ordered by their ``run_started`` time, so every run of that second is read.
    """
    ids = await run_ids(location)
    if limit is not None and len(ids) > limit:
        last_second = _second(ids[limit - 1])
        ids = ids[:limit] + [i for i in ids[limit:] if _second(i) == last_second]
    listed = []
    for run_id in ids:
        try:
            listed.append(ListedRun(run_id, await load_run(location, run_id)))
        except JournalError as error:
            listed.append(ListedRun(run_id, None, str(error)))
    listed.sort(
        key=lambda run: (_second(run.run_id), run.journal.started.at if run.journal else 0.0),
        reverse=True,
    )
    return listed[:limit]


def _second(run_id: str) -> str:
    """The start second a run id begins with."""
    return run_id.partition("-")[0]


async def find_run(location: JournalLocation, wanted: str) -> str:
    """The id of the run ``wanted`` names: its id, or the start of only one id."""
    ids = await run_ids(location)
    if wanted in ids:
        return wanted
    matching = [run_id for run_id in ids if run_id.startswith(wanted)]
    if len(matching) == 1:
        return matching[0]
    if not matching:
        raise JournalError(f"no run {wanted} in {location} (`ecs-deploy-many runs` lists them)")
    raise JournalError(f"{wanted} names {len(matching)} runs in {location}: give more of the id")


async def load_run(location: JournalLocation, run_id: str) -> RunJournal:
    """The run ``run_id`` at ``location``, every runner's records merged."""
    runners = [list(_records(parts)) for parts in await read_run(location, run_id)]
    runners = [records for records in runners if records]
    if not runners:
        raise JournalError(f"no journal of run {run_id} in {location}")
    starts: list[RunStarted] = []
    for records in runners:
        first, where = records[0][1], records[0][0]
        if not isinstance(first, RunStarted) or first.run_id != run_id:
            raise JournalError(f"{where}: the first record is not run {run_id}'s run_started")
        starts.append(first)
    order = sorted(range(len(runners)), key=lambda i: starts[i].at)
    merged = heapq.merge(
        *([(where, record, i) for where, record in runners[i][1:]] for i in order),
        key=lambda item: _at(item[1]),
    )
    journal = RunJournal(run_id, starts[order[0]], tuple(starts[i] for i in order), ())
    events: list[JournalEvent] = []
    histories: dict[str, TargetHistory] = {t.name: TargetHistory(t.name) for t in journal.targets}
    for where, record, runner in merged:
        if isinstance(record, RunFinished):
            journal.shard_finishes[_shard(starts[runner])[0]] = record
        elif isinstance(record, RunStarted):
            raise JournalError(f"{where}: a second run_started")
        else:
            event = JournalEvent(
                record["target"],
                record["step"],
                EventName(record["event"]),
                record["level"],
                record["at"],
                record["facts"],
            )
            events.append(event)
            history = histories.setdefault(event.target, TargetHistory(event.target))
            try:
                history.record(event.event, event.step, event.facts)
            except (KeyError, ValueError) as error:  # a target_finished without a status
                raise JournalError(f"{where}: {event.event} without a valid {error}") from None
    seen = {event.target for event in events}
    journal.events = tuple(events)
    journal.histories = {name: h for name, h in histories.items() if name in seen}
    return journal


def _shard(runner: RunStarted) -> tuple[int, int]:
    """The runner's shard ``K/N`` as ``(K, N)``."""
    index, _, count = runner.shard.partition("/")
    try:
        return int(index), int(count)
    except ValueError:
        raise JournalError(
            f"run {runner.run_id}: runner {runner.runner} has no shard K/N: {runner.shard!r}"
        ) from None


def _merged(finishes: Sequence[RunFinished]) -> RunFinished:
    """The outcome of a run from each shard's: failed if one failed, else interrupted if
    one was; the counts and failures summed, the first halt's reason."""
    if len(finishes) == 1:
        return finishes[0]
    verdicts = {finish.verdict for finish in finishes}
    verdict = next((v for v in ("failed", "interrupted") if v in verdicts), "succeeded")
    counts: dict[str, int] = {}
    for finish in finishes:
        for status, count in finish.counts.items():
            counts[status] = counts.get(status, 0) + count
    started = [f.started_at for f in finishes if f.started_at is not None]
    ended = [f.finished_at for f in finishes if f.finished_at is not None]
    return RunFinished(
        verdict=verdict,
        halted=next((finish.halted for finish in finishes if finish.halted), None),
        counts=counts,
        failures=sum(finish.failures for finish in finishes),
        started_at=min(started, default=None),
        finished_at=max(ended, default=None),
        rolled_back_by_policy=tuple(
            sorted({name for finish in finishes for name in finish.rolled_back_by_policy})
        ),
        at=max(finish.at for finish in finishes),
    )


def _at(record: RunStarted | RunFinished | dict[str, Any]) -> float:
    return float(record.at if isinstance(record, RunStarted | RunFinished) else record["at"])


def _records(
    parts: Sequence[Part],
) -> Iterator[tuple[str, RunStarted | RunFinished | dict[str, Any]]]:
    """One runner's records, each with where it is (``file:line``)."""
    for index, part in enumerate(parts):
        lines = part.data.split(b"\n")
        cut_short = lines.pop()  # b"" when the part ends with a newline, as written
        last_part = index == len(parts) - 1
        if cut_short and last_part:
            lines.append(cut_short)
        for number, line in enumerate(lines, start=1):
            where = f"{part.name}:{number}"
            try:
                data = json.loads(line)
            except ValueError:
                if last_part and number == len(lines) and line is cut_short:
                    return  # the write a kill interrupted
                raise JournalError(f"{where}: not a journal record (JSON)") from None
            try:
                yield where, parse_record(data)
            except JournalError as error:
                raise JournalError(f"{where}: {error}") from None
        if cut_short and not last_part:
            raise JournalError(f"{part.name}: the last line is cut short")
