"""Throttling, latency and injected faults, as a client of the simulator meets them."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError

from ecs_deploy_many.aws.ratelimit import BucketSpec
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import ecs_client

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

pytestmark = pytest.mark.anyio


async def outcomes(ecs: ECSClient, calls: int) -> list[str]:
    """Call ListClusters ``calls`` times; "ok" or the error code of each answer."""
    seen = []
    for _ in range(calls):
        try:
            await ecs.list_clusters()
            seen.append("ok")
        except ClientError as error:
            seen.append(error.response["Error"]["Code"])
    return seen


async def test_burst_then_rate_exceeded_then_refill() -> None:
    # One token per simulated second at speed 2: a token every 0.5 s of real time.
    small = {"cluster_read": BucketSpec(burst=5, refill_per_s=1)}
    async with (
        Simulator(speed=2, throttling="aws", buckets=small) as sim,
        ecs_client(sim.endpoint_url, attempts=1) as ecs,
    ):
        await ecs.create_cluster(clusterName="default")  # no bucket for CreateCluster
        assert await outcomes(ecs, 6) == ["ok"] * 5 + ["ThrottlingException"]
        with pytest.raises(ClientError) as throttled:
            await ecs.describe_clusters(clusters=["default"])
        assert throttled.value.response["Error"]["Message"] == "Rate exceeded"
        assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

        await sim.clock.sleep(1.2)
        assert await outcomes(ecs, 1) == ["ok"]

        # Other categories and other regions have buckets of their own.
        await ecs.describe_services(cluster="default", services=["api"])
        async with ecs_client(sim.endpoint_url, "us-west-2", attempts=1) as oregon:
            assert await outcomes(oregon, 5) == ["ok"] * 5
        assert sim.stats().throttled == {"DescribeClusters": 1, "ListClusters": 1}


async def test_documented_bucket_for_task_definition_registration() -> None:
    # 20 registrations at once, then 1 per second: the bottleneck of fleet rollouts.
    async with (
        Simulator(throttling="aws") as sim,
        ecs_client(sim.endpoint_url, attempts=1) as ecs,
    ):
        codes = []
        for n in range(21):
            try:
                await ecs.register_task_definition(
                    family=f"app{n}",
                    containerDefinitions=[{"name": "app", "image": "app:1", "memory": 128}],
                )
                codes.append("ok")
            except ClientError as error:
                codes.append(error.response["Error"]["Code"])
        assert codes == ["ok"] * 20 + ["ThrottlingException"]


async def test_botocore_retries_absorb_light_throttling() -> None:
    small = {"cluster_read": BucketSpec(burst=2, refill_per_s=2)}
    async with (
        Simulator(throttling="aws", buckets=small) as sim,
        ecs_client(sim.endpoint_url) as ecs,  # botocore's default retry policy
    ):
        assert await outcomes(ecs, 4) == ["ok"] * 4
        assert sim.stats().throttled["ListClusters"] >= 1


async def test_throttling_off_lets_everything_through(sim: Simulator, ecs: ECSClient) -> None:
    assert await outcomes(ecs, 120) == ["ok"] * 120


async def test_injected_errors_are_seeded_server_exceptions() -> None:
    async def pattern(seed: int) -> tuple[list[str], int]:
        async with (
            Simulator(error_rate=0.5, seed=seed) as sim,
            ecs_client(sim.endpoint_url, attempts=1) as ecs,
        ):
            seen = await outcomes(ecs, 30)
            return seen, sim.stats().injected_errors.get("ListClusters", 0)

    first, injected = await pattern(7)
    assert set(first) == {"ok", "ServerException"}
    assert first.count("ServerException") == injected
    assert (await pattern(7))[0] == first
    assert (await pattern(8))[0] != first


async def test_injected_error_is_http_500_and_changes_nothing() -> None:
    async with (
        Simulator(error_rate=1.0) as sim,
        ecs_client(sim.endpoint_url, attempts=1) as ecs,
    ):
        with pytest.raises(ClientError) as failed:
            await ecs.create_cluster(clusterName="never")
        assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert failed.value.response["Error"]["Code"] == "ServerException"
        assert sim.state.handle("ListClusters", "eu-west-1", {})["clusterArns"] == []


@pytest.mark.parametrize(("speed", "at_least", "below"), [(1, 0.25, 5.0), (50, 0.0, 0.25)])
async def test_latency_runs_on_the_simulated_clock(
    speed: float, at_least: float, below: float
) -> None:
    # 250 ms of ECS latency; at speed 50 it costs 5 ms of real time per call.
    async with (
        Simulator(latency_ms=250, speed=speed) as sim,
        ecs_client(sim.endpoint_url, attempts=1) as ecs,
    ):
        await ecs.list_clusters()  # the first call also pays for connecting
        started = time.monotonic()
        await ecs.list_clusters()
        assert at_least <= time.monotonic() - started < below


@pytest.mark.parametrize(
    "options",
    [
        {"throttling": "sometimes"},
        {"buckets": {"service_reads": BucketSpec(1, 1)}},
        {"error_rate": 1.5},
        {"latency_ms": -1},
        {"speed": 0},
    ],
)
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each option words its own message
        Simulator(**options)  # type: ignore[arg-type]
