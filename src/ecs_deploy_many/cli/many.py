"""`ecs-deploy-many`: fleet rollouts from a deploy plan, and the local ECS simulator.

``ecs-deploy-many PLAN ...`` is short for ``ecs-deploy-many deploy PLAN ...``; the other
subcommands are ``validate PLAN`` and ``sim serve``.
"""

from __future__ import annotations

from typing import Any

import asyncclick as click

from ecs_deploy_many import __version__
from ecs_deploy_many.cli.fleet import deploy, validate
from ecs_deploy_many.cli.signals import ProcessEnd
from ecs_deploy_many.cli.sim import sim


class _PlanFirstGroup(click.Group):
    """A group whose first argument, when it names no subcommand, is a plan to deploy."""

    async def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["deploy", *args]
        result: list[str] = await super().parse_args(ctx, args)
        return result


@click.group(cls=_PlanFirstGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ecs-deploy-many", message="%(prog)s %(version)s")
async def cli(**_: Any) -> None:
    """Roll out container images to many Amazon ECS services at once.

    \b
    ecs-deploy-many PLAN [OPTIONS]     deploy a plan (see `ecs-deploy-many deploy --help`)
    ecs-deploy-many validate PLAN      check a plan, calling nothing
    ecs-deploy-many sim serve          run the local ECS simulator
    """


cli.add_command(deploy)
cli.add_command(validate)
cli.add_command(sim)


def main() -> None:
    """Console-script entry point; the process ends with the command it runs."""
    cli(obj=ProcessEnd())
