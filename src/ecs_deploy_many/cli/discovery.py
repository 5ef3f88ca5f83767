"""A run's selector targets found in ECS before anything starts, then ``--only`` / ``--exclude``.

A plan with ``select:`` targets is selected (``plan.select``) only once its selectors are
expanded, so the globs see the matches' names (``<selector>/<cluster>/<service>``). The
services are found where the run's calls go: AWS, an endpoint, or a rehearsal's
simulator, which holds the services the plan lists and those of ``--fleet FILE``, no
other (a rehearsal without ``--fleet`` has nothing to select from).

A selector that matches nothing is an error (exit 2, nothing changed): a typo in a
cluster glob or a repository must not pass as "nothing to do". ``--allow-no-match``
makes it a warning, for plans run on fleets where a selector may come up empty.

``--shard`` is refused for such plans: each runner would find the services on its own,
and a service created or deleted between their starts would move a cluster from one
shard to another, deployed twice or not at all. ``ecs-deploy-many init`` writes a plan
that lists the services, which shards safely.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, NoReturn

import asyncclick as click

from ecs_deploy_many.cli.exits import EXIT_PLAN
from ecs_deploy_many.cli.options import count, say
from ecs_deploy_many.cli.where import Where, connected
from ecs_deploy_many.core.errors import AwsError, CredentialsError, PlanError, PlanIssue
from ecs_deploy_many.deploy.discover import FIND_DEADLINE, discover_selectors
from ecs_deploy_many.plan import DependencyChoice, Plan, select, shard
from ecs_deploy_many.plan.expand import Expansion, has_selectors
from ecs_deploy_many.plan.shard import shard_numbers

__all__ = ["expanded_or_exit", "narrowed", "refuse_shard"]


def narrowed(
    plan: Plan,
    only: Any = (),
    exclude: Any = (),
    dependencies: DependencyChoice = "refuse",
    part: str | None = None,
) -> Plan:
    """The plan selected (``--only`` / ``--exclude``), then sharded (``--shard K/N``)."""
    if only or exclude:
        plan = select(plan, only, exclude, dependencies=dependencies)
    if part is not None and part != "1/1":
        index, total = shard_numbers(part)
        plan = shard(plan, index, total)
    return plan


def refuse_shard(plan: Plan, part: str | None) -> None:
    """PlanError for ``--shard`` on a plan whose services are found when it runs."""
    if part is not None and part != "1/1" and has_selectors(plan):
        raise PlanError(
            [
                PlanIssue(
                    str(plan.source),
                    None,
                    "--shard",
                    "a plan with select: targets cannot be sharded (each runner would find "
                    "the services on its own); list the services (ecs-deploy-many init "
                    "writes such a plan) or run it unsharded",
                )
            ]
        )


async def expanded_or_exit(where: Where, plan_path: str, options: dict[str, Any]) -> Where:
    """``where`` with its plan's selectors expanded against its ECS, then narrowed as
    ``options`` say; exit 2 naming the problem when that cannot be done."""
    if not has_selectors(where.plan):
        return where
    verbose = options.get("verbose", False)
    # Errors are caught inside the pool, whose task group would wrap them in a group.
    problem: str | None = None
    async with connected(where, verbose=verbose, announce=False) as pool:
        try:
            with where.clock.fail_after(FIND_DEADLINE):
                expansion = await discover_selectors(
                    where.plan, pool, max_parallel=where.plan.max_parallel
                )
        except (AwsError, CredentialsError) as error:
            problem = f"finding the services of the plan's select: targets: {error}"
        except TimeoutError:
            problem = (
                f"finding the services of the plan's select: targets took over "
                f"{FIND_DEADLINE:g} s: ECS is not answering (run with -v to see its calls)"
            )
        except PlanError as error:
            problem = "\nerror: ".join(str(issue) for issue in error.issues)
    if problem is not None:
        click.echo(f"error: {problem}", err=True)
        _nothing_changed(plan_path)
    try:
        _say_found(expansion, where, allow_empty=options.get("allow_no_match", False))
        plan = narrowed(
            expansion.plan,
            options.get("only") or (),
            options.get("exclude") or (),
            options.get("dependencies") or "refuse",
        )
    except PlanError as error:
        for issue in error.issues:
            click.echo(f"error: {issue}", err=True)
        _nothing_changed(plan_path)
    if not plan.targets:
        click.echo(f"{plan_path}: no target left to run; nothing was changed", err=True)
        raise click.exceptions.Exit(0)
    return replace(where, plan=plan)


def _nothing_changed(plan_path: str) -> NoReturn:
    click.echo(f"{plan_path}: nothing was changed", err=True)
    raise click.exceptions.Exit(EXIT_PLAN)


def _say_found(expansion: Expansion, where: Where, *, allow_empty: bool) -> None:
    """One line per selector: what it found; PlanError for one that found nothing."""
    among = (
        " among the services of --fleet FILE (a rehearsal's simulator has no others)"
        if where.simulator is not None
        else ""
    )
    empty = []
    for name, matches in expansion.matches.items():
        left = expansion.left_to_listed.get(name, ())
        also = f"; left to their own targets: {', '.join(left)}" if left else ""
        say(f"{name}: selects {count(matches, 'service')}{among}{also}")
        if not matches:
            empty.append(name)
    if not empty:
        return
    if allow_empty:
        for name in empty:
            say(f"warning: {name} selects no service")
        return
    raise PlanError(
        [
            PlanIssue(
                str(where.plan.source),
                None,
                f"target {name}",
                f"select matches no service{among}; check its clusters and runs, or pass "
                "--allow-no-match",
            )
            for name in empty
        ]
    )
