"""Continuing a run that died: every target ends as the plan says, with each change made once.

A run is killed at a chosen moment (its journal ends there, as a killed process's does,
or, after SIGINT, with the interrupted targets' last word), its events are folded into
histories as a journal reader folds them, and a new run continues from them. The
simulator counts the UpdateService and RegisterTaskDefinition calls it carried out per
service and family.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from ecs_deploy_many.core.events import EventName, TargetEvent
from ecs_deploy_many.core.result import Status
from ecs_deploy_many.deploy.engine import RunVerdict
from ecs_deploy_many.deploy.resume import Start, resumption
from ecs_deploy_many.plan import parse_plan
from ecs_deploy_many.plan.model import Plan
from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import FAST_TIMINGS, REGION, ecs_client
from tests.integration.interrupted_runs import Changes, Moment, fold, killed_run, resumed_run

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]

SERVICES = [f"svc{i:02d}" for i in range(20)]
BROKEN = "svc00"
"""Its image never starts: no progress for 30 s fails it, and it is rolled back."""
FLEET = Fleet.model_validate(
    {
        "region": REGION,
        "timings": FAST_TIMINGS,
        "task_definitions": {
            name: {
                "containerDefinitions": [{"name": "app", "image": "example/app:1", "memory": 128}]
            }
            for name in SERVICES
        },
        "clusters": [
            {
                "name": "prod",
                "services": [
                    {"name": name, "task_definition": name, "desired_count": 2} for name in SERVICES
                ],
            }
        ],
        "behaviour": {"images": [{"match": "*:broken*", "outcome": "fail_to_start"}]},
    }
)


def arn(family: str, revision: int) -> str:
    return f"arn:aws:ecs:{REGION}:123456789012:task-definition/{family}:{revision}"


def plan(head: str = "concurrency: {max_parallel: 8}", broken: str = "") -> Plan:
    broken = broken or "rollback: true, allow_failure: true"
    lines = [
        f"  - {{service: {BROKEN}, image: 'example/app:broken', progress_deadline: 30, {broken}}}"
    ]
    lines += [f"  - {{service: {name}}}" for name in SERVICES if name != BROKEN]
    text = (
        "version: 1\n"
        "defaults: {region: eu-west-1, cluster: prod, image: 'example/app:2', timeout: 300}\n"
        f"{head}\ntargets:\n" + "\n".join(lines) + "\n"
    )
    return parse_plan(text, environ={})


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(FLEET, speed=40, strict_output=True, listen=False) as running:
        yield running


async def services(sim: Simulator) -> dict[str, dict[str, Any]]:
    ecs: ECSClient
    found: dict[str, dict[str, Any]] = {}
    async with ecs_client(sim) as ecs:
        for batch in (SERVICES[:10], SERVICES[10:]):  # ten at most per call
            described = await ecs.describe_services(cluster="prod", services=batch)
            found.update((svc["serviceName"], dict(svc)) for svc in described["services"])
    return found


def nth(count: int, event: EventName, step: str | None = None, *, lost: bool = False) -> Moment:
    """The moment the ``count``-th ``event`` (in ``step``) is recorded."""

    def dies(seen: TargetEvent, journal: list[TargetEvent]) -> bool:
        matches = [e for e in journal if e.event is event and step in (None, e.step)]
        if seen in matches and len(matches) == count:
            if lost:  # the transition in flight never reached the journal
                journal.remove(seen)
            return True
        return False

    return dies


def waiting_with_tasks_running(seen: TargetEvent, _: list[TargetEvent]) -> bool:
    return seen.event is EventName.PROGRESS and (seen.facts.get("running") or 0) >= 1


MOMENTS = {
    "after-register": (nth(3, EventName.REGISTERED), False),
    "update-started": (nth(3, EventName.STEP_STARTED, "update"), False),
    "update-unanswered": (nth(3, EventName.SERVICE_UPDATED, lost=True), False),
    "after-update": (nth(3, EventName.SERVICE_UPDATED), False),
    "during-wait": (waiting_with_tasks_running, False),
    "during-rollback": (nth(1, EventName.ROLLBACK_STARTED), False),
    "after-sigint": (nth(3, EventName.SERVICE_UPDATED), True),
}


@pytest.mark.parametrize("moment", list(MOMENTS))
async def test_a_resumed_run_makes_each_change_once(sim: Simulator, moment: str) -> None:
    changes = Changes(sim)
    dies, sigint = MOMENTS[moment]
    deploy = plan()
    _, journal = await killed_run(sim, deploy, dies, journal_after=sigint)
    histories = fold(e for e in journal if e.target.name in {t.name for t in deploy.targets})
    kept = {
        name: history.status
        for name, history in histories.items()
        if resumption(deploy.target(name), history).start is Start.KEEP
    }

    result, events = await resumed_run(sim, deploy, histories)

    assert result.verdict is RunVerdict.SUCCEEDED  # the broken target may fail
    statuses = {name.split("/")[1]: r.status for name, r in result.results.items()}
    assert statuses == {
        name: Status.ROLLED_BACK if name == BROKEN else Status.SUCCEEDED for name in SERVICES
    }
    described = await services(sim)
    for name in SERVICES:
        revision = 1 if name == BROKEN else 2
        assert described[name]["taskDefinition"] == arn(name, revision), name
        assert changes.registrations[name] == 1, name  # never registered twice
        # one update per change: the deploy, and for the broken one its rollback
        assert changes.updates[name] == (2 if name == BROKEN else 1), name
    rollbacks = {
        e.facts["to_task_definition"] for e in journal + events if e.event == "rolled_back"
    }
    assert rollbacks == {arn(BROKEN, 1)}  # the revision from before the first run
    resumed = {
        e.target.name: Status(e.facts["status"])
        for e in events
        if e.event is EventName.TARGET_FINISHED and e.facts.get("resumed")
    }
    assert resumed == kept


async def test_a_run_that_had_halted_stays_halted_and_sees_its_deployments_through(
    sim: Simulator,
) -> None:
    changes = Changes(sim)
    halting = plan("failure_budget: 0\nconcurrency: {max_parallel: 2}", broken="rollback: false")

    def broken_failed(seen: TargetEvent, _: list[TargetEvent]) -> bool:
        return seen.event is EventName.TARGET_FINISHED and seen.facts["status"] == "failed"

    killed, journal = await killed_run(sim, halting, broken_failed)
    assert killed.halted
    histories = fold(journal)
    starts = {t.name: resumption(t, histories.get(t.name)).start for t in halting.targets}
    in_flight = {name for name, start in starts.items() if start is Start.ATTACH}
    never_started = {name for name, start in starts.items() if start is Start.FRESH}
    assert in_flight, starts
    assert never_started, starts

    result, _ = await resumed_run(sim, halting, histories)

    assert result.verdict is RunVerdict.FAILED
    assert result.halted
    assert "failure budget" in result.halted
    assert result.failures == 1  # carried over, not counted again
    for name, outcome in result.results.items():
        service = name.split("/")[1]
        if starts[name] is Start.KEEP:
            assert outcome.status is histories[name].status
        elif name in in_flight:
            assert outcome.status is Status.SUCCEEDED, outcome.error
        else:
            assert outcome.status is Status.SKIPPED
            assert changes.updates[service] == 0
        assert changes.updates[service] <= 1
    assert result.results[f"prod/{BROKEN}"].status is Status.FAILED


async def test_a_registered_revision_no_longer_usable_is_not_reused(sim: Simulator) -> None:
    changes = Changes(sim)
    deploy = plan()
    _, journal = await killed_run(sim, deploy, nth(1, EventName.REGISTERED))
    histories = fold(journal)
    [(name, registered)] = [
        (name, history.new_task_definition)
        for name, history in histories.items()
        if history.new_task_definition
    ]
    assert registered is not None
    ecs: ECSClient
    async with ecs_client(sim) as ecs:
        await ecs.deregister_task_definition(taskDefinition=registered)

    result, events = await resumed_run(sim, deploy, histories)

    service = name.split("/")[1]
    ended = Status.ROLLED_BACK if service == BROKEN else Status.SUCCEEDED
    assert result.results[name].status is ended
    assert result.results[name].new_task_definition == arn(service, 3)
    assert changes.registrations[service] == 2
    [again] = [e for e in events if e.event is EventName.REGISTERED and e.target.name == name]
    assert again.facts["reused"] is False
