"""The plan's release schedule at the command line: refuse, wait, or watch (``jobs.windows``).

Once the plan is loaded, before any call to AWS, a run outside its windows or inside a
freeze changes nothing and exits 75, or waits with ``--wait-for-window``; a run the
schedule allows is watched, and halted when its window closes. A rehearsal reports what
the schedule says and runs anyway; a check, a dry run and a status only report it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import anyio
import anyio.abc
import asyncclick as click
import structlog

from ecs_deploy_many.cli.exits import EXIT_INTERRUPTED, EXIT_OUTSIDE_WINDOW
from ecs_deploy_many.cli.options import say
from ecs_deploy_many.cli.signals import HeldSignals, cancel_on_signal
from ecs_deploy_many.cli.where import Where
from ecs_deploy_many.core.clock import Clock
from ecs_deploy_many.jobs.windows import Decision, decide, shown
from ecs_deploy_many.plan import Plan
from ecs_deploy_many.plan.schedule import Schedule

__all__ = ["check_window_flags", "obey_schedule", "say_schedule"]


def say_schedule(plan: Plan, clock: Clock) -> None:
    """What the plan's release schedule says of a run started now, for the commands
    that only report it (a check, a dry run, a status)."""
    if plan.schedule is not None:
        click.echo(_schedule_line(decide(plan.schedule, clock.now())))


def _schedule_line(decision: Decision) -> str:
    return f"release schedule at {shown(decision.at, decision.zone)}: {decision}"


def check_window_flags(options: Mapping[str, Any]) -> None:
    """``--wait-for-window``, ``--ignore-windows`` and ``--reason`` make sense together."""
    if options["ignore_windows"] and not options["reason"]:
        raise click.UsageError(
            "--ignore-windows needs --reason TEXT: why this run deploys regardless of the "
            "plan's release windows and freezes (it goes into the logs and the report)"
        )
    if options["reason"] and not options["ignore_windows"]:
        raise click.UsageError("--reason only applies with --ignore-windows")
    if options["ignore_windows"] and options["wait_for_window"] is not None:
        raise click.UsageError("--wait-for-window and --ignore-windows contradict each other")


async def obey_schedule(
    where: Where,
    plan_path: str,
    options: Mapping[str, Any],
    signals: HeldSignals,
    *,
    rolling_back: bool,
) -> tuple[Schedule | None, str | None]:
    """Whether the plan's schedule lets the job start now (else exit 75, or wait with
    ``--wait-for-window``): the schedule to watch while it runs, if any, and the reason
    the windows are ignored, if they are."""
    schedule = where.plan.schedule
    if schedule is None or rolling_back:
        return None, None
    decision = decide(schedule, where.clock.now())
    if where.simulator is not None:
        if decision.allowed:
            say(_schedule_line(decision))
            return schedule, None
        say(f"{_schedule_line(decision)}: a real run now would exit 75; the rehearsal runs")
        return None, None
    if options["ignore_windows"]:
        reason = options["reason"]
        structlog.get_logger("ecs_deploy_many").warning(
            "release_windows_ignored", reason=reason, schedule=str(decision)
        )
        return None, reason
    wait = options.get("wait_for_window")
    if not decision.allowed and wait is not None:
        decision = await _wait_for_window(schedule, decision, where.clock, wait, signals)
    if not decision.allowed:
        waited = f" (after waiting {wait:g} s)" if wait is not None and wait != math.inf else ""
        click.echo(f"error: {_schedule_line(decision)}{waited}", err=True)
        click.echo(
            f"{plan_path}: nothing was changed (--wait-for-window waits for the next "
            "opening; --ignore-windows --reason TEXT deploys anyway)",
            err=True,
        )
        raise click.exceptions.Exit(EXIT_OUTSIDE_WINDOW)
    say(_schedule_line(decision))
    return schedule, None


async def _wait_for_window(
    schedule: Schedule, decision: Decision, clock: Clock, wait: float, signals: HeldSignals
) -> Decision:
    """Sleep on ``clock`` until the schedule allows the run, for at most ``wait`` seconds
    (infinite: no limit); the decision then. A signal stops the wait, changing nothing."""
    if decision.opens_at is None:
        return decision
    limit = "" if wait == math.inf else f" (at most {wait:g} s)"
    say(f"{_schedule_line(decision)}; waiting for it{limit}")
    give_up = clock.now() + wait
    async with anyio.create_task_group() as group:
        group.start_soon(cancel_on_signal, signals, group.cancel_scope, "waiting")
        while not decision.allowed and decision.opens_at is not None and clock.now() < give_up:
            await clock.sleep(min(decision.opens_at.timestamp(), give_up) - clock.now())
            decision = decide(schedule, clock.now())
        group.cancel_scope.cancel()
    if signals.received:
        click.echo(
            "interrupted while waiting for the release window; nothing was changed", err=True
        )
        raise click.exceptions.Exit(EXIT_INTERRUPTED)
    return decision
