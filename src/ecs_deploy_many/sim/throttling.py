"""Server-side throttling: ECS's token buckets, one per account, region and category.

Real ECS shares each bucket between every caller of an account and region, so the
simulator keeps one bucket per (account, region, category) for all its clients. The
buckets run on the simulator's clock: at ``speed=50`` a bucket refills fifty times
faster in real time, exactly as much per simulated second as in AWS.
"""

from __future__ import annotations

from collections.abc import Mapping

from ecs_deploy_many.core.clock import Clock
from ecs_deploy_many.core.ratelimit import ECS_BUCKETS, BucketSpec, TokenBucket, category_of

__all__ = ["Throttle"]


class Throttle:
    """Decides whether a call gets through, as ECS's frontend would."""

    def __init__(
        self,
        clock: Clock,
        buckets: Mapping[str, BucketSpec] | None = None,
        *,
        enabled: bool = True,
    ) -> None:
        unknown = set(buckets or {}) - ECS_BUCKETS.keys()
        if unknown:
            raise ValueError(f"unknown throttling categories {sorted(unknown)}")
        self.enabled = enabled
        # Overrides replace single categories; the rest keep the documented sizes.
        self.specs: dict[str, BucketSpec] = {**ECS_BUCKETS, **(buckets or {})}
        self._clock = clock
        self._buckets: dict[tuple[str, str, str], TokenBucket] = {}

    def allow(self, account: str, region: str, operation: str) -> bool:
        """Spend a token for this call; False means answer ThrottlingException."""
        category = category_of(operation)
        if not self.enabled or category is None:
            # ECS documents no bucket for the other operations: they are never throttled here.
            return True
        key = (account, region, category)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.specs[category], self._clock)
        return bucket.try_take()
