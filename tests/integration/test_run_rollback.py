"""Rolling back a finished run from its histories: every service it changed goes back.

A 20-service plan in two waves runs to the end; its events are folded into histories as
a journal reader folds them. Then someone deploys one of the services again, and the run
is rolled back: every other service returns to its exact previous revision (and desired
count and percentages), side by side within the plan's limits; the one that moved on
is left alone unless forced.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from ecs_deploy_many.core.events import EventName, TargetEvent
from ecs_deploy_many.core.result import Status
from ecs_deploy_many.deploy.engine import FleetRun, RunVerdict
from ecs_deploy_many.plan import parse_plan
from ecs_deploy_many.plan.model import Plan
from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import FAST_TIMINGS, REGION, SPEED, ecs_client, watch_service
from tests.integration.interrupted_runs import Changes, fold, resumed_run, run_context

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]

SERVICES = [f"svc{i:02d}" for i in range(20)]
MOVED_ON = "svc07"
FLEET = Fleet.model_validate(
    {
        "region": REGION,
        "timings": FAST_TIMINGS,
        "task_definitions": {
            name: {"containerDefinitions": [{"name": "app", "image": "app:1", "memory": 64}]}
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
    }
)


def release_plan() -> Plan:
    """Two waves of ten; the first wave also scales to 3 and changes the percentages."""
    first = [
        f"  - {{service: {name}, desired_count: 3, min_healthy_percent: 50}}"
        for name in SERVICES[:10]
    ]
    second = [f"  - {{service: {name}}}" for name in SERVICES[10:]]
    text = (
        "version: 1\n"
        "defaults: {region: eu-west-1, cluster: prod, image: 'app:2', timeout: 600}\n"
        "concurrency: {max_parallel: 6}\n"
        "waves:\n"
        "  - {name: first, targets: ['prod/svc0*']}\n"
        "  - {name: second, targets: ['prod/svc1*']}\n"
        "targets:\n" + "\n".join(first + second) + "\n"
    )
    return parse_plan(text, environ={})


def arn(family: str, revision: int) -> str:
    return f"arn:aws:ecs:{REGION}:123456789012:task-definition/{family}:{revision}"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(FLEET, speed=SPEED, strict_output=True, listen=False) as running:
        yield running


async def services(ecs: ECSClient) -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    for start in range(0, len(SERVICES), 10):
        described = await ecs.describe_services(
            cluster="prod", services=SERVICES[start : start + 10]
        )
        found.update({s["serviceName"]: dict(s) for s in described["services"]})
    return found


async def deploy_moved_on(ecs: ECSClient) -> str:
    registered = await ecs.register_task_definition(
        family=MOVED_ON, containerDefinitions=[{"name": "app", "image": "app:3", "memory": 64}]
    )
    revision = registered["taskDefinition"]["taskDefinitionArn"]
    await ecs.update_service(cluster="prod", service=MOVED_ON, taskDefinition=revision)
    await watch_service(ecs, "prod", MOVED_ON, lambda s: len(s["deployments"]) == 1)
    return revision


async def roll_back(
    sim: Simulator, plan: Plan, run_events: list[TargetEvent], *, force: bool = False
) -> tuple[FleetRun, list[TargetEvent]]:
    events: list[TargetEvent] = []
    async with run_context(sim, events) as context:
        run = FleetRun(plan, context)
        await run.roll_back(
            fold(run_events), reason="checkout broke after the release", force=force
        )
    return run, events


async def test_a_finished_run_goes_back_in_parallel_and_leaves_what_moved_on(
    sim: Simulator,
) -> None:
    plan = release_plan()
    release, run_events = await resumed_run(sim, plan, None)
    assert release.verdict is RunVerdict.SUCCEEDED
    async with ecs_client(sim) as ecs:
        later = await deploy_moved_on(ecs)
        changes = Changes(sim)
        rollback, events = await roll_back(sim, plan, run_events)
        after = await services(ecs)

    assert rollback.result.verdict is RunVerdict.SUCCEEDED
    statuses = {name: r.status for name, r in rollback.result.results.items()}
    assert statuses.pop(f"prod/{MOVED_ON}") is Status.SKIPPED
    assert set(statuses.values()) == {Status.SUCCEEDED}
    assert len(statuses) == 19
    assert "moved on since the run" in str(rollback.result.results[f"prod/{MOVED_ON}"].error)
    for name in SERVICES:
        service = after[name]
        if name == MOVED_ON:
            assert service["taskDefinition"] == later
            continue
        assert service["taskDefinition"] == arn(name, 1), name
        assert service["desiredCount"] == 2, name
        configuration = service["deploymentConfiguration"]
        assert isinstance(configuration, dict)
        assert configuration["minimumHealthyPercent"] == 100, name
    assert changes.updates == {name: 1 for name in SERVICES if name != MOVED_ON}
    assert not changes.registrations  # back to the exact revisions, none registered

    # newest wave first, and side by side within max_parallel 6
    started = [e for e in events if e.event is EventName.ROLLBACK_STARTED]
    finished = [e for e in events if e.event is EventName.ROLLED_BACK]
    waves = [SERVICES.index(e.target.service or "") >= 10 for e in started]
    assert waves == sorted(waves, reverse=True)
    first_done = min(e.at for e in finished)
    assert sum(1 for e in started if e.at < first_done) == 6


async def test_force_puts_back_what_moved_on_and_a_second_rollback_changes_nothing(
    sim: Simulator,
) -> None:
    plan = release_plan()
    _, run_events = await resumed_run(sim, plan, None)
    async with ecs_client(sim) as ecs:
        await deploy_moved_on(ecs)
        forced, _ = await roll_back(sim, plan, run_events, force=True)
        assert forced.result.results[f"prod/{MOVED_ON}"].status is Status.SUCCEEDED
        assert (await services(ecs))[MOVED_ON]["taskDefinition"] == arn(MOVED_ON, 1)
        changes = Changes(sim)
        again, _ = await roll_back(sim, plan, run_events)
    assert {r.status for r in again.result.results.values()} == {Status.UNCHANGED}
    assert not changes.updates
