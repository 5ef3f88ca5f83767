"""A large fleet costs nothing while it is steady: work follows what changes."""

from __future__ import annotations

from tests.clocks import ManualClock

from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.state import SimState

REGION = "us-east-1"
CLUSTERS, SERVICES_PER_CLUSTER, TASKS_PER_SERVICE = 10, 200, 5
SLICE = 20
# A replaced task: PENDING, ACTIVATING, RUNNING, healthy for the new one;
# STOPPING, DEPROVISIONING, STOPPED for the old one.
EVENTS_PER_REPLACED_TASK = 7


def test_deploying_a_slice_of_a_large_fleet_touches_only_the_slice() -> None:
    body = {"containerDefinitions": [{"name": "app", "image": "app:1", "memory": 128}]}
    fleet = Fleet.model_validate(
        {
            "task_definitions": {"app": body},
            "clusters": [
                {
                    "name": f"c{c}",
                    "services": [
                        {
                            "name": f"s{s}",
                            "task_definition": "app",
                            "desired_count": TASKS_PER_SERVICE,
                        }
                        for s in range(SERVICES_PER_CLUSTER)
                    ],
                }
                for c in range(CLUSTERS)
            ],
        }
    )
    clock = ManualClock(speed=100.0)
    state = SimState(clock, fleet)
    clusters = state.handle(
        "DescribeClusters", REGION, {"clusters": [f"c{c}" for c in range(CLUSTERS)]}
    )
    assert sum(c["runningTasksCount"] for c in clusters["clusters"]) == 10_000
    assert sum(c["activeServicesCount"] for c in clusters["clusters"]) == 2_000
    assert state.statistics() == {"events_processed": 0, "events_scheduled": 0}

    new = state.handle(
        "RegisterTaskDefinition",
        REGION,
        {
            "family": "app",
            "containerDefinitions": [{"name": "app", "image": "app:2", "memory": 128}],
        },
    )["taskDefinition"]["taskDefinitionArn"]
    for s in range(SLICE):
        state.handle(
            "UpdateService", REGION, {"cluster": "c0", "service": f"s{s}", "taskDefinition": new}
        )
    clock.t += 600
    described = state.handle(
        "DescribeServices", REGION, {"cluster": "c0", "services": [f"s{s}" for s in range(10)]}
    )
    assert {d["rolloutState"] for s in described["services"] for d in s["deployments"]} == {
        "COMPLETED"
    }
    processed = state.statistics()["events_processed"]
    assert processed == SLICE * TASKS_PER_SERVICE * EVENTS_PER_REPLACED_TASK
