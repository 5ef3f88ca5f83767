"""``max_definitions`` against the simulator: it never deregisters a revision in use.

In use means anywhere in the account and region, not only in the run: a service of the
family outside the run, a deployment still under way, a standalone task. When that
cannot be read, the cleanup keeps everything and says why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from ecs_deploy_many.core.events import TargetEvent
from ecs_deploy_many.core.result import Status, TargetResult
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.deploy.pipeline import RunContext, deploy_target
from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.model import SimError
from ecs_deploy_many.sim.server import Simulator, StateModel
from tests.integration.helpers import FAST_TIMINGS, REGION, ecs_client, sim_pool

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]

SPEED = 40.0
ARN = f"arn:aws:ecs:{REGION}:123456789012:task-definition/web"
REVISIONS = 8
BROKEN_REVISION = 4


def web(revision: int) -> str:
    return f"{ARN}:{revision}"


def fleet() -> Fleet:
    """Family ``web`` with revisions 1..8 (4 never starts); ``prod/web`` runs web:8,
    ``legacy/web-old`` runs web:3, ``prod/stuck`` web:1."""
    revisions = [
        {
            "containerDefinitions": [
                {
                    "name": "app",
                    "image": "example/app:broken" if n == BROKEN_REVISION else f"example/app:{n}",
                    "memory": 128,
                }
            ]
        }
        for n in range(1, REVISIONS + 1)
    ]
    return Fleet.model_validate(
        {
            "region": REGION,
            # one-off tasks run for a simulated day: they are running while the test looks
            "timings": {**FAST_TIMINGS, "run_duration": 86_400},
            "task_definitions": {"web": {"revisions": revisions}},
            "clusters": [
                {
                    "name": "prod",
                    "services": [
                        {"name": "web", "task_definition": f"web:{REVISIONS}"},
                        {"name": "stuck", "task_definition": "web:1"},
                    ],
                },
                {"name": "legacy", "services": [{"name": "web-old", "task_definition": "web:3"}]},
            ],
            "behaviour": {"images": [{"match": "*:broken*", "outcome": "fail_to_start"}]},
        }
    )


TARGET = Target(
    "prod/web", cluster="prod", service="web", image="example/app:9", timeout=300, max_definitions=2
)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(fleet(), speed=SPEED, strict_output=True, listen=False) as running:
        yield running


async def deploy(sim: Simulator, target: Target) -> tuple[TargetResult, list[TargetEvent]]:
    events: list[TargetEvent] = []
    async with sim_pool(sim) as pool:
        result = await deploy_target(target, RunContext(pool, sim.clock, events.append))
    return result, events


async def active_revisions(sim: Simulator) -> list[str]:
    async with ecs_client(sim) as ecs:
        listed = await ecs.list_task_definitions(familyPrefix="web", status="ACTIVE", sort="ASC")
    return list(listed["taskDefinitionArns"])


def facts(events: list[TargetEvent], name: str) -> list[dict[str, Any]]:
    return [dict(e.facts) for e in events if e.event == name]


async def test_revisions_other_services_deployments_and_tasks_use_survive(
    sim: Simulator,
) -> None:
    async with ecs_client(sim) as ecs:
        # a deployment that never finishes: PRIMARY on web:4, ACTIVE still on web:1
        await ecs.update_service(cluster="prod", service="stuck", taskDefinition=web(4))
        # a standalone task on web:2
        await ecs.run_task(cluster="legacy", taskDefinition=web(2))
    result, events = await deploy(sim, TARGET)
    assert result.status is Status.SUCCEEDED
    assert result.new_task_definition == web(REVISIONS + 1)
    # the newest two stay; web:1 (an ACTIVE deployment), web:2 (a task), web:3 (another
    # service) and web:4 (a PRIMARY deployment) are in use; only web:5..7 may go
    assert await active_revisions(sim) == [web(n) for n in (1, 2, 3, 4, 8, 9)]
    [cleanup] = facts(events, "deregistered")
    assert cleanup["task_definitions"] == [web(n) for n in (5, 6, 7)]
    calls = sim.stats().calls
    assert (calls["ListClusters"], calls["ListServices"], calls["ListTasks"]) == (1, 2, 2)


async def test_cleanups_of_one_family_share_one_look_at_the_account(sim: Simulator) -> None:
    """Many targets of one family clean up; the account is read once for all of them."""
    async with sim_pool(sim) as pool:
        context = RunContext(pool, sim.clock, lambda event: None)
        first = await deploy_target(TARGET, context)
        second = await deploy_target(replace(TARGET, image="example/app:10"), context)
    assert (first.status, second.status) == (Status.SUCCEEDED, Status.SUCCEEDED)
    calls = sim.stats().calls
    assert (calls["ListClusters"], calls["ListServices"], calls["ListTasks"]) == (1, 2, 2)


class DenyingState:
    """The simulator's state model behind an IAM policy that denies some operations."""

    def __init__(self, state: StateModel, denied: set[str]) -> None:
        self.OPERATIONS = state.OPERATIONS
        self.account_id = state.account_id
        self._state = state
        self._denied = denied

    def handle(self, operation: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation in self._denied:
            raise SimError(
                "AccessDeniedException",
                f"User is not authorized to perform: ecs:{operation} on resource: *",
            )
        return self._state.handle(operation, region, params)


@pytest.mark.parametrize("denied", ["ListClusters", "ListServices", "DescribeTasks"])
async def test_when_use_cannot_be_read_every_revision_stays_and_the_log_says_why(
    sim: Simulator, denied: str
) -> None:
    async with ecs_client(sim) as ecs:
        await ecs.run_task(cluster="legacy", taskDefinition=web(2))
    before = await active_revisions(sim)
    sim.server.state = DenyingState(sim.server.state, {denied})
    result, events = await deploy(sim, TARGET)
    assert result.status is Status.SUCCEEDED
    assert facts(events, "deregistered") == []
    [skipped] = facts(events, "cleanup_skipped")
    assert skipped["family"] == "web"
    assert f"{denied} failed: AccessDeniedException" in skipped["reason"]
    assert await active_revisions(sim) == [*before, web(REVISIONS + 1)]
    assert sim.stats().calls.get("DeregisterTaskDefinition", 0) == 0


async def test_max_definitions_0_keeps_every_revision(sim: Simulator) -> None:
    result, events = await deploy(sim, replace(TARGET, max_definitions=0))
    assert result.status is Status.SUCCEEDED
    assert not [e for e in events if e.step == "cleanup"]
    assert {"ListTaskDefinitions", "ListClusters"}.isdisjoint(sim.stats().calls)
    assert await active_revisions(sim) == [web(n) for n in range(1, REVISIONS + 2)]


@pytest.mark.parametrize("denied", ["ListTaskDefinitions", "DeregisterTaskDefinition"])
async def test_a_cleanup_that_fails_leaves_the_deploy_succeeded_and_says_why(
    sim: Simulator, denied: str
) -> None:
    before, state = await active_revisions(sim), sim.server.state
    sim.server.state = DenyingState(state, {denied})
    result, events = await deploy(sim, TARGET)
    sim.server.state = state
    assert result.status is Status.SUCCEEDED, result.error
    assert result.error is None
    [skipped] = facts(events, "cleanup_skipped")
    assert skipped["reason"].startswith(f"cleanup failed: {denied} failed: AccessDeniedException")
    assert await active_revisions(sim) == [*before, web(REVISIONS + 1)]
