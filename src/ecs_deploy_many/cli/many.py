"""`ecs-deploy-many`: fleet rollouts from a deploy plan, and the local ECS simulator."""

from __future__ import annotations

import asyncclick as click

from ecs_deploy_many import __version__
from ecs_deploy_many.cli.sim import sim


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ecs-deploy-many", message="%(prog)s %(version)s")
async def cli() -> None:
    """Roll out container images to many Amazon ECS services at once."""


cli.add_command(sim)


def main() -> None:
    """Console-script entry point."""
    cli()
