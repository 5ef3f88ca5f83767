"""The `/_sim/*` routes benchmarks and rehearsals read."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from botocore.exceptions import ClientError

from ecs_deploy_many.core.ratelimit import BucketSpec
from ecs_deploy_many.sim.server import Simulator
from ecs_deploy_many.sim.stats import SimStats
from tests.integration.helpers import CLUSTER, SPEED, ecs_client

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

pytestmark = pytest.mark.anyio


async def sim_route(sim: Simulator, method: str, path: str) -> Any:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, sim.endpoint_url + path) as response,
    ):
        assert response.status == 200
        return await response.json()


async def test_stats_count_calls_throttles_and_errors() -> None:
    small = {"service_read": BucketSpec(burst=3, refill_per_s=1)}
    async with (
        Simulator(throttling="aws", buckets=small) as sim,
        ecs_client(sim.endpoint_url, attempts=1) as ecs,
    ):
        await ecs.create_cluster(clusterName="prod")
        for _ in range(4):
            with contextlib.suppress(ClientError):
                await ecs.describe_services(cluster="prod", services=["api"])
        with pytest.raises(ClientError):
            await ecs.describe_task_definition(taskDefinition="nothing")

        body = await sim_route(sim, "GET", "/_sim/stats")
        assert body == {
            "calls": {"CreateCluster": 1, "DescribeServices": 4, "DescribeTaskDefinition": 1},
            "throttled": {"DescribeServices": 1},
            "injected_errors": {},
            "errors": {"ClientException": 1, "ThrottlingException": 1},
            "callers": {"AKIDEXAMPLE": 6},
            "updates": {},
            "totals": {"calls": 6, "throttled": 1, "injected_errors": 0, "errors": 2},
        }
        assert SimStats.from_json(body) == sim.stats()
        assert sim.stats().total_calls == 6

        assert (await sim_route(sim, "POST", "/_sim/reset-stats"))["totals"]["calls"] == 0
        await ecs.list_clusters()
        assert sim.stats().calls == {"ListClusters": 1}
        sim.reset_stats()
        assert sim.stats() == SimStats()


async def test_stats_count_the_updates_each_service_accepted(
    fleet_sim: Simulator, fleet_ecs: ECSClient
) -> None:
    [arn] = (await fleet_ecs.list_services(cluster=CLUSTER))["serviceArns"][:1]
    for count in (2, 3):
        await fleet_ecs.update_service(cluster=CLUSTER, service=arn, desiredCount=count)
    with pytest.raises(ClientError):  # refused: not an update
        await fleet_ecs.update_service(cluster=CLUSTER, service=arn, desiredCount=-1)
    assert fleet_sim.stats().updates == {arn: 2}
    assert SimStats.from_json(await sim_route(fleet_sim, "GET", "/_sim/stats")) == fleet_sim.stats()


async def test_clock_route_shows_simulated_time(sim: Simulator, ecs: ECSClient) -> None:
    body = await sim_route(sim, "GET", "/_sim/clock")
    assert body["speed"] == SPEED
    assert abs(body["now"] - sim.clock.now()) < SPEED  # within a second of the loop's time
