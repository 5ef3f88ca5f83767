"""When each target was in which step: the run's events folded into spans, for reports.

A post-mortem wants to see where the time went and what ECS said meanwhile; the results
keep only outcomes. ``Timeline`` subscribes to the event stream like the logs do and
keeps, per target, its step spans, its ECS service events and its final status.

A span starts at the first event of a step and ends at the first event of another step
or at ``target_finished``. Within a wait (or a rollback's), the lifecycle stages ECS's
service deployment went through (``SCALE_UP``, ``BAKE_TIME``...) are spans too, from the
first progress event that named each. A service that ``rollback_all`` puts back later gets a second
``target_finished``; its rollback becomes a span of its own and the last status wins.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ecs_deploy_many.core.events import EventName, Step, TargetEvent
from ecs_deploy_many.core.target import Target

__all__ = ["EcsEvent", "Span", "StageSpan", "TargetTimeline", "Timeline"]


@dataclass
class Span:
    """One stretch of a target in one step; ``end`` is None while the step goes on."""

    step: Step
    start: float
    end: float | None = None


@dataclass
class StageSpan:
    """One lifecycle stage of a service deployment, as the wait of ``step`` saw it."""

    step: Step
    stage: str
    start: float
    end: float | None = None


@dataclass(frozen=True)
class EcsEvent:
    """An ECS service event as the run saw it: when, and in which step (wait or rollback)."""

    at: float
    step: Step
    message: str


@dataclass
class TargetTimeline:
    """Everything the timeline knows about one target, in the order it happened."""

    target: Target
    first_seen: float
    spans: list[Span] = field(default_factory=list)
    ecs_events: list[EcsEvent] = field(default_factory=list)
    stages: list[StageSpan] = field(default_factory=list)
    status: str | None = None
    """The ``status`` of the last ``target_finished``; None until the target finishes."""
    error: str | None = None
    finished_at: float | None = None

    def _close(self, at: float) -> None:
        if self.spans and self.spans[-1].end is None:
            self.spans[-1].end = at
        self._close_stage(at)

    def _close_stage(self, at: float) -> None:
        if self.stages and self.stages[-1].end is None:
            self.stages[-1].end = at

    def _stage(self, event: TargetEvent) -> None:
        """A progress event naming a lifecycle stage: a new stage span when it changed."""
        stage = event.facts.get("stage")
        if not stage:
            return
        last = self.stages[-1] if self.stages else None
        if last is None or last.end is not None or (last.stage, last.step) != (stage, event.step):
            self._close_stage(event.at)
            self.stages.append(StageSpan(event.step, str(stage), event.at))


class Timeline:
    """An observer recording every target's steps, ECS events and final status."""

    def __init__(self) -> None:
        self._targets: dict[str, TargetTimeline] = {}

    def __call__(self, event: TargetEvent) -> None:
        record = self._targets.get(event.target.name)
        if record is None:
            record = self._targets[event.target.name] = TargetTimeline(event.target, event.at)
        if event.event == EventName.TARGET_FINISHED:
            record._close(event.at)
            record.status = event.facts.get("status")
            record.error = event.facts.get("error")
            record.finished_at = event.at
            return
        current = record.spans[-1] if record.spans else None
        if current is None or current.end is not None or current.step != event.step:
            record._close(event.at)
            record.spans.append(Span(event.step, event.at))
        if event.event == EventName.PROGRESS:
            record._stage(event)
        if event.event == EventName.ECS_EVENT:
            record.ecs_events.append(
                EcsEvent(event.at, event.step, str(event.facts.get("message", "")))
            )

    def get(self, name: str) -> TargetTimeline | None:
        """The record of the target called ``name``, or None if it never emitted."""
        return self._targets.get(name)

    def __iter__(self) -> Iterator[TargetTimeline]:
        """Records in the order their targets first emitted."""
        return iter(self._targets.values())

    def __len__(self) -> int:
        return len(self._targets)

    @property
    def start(self) -> float | None:
        """The time of the first event seen."""
        return min((r.first_seen for r in self), default=None)

    @property
    def end(self) -> float | None:
        """The time of the last span end or ``target_finished`` seen."""
        ends = [r.finished_at for r in self if r.finished_at is not None]
        ends += [s.end if s.end is not None else s.start for r in self for s in r.spans]
        return max(ends, default=None)
