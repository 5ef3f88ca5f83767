"""`ecs-deploy-many sim serve`: the local ECS simulator as a long-running server.

The first line on stdout is the address, flushed at once, so a script or test can start
the server on port 0 and read where it landed. Logs go to stderr. SIGINT and SIGTERM
stop it cleanly with exit code 0.
"""

from __future__ import annotations

import signal
import sys
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import asyncclick as click

__all__ = ["sim"]


@click.group()
def sim() -> None:
    """Run the local ECS simulator."""


@sim.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port to bind; 0 picks a free one.",
)
@click.option(
    "--fleet",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Fleet file describing the clusters, services and task definitions to start with.",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Simulated seconds per real second.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed for every random choice."
)
@click.option(
    "--throttling",
    type=click.Choice(["aws", "off"]),
    default="off",
    show_default=True,
    help="Enforce ECS's documented API rate limits.",
)
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Latency of each call at speed 1; scaled by --speed like every other duration.",
)
@click.option(
    "--error-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of calls answered with a 500 ServerException.",
)
async def serve(
    host: str,
    port: int,
    fleet: Path | None,
    speed: float,
    seed: int,
    throttling: str,
    latency_ms: float,
    error_rate: float,
) -> None:
    """Serve the ECS API on HOST:PORT until interrupted."""
    # Imported here: the simulator (aiohttp, botocore, pydantic) would slow every start.
    import structlog

    from ecs_deploy_many.core.errors import FleetError
    from ecs_deploy_many.sim.fleet import load_fleet
    from ecs_deploy_many.sim.server import Simulator

    try:
        world = None if fleet is None else load_fleet(fleet)
    except FleetError as error:
        raise click.BadParameter(str(error), param_hint="'--fleet'") from None
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    simulator = Simulator(
        world,
        speed=speed,
        seed=seed,
        throttling="aws" if throttling == "aws" else "off",
        latency_ms=latency_ms,
        error_rate=error_rate,
        host=host,
        port=port,
    )
    # Signals are caught before the address is printed: a caller may stop us right after.
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with AsyncExitStack() as stack:
            try:
                running = await stack.enter_async_context(simulator)
            except OSError as error:
                raise click.ClickException(f"cannot listen on {host}:{port}: {error}") from None
            click.echo(f"ECS simulator listening on {running.endpoint_url}")  # flushes
            async for _ in signals:
                break
