#!/usr/bin/env python3
"""Runs ``ecs-deploy-many`` with an event-loop lag probe, and cProfile on request.

``fleet_bench.py`` starts the deployer through this script instead of its console
script. The probe is one more task on the engine's event loop: it sleeps a fixed real
interval again and again and records how late it wakes. A wake-up that comes late is
time the engine's clock (real time times the speed) ran on while the loop could not
run: the engine was busy with its own work, or another process held the CPU. Either
way the engine's waits, polls and bucket refills fall behind the simulator's clock and
the simulated wall stretches, so the benchmark flags the run. To tell the two apart it
also reads how long the engine's thread waited for a CPU while runnable (Linux's
``/proc/self/schedstat``, the scheduler's run delay).

Environment:

- ``ECS_BENCH_LAG_FILE``: write the probe's figures there as JSON when the process exits.
- ``ECS_BENCH_PROFILE``: profile the whole process with cProfile and dump the stats there
  (``python -m pstats FILE``).

Every other argument goes to ``ecs-deploy-many`` unchanged.
"""

from __future__ import annotations

import asyncio
import atexit
import cProfile
import json
import os
import time
from typing import Any

# Real seconds between wake-ups; 20 a second costs the engine nothing measurable.
PROBE_INTERVAL_S = 0.05

SCHEDSTAT = "/proc/self/schedstat"

_lateness: list[float] = []
_started = time.monotonic()


def cpu_wait_s() -> float | None:
    """Seconds this (main) thread has spent runnable but waiting for a CPU, if known."""
    try:
        with open(SCHEDSTAT, encoding="ascii") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


_cpu_wait_at_start = cpu_wait_s()


async def _probe() -> None:
    """Sleep ``PROBE_INTERVAL_S`` over and over; record how late each wake-up is."""
    while True:
        before = time.monotonic()
        await asyncio.sleep(PROBE_INTERVAL_S)
        _lateness.append(max(0.0, time.monotonic() - before - PROBE_INTERVAL_S))


class _ProbedLoops(asyncio.DefaultEventLoopPolicy):
    """Every event loop this process creates starts with the probe running on it."""

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        tasks: list[asyncio.Task[None]] = []
        loop.call_soon(lambda: tasks.append(loop.create_task(_probe())))
        return loop


def _write_lag(path: str) -> None:
    waited = cpu_wait_s()
    figures: dict[str, Any] = {
        "interval_s": PROBE_INTERVAL_S,
        "real_s": time.monotonic() - _started,
        "lateness_s": _lateness,
        "cpu_wait_s": None
        if waited is None or _cpu_wait_at_start is None
        else waited - _cpu_wait_at_start,
    }
    with open(path, "w", encoding="utf-8") as out:
        json.dump(figures, out)


def _dump_profile(profiler: cProfile.Profile, path: str) -> None:
    profiler.disable()
    profiler.dump_stats(path)


def main() -> None:
    lag_file = os.environ.get("ECS_BENCH_LAG_FILE")
    profile_file = os.environ.get("ECS_BENCH_PROFILE")
    if lag_file:
        asyncio.set_event_loop_policy(_ProbedLoops())
        atexit.register(_write_lag, lag_file)
    if profile_file:
        profiler = cProfile.Profile()
        atexit.register(_dump_profile, profiler, profile_file)
        profiler.enable()
    from ecs_deploy_many.cli.many import main as deployer

    deployer()


if __name__ == "__main__":
    main()
