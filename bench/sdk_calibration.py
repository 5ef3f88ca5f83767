#!/usr/bin/env python3
"""Bare aiobotocore calls against the simulator: what one ECS call costs the SDK alone.

``fleet_bench.py`` runs this as a process of its own after each ``ecs-deploy-many`` run,
against the same simulator and with the same client configuration as the engine's
(``aws/session.py``: one attempt per call, the same connection pool and timeouts), and
makes as many calls as the engine made. Each call is a DescribeServices of up to ten of
the fleet's services, the engine's batched poll. Its CPU time over the calls divided by
the calls is the per-call cost of the SDK on this machine, right now, so the engine's
per-call CPU can be given as a ratio that does not depend on how
fast the machine is or how busy it was.

The calls are paced below the DescribeServices bucket at the simulator's speed so that
they are answered, not throttled; throttled answers are counted and printed.

Usage: ``sdk_calibration.py ENDPOINT SERVICES_JSON CALLS SPEED`` where SERVICES_JSON
maps each cluster to its services. Prints one JSON line: calls, throttled, errors, and
``cpu_s``, the process's CPU time over the calls alone (imports and the client's creation
left out, as the benchmark leaves the engine's start-up out of its per-call figure).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from ecs_deploy_many.aws.session import MAX_POOL_CONNECTIONS
from ecs_deploy_many.core.ratelimit import ECS_BUCKETS, OPERATION_CATEGORY

WORKERS = 10
BATCH = 10  # DescribeServices takes at most ten services
PACE = 0.8  # share of the bucket's refill the calls use


def batches(services: dict[str, list[str]]) -> list[tuple[str, list[str]]]:
    """Every cluster's services, ten per call, in a fixed order."""
    return [
        (cluster, names[start : start + BATCH])
        for cluster, names in sorted(services.items())
        for start in range(0, len(names), BATCH)
    ]


async def calibrate(
    endpoint: str, services: dict[str, list[str]], calls: int, speed: float
) -> dict[str, float]:
    bucket = ECS_BUCKETS[OPERATION_CATEGORY["DescribeServices"]]
    per_real_s = PACE * bucket.refill_per_s * speed
    work = batches(services)
    counts: dict[str, float] = {"calls": 0, "throttled": 0, "errors": 0}
    config = AioConfig(
        retries={"total_max_attempts": 1},
        max_pool_connections=MAX_POOL_CONNECTIONS,
        connect_timeout=10,
        read_timeout=30,
    )
    session = get_session()
    async with session.create_client("ecs", endpoint_url=endpoint, config=config) as client:
        cpu_before = time.process_time()
        started = time.monotonic()
        next_call = 0

        async def worker() -> None:
            nonlocal next_call
            while next_call < calls:
                index = next_call
                next_call += 1
                # The bucket starts full: the first burst goes at once, the rest paced.
                due = started + max(0.0, index - bucket.burst / 2) / per_real_s
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                cluster, names = work[index % len(work)]
                try:
                    await client.describe_services(cluster=cluster, services=names)
                except ClientError as exc:
                    code = exc.response.get("Error", {}).get("Code")
                    counts["throttled" if code == "ThrottlingException" else "errors"] += 1
                counts["calls"] += 1

        await asyncio.gather(*(worker() for _ in range(WORKERS)))
        counts["cpu_s"] = time.process_time() - cpu_before
    return counts


def main(argv: list[str]) -> int:
    endpoint, services_file, calls, speed = argv
    services = json.loads(Path(services_file).read_text(encoding="utf-8"))
    counts = asyncio.run(calibrate(endpoint, services, int(calls), float(speed)))
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
