"""Running a plan again over a service whose deployment is not steady.

A service counts as unchanged only when it runs the rendered revision with the requested
settings AND its deployment is steady. On the rendered revision but still rolling out
(an interrupted run's deployment, say): the run attaches to that deployment and judges
it like its own. Its last deployment failed: the run deploys again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from ecs_deploy_many.core.events import EventName, TargetEvent
from ecs_deploy_many.core.result import Status
from ecs_deploy_many.deploy.dryrun import format_preview, preview_plan
from ecs_deploy_many.deploy.engine import RunVerdict
from ecs_deploy_many.plan import parse_plan
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import (
    ecs_client,
    one_family_per_service,
    sim_pool,
)
from tests.integration.helpers import (
    taskdef_arn as arn,
)
from tests.integration.interrupted_runs import Changes, fold, killed_run, resumed_run

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]

SERVICES: dict[str, dict[str, Any]] = {
    "plain": {},
    "guarded": {"circuit_breaker": {"enable": True}},
    "safe": {"circuit_breaker": {"enable": True, "rollback": True}},
    "steady": {},
    # stops its old tasks at once: an update leaves no ACTIVE deployment for long
    "bare": {"minimum_healthy_percent": 0},
}
FLEET = one_family_per_service(SERVICES)


def plan(service: str, image: str, **extra: Any) -> Any:
    keys = "".join(f", {key}: {value}" for key, value in extra.items())
    return parse_plan(
        "version: 1\ndefaults: {region: eu-west-1, timeout: 300, progress_deadline: 60}\n"
        f"targets:\n  - {{cluster: prod, service: {service}, image: '{image}'{keys}}}\n",
        environ={},
    )


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(FLEET, speed=40, strict_output=True, listen=False) as running:
        yield running


async def described(sim: Simulator, service: str) -> dict[str, Any]:
    ecs: ECSClient
    async with ecs_client(sim) as ecs:
        [found] = (await ecs.describe_services(cluster="prod", services=[service]))["services"]
    return dict(found)


def updated(event: TargetEvent, _: list[TargetEvent]) -> bool:
    return event.event is EventName.SERVICE_UPDATED


@pytest.mark.parametrize(
    ("service", "rollback", "status", "ends_on"),
    [
        pytest.param("plain", "false", Status.FAILED, "plain:2", id="no-breaker"),
        pytest.param("plain", "true", Status.ROLLED_BACK, "plain:1", id="no-breaker-rollback"),
        pytest.param("guarded", "false", Status.FAILED, "guarded:2", id="breaker"),
        pytest.param("safe", "false", Status.ROLLED_BACK, "safe:1", id="breaker-rollback"),
    ],
)
async def test_a_rerun_over_a_failing_deployment_in_progress_is_never_unchanged(
    sim: Simulator, service: str, rollback: str, status: Status, ends_on: str
) -> None:
    changes = Changes(sim)
    broken = plan(service, f"example/{service}:broken", rollback=rollback)
    await killed_run(sim, broken, updated, journal_after=True)
    during = await described(sim, service)
    assert [d["rolloutState"] for d in during["deployments"]] == ["IN_PROGRESS", "COMPLETED"]
    assert during["taskDefinition"] == arn(f"{service}:2")

    again, events = await resumed_run(sim, broken, None)

    [result] = again.results.values()
    assert result.status is status, result.error
    assert again.verdict is RunVerdict.FAILED  # the exit code is not 0
    [attached] = [e for e in events if e.event is EventName.ATTACHED]
    assert attached.facts["deployment_id"] == during["deployments"][0]["id"]
    assert attached.facts["old_task_definition"] == arn(f"{service}:1")
    assert result.deployment_id == during["deployments"][0]["id"]
    # no second deployment of the revision: only our rollback, when we rolled back
    assert changes.updates[service] == (2 if rollback == "true" else 1)
    assert changes.registrations[service] == 1
    assert (await described(sim, service))["taskDefinition"] == arn(ends_on)
    # the journal of the re-run says it attached
    history = fold(events)[result.target.name]
    assert history.deployment_id == result.deployment_id
    assert history.old_task_definition == arn(f"{service}:1")


@pytest.mark.parametrize(
    ("service", "runs_before"),
    [
        pytest.param("guarded", "guarded:2", id="breaker-stalled"),
        pytest.param("safe", "safe:1", id="breaker-rolled-back"),
    ],
)
async def test_a_rerun_after_a_failed_deployment_deploys_again(
    sim: Simulator, service: str, runs_before: str
) -> None:
    changes = Changes(sim)
    broken = plan(service, f"example/{service}:broken")
    first, _ = await resumed_run(sim, broken, None)
    assert first.verdict is RunVerdict.FAILED
    assert (await described(sim, service))["taskDefinition"] == arn(runs_before)

    again, events = await resumed_run(sim, broken, None)

    [result] = again.results.values()
    assert result.status in (Status.FAILED, Status.ROLLED_BACK)
    assert not [e for e in events if e.event in (EventName.UNCHANGED, EventName.ATTACHED)]
    assert changes.updates[service] == 2  # deployed again


async def test_a_rerun_over_a_steady_service_changes_nothing(sim: Simulator) -> None:
    changes = Changes(sim)
    healthy = plan("steady", "example/steady:2")
    first, _ = await resumed_run(sim, healthy, None)
    assert first.verdict is RunVerdict.SUCCEEDED

    again, _ = await resumed_run(sim, healthy, None)

    assert again.verdict is RunVerdict.SUCCEEDED
    assert [r.status for r in again.results.values()] == [Status.UNCHANGED]
    assert (changes.updates["steady"], changes.registrations["steady"]) == (1, 1)


async def test_a_rerun_over_a_healthy_deployment_in_progress_waits_for_it(
    sim: Simulator,
) -> None:
    changes = Changes(sim)
    healthy = plan("steady", "example/steady:2")
    await killed_run(sim, healthy, updated)

    again, events = await resumed_run(sim, healthy, None)

    [result] = again.results.values()
    assert result.status is Status.SUCCEEDED
    assert [e.event for e in events].count(EventName.ATTACHED) == 1
    assert (changes.updates["steady"], changes.registrations["steady"]) == (1, 1)
    service = await described(sim, "steady")
    assert [d["rolloutState"] for d in service["deployments"]] == ["COMPLETED"]
    assert service["taskDefinition"] == arn("steady:2")


async def test_a_deployment_under_way_with_nothing_to_return_to_is_not_rolled_back(
    sim: Simulator,
) -> None:
    changes = Changes(sim)
    broken = plan("bare", "example/bare:broken", rollback="true")
    await killed_run(sim, broken, updated)
    while len((await described(sim, "bare"))["deployments"]) > 1:  # the old tasks drain
        await sim.clock.sleep(5)

    again, _ = await resumed_run(sim, broken, None)

    [result] = again.results.values()
    assert result.status is Status.FAILED
    assert result.error is not None
    assert "no rollback" in result.error
    assert "is not known" in result.error
    assert result.old_task_definition is None
    assert changes.updates["bare"] == 1


async def test_a_dry_run_says_what_a_rerun_does_with_an_unsteady_service(sim: Simulator) -> None:
    async def preview(deploy: Any) -> str:
        async with sim_pool(sim) as pool:
            return format_preview(await preview_plan(deploy, pool, max_parallel=1))

    rolling = plan("plain", "example/plain:broken")
    await killed_run(sim, rolling, updated)
    failed = plan("guarded", "example/guarded:broken")
    await resumed_run(sim, failed, None)
    steady = plan("steady", "example/steady:1")

    assert await preview(rolling) == (
        "prod/plain  unchanged, its deployment still in progress: waited for"
    )
    assert await preview(failed) == (
        "prod/guarded  unchanged, its last deployment failed: deployed again"
    )
    assert await preview(steady) == "prod/steady  unchanged"
