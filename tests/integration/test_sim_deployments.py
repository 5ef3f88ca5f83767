"""Rolling deployments as a deployer sees them through DescribeServices.

Each test updates one steady service of the fleet and polls it like a deployer would,
asserting on what ECS documents: deployment states and reasons, pacing, events, and the
circuit breaker with and without rollback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.server import Simulator
from tests.clocks import ManualClock
from tests.integration.helpers import (
    CLUSTER,
    completed,
    deploy,
    ecs_client,
    fleet_spec,
    messages,
    primary,
    watch_service,
)

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

pytestmark = pytest.mark.anyio

STUCK = (
    "was unable to stop or start tasks during a deployment because of the service "
    "deployment configuration."
)
BREAKER = "ECS deployment circuit breaker: tasks failed to start."


def failed(deployment_id: str) -> Any:
    """``until`` for watch_service: our deployment is FAILED."""

    def check(service: dict[str, Any]) -> bool:
        ours = [d for d in service["deployments"] if d["id"] == deployment_id]
        return bool(ours) and ours[0]["rolloutState"] == "FAILED"

    return check


async def test_rolling_deployment_until_completed(fleet_ecs: ECSClient) -> None:
    updated = await deploy(fleet_ecs, "api", "app:2")
    new, old = updated["deployments"]
    assert (new["status"], new["rolloutState"], new["runningCount"]) == (
        "PRIMARY",
        "IN_PROGRESS",
        0,
    )
    assert new["rolloutStateReason"] == f"ECS deployment {new['id']} in progress."
    assert new["taskDefinition"].endswith(":task-definition/web:2")
    assert (old["status"], old["rolloutState"]) == ("ACTIVE", "COMPLETED")
    assert old["taskDefinition"].endswith(":task-definition/web:1")

    views = await watch_service(fleet_ecs, CLUSTER, "api", completed)
    assert any(len(v["deployments"]) == 2 and v["runningCount"] >= 3 for v in views)
    final = views[-1]
    (done,) = final["deployments"]
    assert done["id"] == new["id"]  # ours, not a rollback: the only sound success check
    assert done["rolloutStateReason"] == f"ECS deployment {new['id']} completed."
    assert (final["runningCount"], final["pendingCount"]) == (2, 0)
    assert final["taskDefinition"] == new["taskDefinition"]
    assert messages(final)[:2] == [
        "(service api) has reached a steady state.",
        f"(service api) (deployment {new['id']}) deployment completed.",
    ]
    assert any(m.startswith("(service api) has started 2 tasks: (task ") for m in messages(final))

    arns = (await fleet_ecs.list_tasks(cluster=CLUSTER, serviceName="api"))["taskArns"]
    tasks = (await fleet_ecs.describe_tasks(cluster=CLUSTER, tasks=arns))["tasks"]
    assert {(t["lastStatus"], t["startedBy"], t["taskDefinitionArn"]) for t in tasks} == {
        ("RUNNING", new["id"], new["taskDefinition"])
    }
    assert len(tasks) == 2


async def test_pacing_keeps_within_minimum_healthy_and_maximum_percent(
    fleet_ecs: ECSClient,
) -> None:
    # desiredCount 4, minimumHealthyPercent 50, maximumPercent 100: replace two at a time.
    await deploy(fleet_ecs, "wide", "app:2")
    views = await watch_service(fleet_ecs, CLUSTER, "wide", completed)
    for view in views:
        assert view["runningCount"] + view["pendingCount"] <= 4
        assert view["runningCount"] >= 2
    assert any(v["pendingCount"] == 2 for v in views)
    assert views[-1]["runningCount"] == 4


async def test_deployment_that_cannot_move_reports_it(
    fleet_sim: Simulator, fleet_ecs: ECSClient
) -> None:
    # minimumHealthyPercent 100 and maximumPercent 100: no task may stop, none may start.
    await deploy(fleet_ecs, "tight", "app:2")
    stuck_event = f"(service tight) {STUCK}"
    views = await watch_service(
        fleet_ecs,
        CLUSTER,
        "tight",
        lambda s: any(m.startswith(stuck_event) for m in messages(s)),
    )
    await fleet_sim.clock.sleep(60)
    (later,) = (await fleet_ecs.describe_services(cluster=CLUSTER, services=["tight"]))["services"]
    for view in (views[-1], later):
        assert primary(view)["rolloutState"] == "IN_PROGRESS"
        assert primary(view)["runningCount"] == 0
        assert view["runningCount"] == 2
    assert sum(m.startswith(stuck_event) for m in messages(later)) == 1


async def test_circuit_breaker_without_rollback_stalls_the_service(
    fleet_sim: Simulator, fleet_ecs: ECSClient
) -> None:
    ours = primary(await deploy(fleet_ecs, "guarded", "app:broken"))["id"]
    views = await watch_service(fleet_ecs, CLUSTER, "guarded", failed(ours))
    tripped = views[-1]
    new, old = tripped["deployments"]
    assert (new["id"], new["status"], new["rolloutStateReason"]) == (ours, "PRIMARY", BREAKER)
    assert new["failedTasks"] >= 3  # min(200, max(3, ceil(0.5 * 2)))
    assert (old["status"], old["runningCount"]) == ("ACTIVE", 2)
    events = messages(tripped)
    assert (
        f"(service guarded) (deployment {ours}) deployment failed: tasks failed to start." in events
    )
    assert "(service guarded) is unable to consistently start tasks successfully." in events
    assert any(
        m.startswith(
            "(service guarded) was unable to place a task. Reason: CannotPullContainerError"
        )
        for m in events
    )

    # A FAILED deployment launches nothing more; the old tasks keep serving.
    await fleet_sim.clock.sleep(120)
    (later,) = (await fleet_ecs.describe_services(cluster=CLUSTER, services=["guarded"]))[
        "services"
    ]
    assert [d["rolloutState"] for d in later["deployments"]] == ["FAILED", "COMPLETED"]
    assert (later["runningCount"], later["pendingCount"]) == (2, 0)
    assert later["deployments"][0]["failedTasks"] == new["failedTasks"]

    # The next UpdateService recovers the service.
    fixed = primary(await deploy(fleet_ecs, "guarded", "app:3"))["id"]
    final = (await watch_service(fleet_ecs, CLUSTER, "guarded", completed))[-1]
    assert final["deployments"][0]["id"] == fixed


async def test_circuit_breaker_with_rollback_ends_on_the_old_revision() -> None:
    # Simulated time moves only when the test moves it, a second at a time, so every
    # state the rollout passes through is seen however busy the machine is.
    clock = ManualClock()
    fleet = Fleet.model_validate(fleet_spec())
    async with (
        Simulator(fleet, clock=clock, strict_output=True) as sim,
        ecs_client(sim.endpoint_url, attempts=1) as ecs,
    ):
        (before,) = (await ecs.describe_services(cluster=CLUSTER, services=["safe"]))["services"]
        stable = primary(before)
        ours = primary(await deploy(ecs, "safe", "app:broken"))["id"]
        views = await step_until(ecs, clock, "safe", failed(ours))
        rolling_back = primary(views[-1])
        assert rolling_back["id"] not in (ours, stable["id"])
        assert rolling_back["taskDefinition"] == stable["taskDefinition"]
        assert rolling_back["rolloutStateReason"] == (
            f"ECS deployment circuit breaker: rolling back to deploymentId {stable['id']}."
        )
        assert f"(service safe) rolling back to deployment {stable['id']}." in messages(views[-1])

        final = (await step_until(ecs, clock, "safe", completed))[-1]
    # What the botocore services_stable waiter accepts: one deployment, running == desired.
    # Only the deployment id tells a deployer that its rollout failed.
    assert final["runningCount"] == final["desiredCount"] == 2
    assert final["deployments"][0]["id"] == rolling_back["id"]
    assert final["taskDefinition"] == stable["taskDefinition"]


async def step_until(
    ecs: ECSClient, clock: ManualClock, service: str, until: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    """Every view of ``service``, a simulated second apart, until ``until`` holds."""
    seen: list[dict[str, Any]] = []
    for _ in range(3600):
        (current,) = (await ecs.describe_services(cluster=CLUSTER, services=[service]))["services"]
        seen.append(current)
        if until(current):
            return seen
        clock.t += 1
    raise AssertionError(f"{service} never got there in a simulated hour: {seen[-1]}")


async def test_unhealthy_image_trips_the_breaker_in_stage_two(fleet_ecs: ECSClient) -> None:
    ours = primary(await deploy(fleet_ecs, "safe", "app:sick"))["id"]
    views = await watch_service(fleet_ecs, CLUSTER, "safe", failed(ours))
    events = messages(views[-1])
    assert any(m.endswith("failed container health checks.") for m in events)
    assert any(v["deployments"][0]["runningCount"] > 0 for v in views)  # they did run
    final = (await watch_service(fleet_ecs, CLUSTER, "safe", completed))[-1]
    assert final["taskDefinition"].endswith(":task-definition/web:1")


async def test_crashing_image_restarts_tasks_without_completing(
    fleet_sim: Simulator, fleet_ecs: ECSClient
) -> None:
    ours = primary(await deploy(fleet_ecs, "api", "app:crashy"))["id"]
    await fleet_sim.clock.sleep(60)  # RUNNING after 11 s, exit 10 s later, replaced
    stopped_arns = (
        await fleet_ecs.list_tasks(cluster=CLUSTER, serviceName="api", desiredStatus="STOPPED")
    )["taskArns"]
    stopped = (await fleet_ecs.describe_tasks(cluster=CLUSTER, tasks=stopped_arns))["tasks"]
    crashed = [t for t in stopped if t["startedBy"] == ours and t["lastStatus"] == "STOPPED"]
    assert crashed
    for task in crashed:
        assert task["stopCode"] == "EssentialContainerExited"
        assert task["stoppedReason"] == "Essential container in task exited"
        assert task["containers"][0]["exitCode"] == 1
    (view,) = (await fleet_ecs.describe_services(cluster=CLUSTER, services=["api"]))["services"]
    assert primary(view)["id"] == ours
    assert primary(view)["rolloutState"] == "IN_PROGRESS"
    assert len(view["deployments"]) == 2
