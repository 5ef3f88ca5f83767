"""Starting the simulator as a user does: a process other tools point at."""

from __future__ import annotations

import select
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest

from ecs_deploy_many.cli.rehearsal import fleet_for_plan
from ecs_deploy_many.plan import load_plan
from ecs_deploy_many.sim.fleet import load_fleet
from ecs_deploy_many.sim.server import Simulator

SCRIPT = Path(sys.executable).parent / "ecs-deploy-many"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}


@contextmanager
def serving(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The server started with ``args``, and the first line it printed; killed if still up."""
    proc = subprocess.Popen(
        [SCRIPT, "sim", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        first = proc.stdout.readline() if ready else ""
        assert first, "no address printed"
        yield proc, first.strip()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()  # reaps the process and closes its pipes


@asynccontextmanager
async def plan_world(
    directory: Path, monkeypatch: pytest.MonkeyPatch, plan: str, fleet: str
) -> AsyncIterator[Simulator]:
    """``plan.yaml`` and ``fleet.yaml`` in ``directory`` (the working directory), and a
    simulator holding what the plan deploys, at release 1.0; the plan deploys 2.0."""
    (directory / "plan.yaml").write_text(plan)
    (directory / "fleet.yaml").write_text(fleet)
    monkeypatch.setenv("RELEASE", "2.0")
    monkeypatch.chdir(directory)
    loaded = load_plan(directory / "plan.yaml", environ={"RELEASE": "1.0"})
    world = fleet_for_plan(loaded, load_fleet(directory / "fleet.yaml"))
    async with Simulator(world, speed=100) as running:
        yield running
