"""The injected clock and the token buckets that run on it."""

from __future__ import annotations

import time

import pytest
from tests.clocks import ManualClock

from ecs_deploy_many.core.clock import ScaledClock
from ecs_deploy_many.core.ratelimit import (
    ECS_BUCKETS,
    OPERATION_CATEGORY,
    BucketSpec,
    TokenBucket,
    client_side,
)


def test_scaled_clock_runs_faster() -> None:
    clock = ScaledClock(50, start=0.0)
    time.sleep(0.02)
    assert clock.now() >= 1.0  # 20 ms real is at least 1 s simulated


def test_clock_rejects_non_positive_speed() -> None:
    with pytest.raises(ValueError, match="positive"):
        ScaledClock(0)


def test_bucket_bursts_then_refills() -> None:
    clock = ManualClock(start=1_000.0)
    bucket = TokenBucket(BucketSpec(burst=3, refill_per_s=1), clock)  # type: ignore[arg-type]
    assert [bucket.try_take() for _ in range(4)] == [True, True, True, False]
    assert bucket.seconds_until_token() == pytest.approx(1.0)
    clock.t += 0.5
    assert not bucket.try_take()
    clock.t += 0.5
    assert bucket.try_take()
    clock.t += 100
    assert bucket.tokens == 3  # never above the burst


@pytest.mark.anyio
async def test_take_waits_for_refill() -> None:
    clock = ManualClock(start=1_000.0)
    bucket = TokenBucket(BucketSpec(burst=1, refill_per_s=2), clock)  # type: ignore[arg-type]
    start = clock.now()
    for _ in range(5):
        await bucket.take()
    assert clock.now() - start == pytest.approx(2.0)  # 4 refills at 2 per second


def test_every_category_has_a_bucket() -> None:
    assert set(OPERATION_CATEGORY.values()) <= set(ECS_BUCKETS)
    assert ECS_BUCKETS["task_definition_modify"] == BucketSpec(20, 1)


@pytest.mark.parametrize(
    ("server", "client"),
    [
        (BucketSpec(20, 1), BucketSpec(18, 1)),  # registrations: two in reserve
        (BucketSpec(100, 20), BucketSpec(90, 20)),  # a tenth in reserve
        (BucketSpec(2, 5), BucketSpec(1, 5)),  # never below one token
    ],
)
def test_client_keeps_part_of_the_burst_in_reserve(server: BucketSpec, client: BucketSpec) -> None:
    assert client_side(server) == client
