"""`ecs-deploy`: single-service mode, a drop-in for the original bash ecs-deploy."""

from __future__ import annotations

import asyncclick as click

from ecs_deploy_many import __version__


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ecs-deploy", message="%(prog)s %(version)s")
async def cli() -> None:
    """Deploy one ECS service or task definition."""


def main() -> None:
    """Console-script entry point."""
    cli()
