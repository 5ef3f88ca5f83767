"""Where a fleet command's calls go: AWS, a simulator at an endpoint, or a rehearsal's own.

A rehearsal (``--simulate``) builds a simulator fleet from the plan (``cli.rehearsal``)
and runs on that simulator's clock; ``--endpoint-url`` with ``--speed`` runs on a clock
as fast as that simulator's. ``connected`` opens the run's clients, the rehearsal's
simulator serving meanwhile.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import asyncclick as click

from ecs_deploy_many.aws.session import ClientPool, StaticKeys
from ecs_deploy_many.aws.watch import PollPolicy
from ecs_deploy_many.cli.exits import EXIT_PLAN
from ecs_deploy_many.cli.rehearsal import fleet_for_plan
from ecs_deploy_many.core.clock import Clock, ScaledClock, real_clock
from ecs_deploy_many.core.errors import FleetError
from ecs_deploy_many.core.scope import AwsScope
from ecs_deploy_many.plan import Plan
from ecs_deploy_many.sim.fleet import Fleet, load_fleet
from ecs_deploy_many.sim.server import Simulator

REHEARSAL_SPEED = 20.0
# Keys for the simulator: it checks signatures' shape, not their secret.
REHEARSAL_KEYS = StaticKeys("AKIDREHEARSAL", "rehearsal-secret-not-a-real-key")

__all__ = ["REHEARSAL_KEYS", "REHEARSAL_SPEED", "Where", "connected", "where_of", "where_or_exit"]


@dataclass(frozen=True)
class Where:
    """Where a run's calls go, on which clock, and the plan as aimed there."""

    plan: Plan
    clock: Clock
    keys: StaticKeys | None = None
    endpoint_url: str | None = None
    simulator: Simulator | None = None
    """The in-process simulator of a rehearsal, not started yet."""
    simulated_at: float | None = None
    """The speed of the simulator whose clock times the run, when one does."""


def where_of(plan: Plan, options: dict[str, Any]) -> Where:
    """Where ``plan`` runs: AWS, a simulator elsewhere, or a rehearsal's own simulator."""
    speed = options["speed"]
    if not options["simulate"]:
        if speed is not None and not options["endpoint_url"]:
            raise click.UsageError("--speed only applies with --simulate or --endpoint-url")
        clock = real_clock() if speed in (None, 1) else ScaledClock(speed)
        return Where(plan, clock, endpoint_url=options["endpoint_url"], simulated_at=speed)
    speed = speed or REHEARSAL_SPEED
    fleet_file = options["fleet_file"]
    base = load_fleet(fleet_file) if fleet_file else None
    environ = os.environ
    region = (
        base.region
        if base
        else environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    )
    # Profiles and roles name real accounts; a rehearsal only needs the region.
    targets = tuple(
        replace(t, scope=AwsScope(region=t.scope.region or region)) for t in plan.targets
    )
    plan = replace(plan, targets=targets)
    # The plan may name what the simulator, like ECS, refuses (a service "api v2").
    made_for = f"the simulator's fleet made for {plan.source}"
    try:
        fleet: Fleet = fleet_for_plan(plan, base)
    except FleetError as error:
        raise FleetError(made_for, error.key, error.message) from None
    except ValueError as error:  # pydantic's
        raise FleetError(made_for, "", str(error)) from None
    simulator = Simulator(fleet, speed=speed)
    return Where(plan, simulator.clock, REHEARSAL_KEYS, simulator=simulator, simulated_at=speed)


def where_or_exit(plan_path: str, plan: Plan, options: dict[str, Any]) -> Where:
    try:
        return where_of(plan, options)
    except FleetError as error:
        click.echo(f"error: {error}", err=True)
        click.echo(f"{plan_path}: cannot be rehearsed; nothing was changed", err=True)
        raise click.exceptions.Exit(EXIT_PLAN) from None


@asynccontextmanager
async def connected(
    where: Where, *, verbose: bool, announce: bool = True
) -> AsyncIterator[ClientPool]:
    """Clients for the run, the rehearsal's simulator serving meanwhile (said on stderr
    unless not to ``announce``)."""
    async with AsyncExitStack() as stack:
        endpoint_url = where.endpoint_url
        if where.simulator is not None:
            simulator = await stack.enter_async_context(where.simulator)
            endpoint_url = simulator.endpoint_url
        if where.simulator is not None and announce:
            lock = "; the run lock is in the process (its table or file untouched)"
            click.echo(
                f"rehearsing against an in-process ECS simulator at {where.simulated_at:g}x "
                f"({endpoint_url}){lock if where.plan.lock else ''}",
                err=True,
            )
        plan = where.plan
        yield await stack.enter_async_context(
            ClientPool(
                where.clock,
                keys=where.keys,
                endpoint_url=endpoint_url,
                bucket_specs=plan.rate_limits,
                poll_policy=PollPolicy(plan.polling.initial_interval, plan.polling.max_interval),
                verbose=verbose,
            )
        )
