"""The timeline folds a run's events into per-target step spans, ECS events and a final status."""

from __future__ import annotations

from typing import Any

from tests.clocks import START

from ecs_deploy_many.core.events import Step, TargetEvent
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.observe.timeline import EcsEvent, Span, Timeline

WEB = Target("prod/web", cluster="prod", service="web", image="example/web:2", rollback=True)
API = Target("prod/api", cluster="prod", service="api", image="example/api:2")
WORKER = Target("prod/worker", cluster="prod", service="worker", depends_on=("prod/web",))


def event(target: Target, step: Step, name: str, at: float, **facts: Any) -> TargetEvent:
    """An event ``at`` seconds into the run."""
    return TargetEvent(target, step, name, START + at, facts)


def deployed(target: Target, *, finished: str = "succeeded") -> list[TargetEvent]:
    """A service deploy as the pipeline emits it, 0 to 11 s, with two ECS events."""
    return [
        event(target, "resolve", "target_started", 0),
        event(target, "resolve", "resolved", 1),
        event(target, "render", "container_image", 2),
        event(target, "register", "registered", 3),
        event(target, "update", "service_updated", 4),
        event(target, "wait", "progress", 5),
        event(target, "wait", "ecs_event", 6, message="has started 1 tasks"),
        event(target, "wait", "ecs_event", 7, message="has reached a steady state."),
        event(target, "wait", "deployment_completed", 9),
        event(target, "cleanup", "deregistered", 10),
        event(target, "done", "target_finished", 11, status=finished, error=None),
    ]


def spans(*steps: tuple[Step, float, float | None]) -> list[Span]:
    return [
        Span(step, START + start, None if end is None else START + end)
        for step, start, end in steps
    ]


def test_a_step_spans_from_its_first_event_to_the_next_steps_first() -> None:
    timeline = Timeline()
    for e in deployed(API):
        timeline(e)

    record = timeline.get("prod/api")
    assert record is not None
    assert record.spans == spans(
        ("resolve", 0, 2),
        ("render", 2, 3),
        ("register", 3, 4),
        ("update", 4, 5),
        ("wait", 5, 10),
        ("cleanup", 10, 11),
    )
    assert record.ecs_events == [
        EcsEvent(START + 6, "wait", "has started 1 tasks"),
        EcsEvent(START + 7, "wait", "has reached a steady state."),
    ]
    assert (record.status, record.error) == ("succeeded", None)
    assert (record.first_seen, record.finished_at) == (START, START + 11)
    assert (timeline.start, timeline.end) == (START, START + 11)


def test_a_failed_wait_ends_where_the_rollback_starts() -> None:
    timeline = Timeline()
    for e in [
        *deployed(WEB)[:7],
        event(WEB, "rollback", "rollback_started", 36, reason="did not finish within 30 s"),
        event(WEB, "rollback", "ecs_event", 40, message="has stopped 1 running tasks"),
        event(WEB, "rollback", "rolled_back", 55),
        event(WEB, "done", "target_finished", 56, status="rolled_back", error="timed out"),
    ]:
        timeline(e)

    record = timeline.get("prod/web")
    assert record is not None
    assert [(s.step, s.start - START, s.end) for s in record.spans][-2:] == [
        ("wait", 5, START + 36),
        ("rollback", 36, START + 56),
    ]
    assert [(e.step, e.message) for e in record.ecs_events] == [
        ("wait", "has started 1 tasks"),
        ("rollback", "has stopped 1 running tasks"),
    ]
    assert (record.status, record.error) == ("rolled_back", "timed out")


def test_rollback_all_adds_a_span_after_the_first_finish_and_its_status_wins() -> None:
    timeline = Timeline()
    for e in [
        *deployed(API),
        event(API, "rollback", "rollback_started", 20, reason="the run halted"),
        event(API, "rollback", "ecs_event", 25, message="has reached a steady state."),
        event(API, "rollback", "rolled_back", 30),
        event(API, "done", "target_finished", 31, status="rolled_back", error=None),
    ]:
        timeline(e)

    record = timeline.get("prod/api")
    assert record is not None
    assert record.spans[-2:] == spans(("cleanup", 10, 11), ("rollback", 20, 31))
    assert len(record.ecs_events) == 3
    assert record.status == "rolled_back"
    assert record.finished_at == START + 31
    assert timeline.end == START + 31


def test_a_skipped_target_has_a_status_and_no_spans() -> None:
    timeline = Timeline()
    # the engine's _settle: one event, step "done", for a target it never deployed
    timeline(
        event(
            WORKER,
            "done",
            "target_finished",
            60,
            status="skipped",
            error="dependency prod/web was rolled back",
        )
    )

    record = timeline.get("prod/worker")
    assert record is not None
    assert (record.spans, record.ecs_events) == ([], [])
    assert (record.status, record.error) == ("skipped", "dependency prod/web was rolled back")
    assert record.first_seen == record.finished_at == START + 60


def test_interleaved_targets_keep_their_own_spans_in_first_seen_order() -> None:
    timeline = Timeline()
    web, api = deployed(WEB, finished="failed"), deployed(API)
    for pair in zip(web, api, strict=True):
        for e in pair:
            timeline(e)
    timeline(event(WORKER, "done", "target_finished", 12, status="skipped"))

    assert [r.target.name for r in timeline] == ["prod/web", "prod/api", "prod/worker"]
    web_record, api_record = timeline.get("prod/web"), timeline.get("prod/api")
    assert web_record is not None
    assert api_record is not None
    assert web_record.spans == api_record.spans
    assert (web_record.status, api_record.status) == ("failed", "succeeded")
    assert timeline.get("prod/nothing") is None


def test_a_step_still_going_has_an_open_span() -> None:
    timeline = Timeline()
    for e in deployed(API)[:6]:  # waiting; no target_finished yet
        timeline(e)

    record = timeline.get("prod/api")
    assert record is not None
    assert record.spans[-1] == Span("wait", START + 5)
    assert record.status is None
    assert timeline.end == START + 5


def test_an_empty_timeline_has_no_bounds() -> None:
    timeline = Timeline()
    assert list(timeline) == []
    assert (timeline.start, timeline.end) == (None, None)


def test_the_lifecycle_stages_of_a_wait_and_of_its_rollback_are_spans_of_their_own() -> None:
    timeline = Timeline()
    for e in [
        event(WEB, "wait", "progress", 5, stage="SCALE_UP", state="SCALE_UP, 1/2 tasks running"),
        event(WEB, "wait", "progress", 8, stage="SCALE_UP", state="SCALE_UP, 2/2 tasks running"),
        event(WEB, "wait", "progress", 20, stage="BAKE_TIME", state="BAKE_TIME, 10m left"),
        event(WEB, "wait", "progress", 80, stage="BAKE_TIME", state="BAKE_TIME, 9m left"),
        event(WEB, "wait", "progress", 90, stage=None, state="1/2 tasks running"),
        event(WEB, "rollback", "rollback_started", 100),
        event(WEB, "rollback", "progress", 101, stage="SCALE_UP", state="SCALE_UP"),
        event(WEB, "done", "target_finished", 130, status="rolled_back", error="x"),
    ]:
        timeline(e)
    record = timeline.get("prod/web")
    assert record is not None
    assert [(s.step, s.stage, s.start - START, s.end and s.end - START) for s in record.stages] == [
        ("wait", "SCALE_UP", 5, 20),
        ("wait", "BAKE_TIME", 20, 100),
        ("rollback", "SCALE_UP", 101, 130),
    ]
