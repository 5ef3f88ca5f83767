#!/usr/bin/env python3
"""Start-up time of the console scripts: ``ecs-deploy --version`` and ``ecs-deploy-many --version``.

Each runs ``--runs`` times (default 10) as a subprocess, as a user's shell runs it; the
script prints the median, the fastest and the slowest wall time of each, and the load
average before and after, since a busy machine stretches every figure. The scripts are
the ones installed next to this Python (``.venv/bin``), else the ones on ``PATH``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

SCRIPTS = ("ecs-deploy", "ecs-deploy-many")


def script_path(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        sys.exit(f"{name} is not installed (pip install -e .)")
    return found


def time_once(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per command (default 10)")
    parser.add_argument("--arg", default="--version", help="the argument (default --version)")
    args = parser.parse_args()
    print(f"load average before: {load()}  ({os.cpu_count()} CPUs)")
    print(f"{'command':<34} {'median':>8} {'fastest':>8} {'slowest':>8}")
    for name in SCRIPTS:
        argv = [script_path(name), args.arg]
        time_once(argv)  # warm the file cache and the bytecode, as a second start finds them
        times = [time_once(argv) for _ in range(args.runs)]
        label = f"{name} {args.arg} (x{args.runs})"
        print(
            f"{label:<34} {statistics.median(times):>7.3f}s {min(times):>7.3f}s {max(times):>7.3f}s"
        )
    print(f"load average after:  {load()}")


if __name__ == "__main__":
    main()
