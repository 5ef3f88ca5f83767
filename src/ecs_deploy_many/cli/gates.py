"""A run's wave gates at the command line, and ``ecs-deploy-many approve RUN WAVE``.

A run reads its alarm gates from CloudWatch (``aws.alarms``) and its approvals from the
run journal (``journal.approvals``), so ``approve`` works from any machine that reaches
the journal: the same directory, or the same S3 prefix. A run with an approval gate
therefore needs a journal (``--no-journal`` is refused, exit 2).

Before anything changes, each alarm gate is read once: a gate that cannot read
CloudWatch, or names an alarm that does not exist, stops the run there (exit 2, every
target ``skipped`` with the reason), as it would otherwise fail its wave only once
deployed. An alarm already in ALARM is said, not refused: the release may be its fix.

A rehearsal (``--simulate``) reports its gates and waits for no one: each approval is
given at once (its events say so), and alarm gates are not read (the simulator serves
no CloudWatch), so they pass.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Sequence
from typing import Any, NoReturn

import asyncclick as click

from ecs_deploy_many.aws.alarms import AlarmReading, CloudWatchAlarms
from ecs_deploy_many.aws.session import ClientPool
from ecs_deploy_many.cli.exits import EXIT_PLAN
from ecs_deploy_many.cli.options import count, say
from ecs_deploy_many.cli.where import Where
from ecs_deploy_many.core.errors import EcsDeployError, JournalError
from ecs_deploy_many.core.redact import run_redactor
from ecs_deploy_many.core.scope import AwsScope
from ecs_deploy_many.deploy.gates import WaveGates
from ecs_deploy_many.journal import find_run, load_run, locate
from ecs_deploy_many.journal.approvals import (
    JournalApprovals,
    WaveApproval,
    now_utc,
    record_approval,
)
from ecs_deploy_many.plan import Plan

__all__ = ["alarm_gate_problems", "approve", "check_gate_flags", "wave_gates"]


def check_gate_flags(plan: Plan, options: dict[str, Any]) -> None:
    """A plan with an approval gate needs a journal, where the approval is recorded."""
    gated = [wave.name for wave in plan.waves if wave.approval is not None]
    if gated and options.get("no_journal") and not options.get("simulate"):
        raise click.UsageError(
            f"wave {gated[0]} needs an approval, which `ecs-deploy-many approve` records in "
            "the run journal: drop --no-journal (or give --journal a place every approver "
            "reaches, such as s3://bucket/prefix)"
        )


class _Rehearsal:
    """Gates as a rehearsal holds them: approved at once, alarms not read."""

    async def approval(self, wave: str) -> WaveApproval:
        return WaveApproval(wave, "rehearsal", now_utc(), "approved at once: a rehearsal")

    def how_to_approve(self, wave: str) -> str:
        return "nothing: a rehearsal approves every wave at once"

    async def read(
        self, scope: AwsScope, names: Sequence[str], prefixes: Sequence[str] = ()
    ) -> AlarmReading:
        return AlarmReading()


async def alarm_gate_problems(plan: Plan, reader: CloudWatchAlarms) -> list[str]:
    """Read every alarm gate once: why the run cannot rely on one, if it cannot."""
    problems = []
    for wave in plan.waves:
        gate = wave.alarms
        if gate is None:
            continue
        where = f" in {gate.scope.region}" if gate.scope.region else ""
        try:
            reading = await reader.read(gate.scope, gate.names, gate.prefixes)
        except EcsDeployError as error:
            problems.append(
                f"the alarm gate of wave {wave.name} cannot read CloudWatch{where}: {error} "
                "(the run needs cloudwatch:DescribeAlarms)"
            )
            continue
        if reading.missing:
            problems.append(
                f"the alarm gate of wave {wave.name} names no CloudWatch alarm{where} called "
                f"{', '.join(reading.missing)}: check the names (prefix: matches any number)"
            )
        if reading.firing:
            firing = ", ".join(alarm.name for alarm in reading.firing)
            say(
                f"warning: {firing} in ALARM already: wave {wave.name} fails once deployed "
                "unless it clears by then"
            )
    return problems


async def wave_gates(
    where: Where, pool: ClientPool, options: dict[str, Any], run_id: str
) -> tuple[WaveGates, list[str]]:
    """What the run's gates read (CloudWatch and the run journal, or a rehearsal's
    stand-ins), and why the run cannot rely on its alarm gates, when it cannot."""
    plan = where.plan
    if where.simulator is not None:
        alarmed = [wave for wave in plan.waves if wave.alarms is not None]
        if alarmed:
            say(
                f"alarm gates are not read in a rehearsal ({count(alarmed, 'wave')}): the "
                "simulator serves no CloudWatch"
            )
        rehearsal = _Rehearsal()
        return WaveGates(approvals=rehearsal, alarms=rehearsal), []
    approvals = None
    if not options.get("no_journal"):
        location = locate(options.get("journal"), os.environ)
        approvals = JournalApprovals(location, run_id, options.get("journal"))
    alarms = CloudWatchAlarms(pool, where.clock)
    problems = await alarm_gate_problems(plan, alarms)
    for problem in problems:
        say(f"error: {problem}")
    return WaveGates(approvals=approvals, alarms=alarms), problems


async def approve(wanted: str, wave: str, journal: str | None, note: str) -> None:
    """Record the approval of ``wave`` in run ``wanted``; exit 2 when there is no such
    run or wave, or the wave asks for no approval."""
    try:
        location = locate(journal, os.environ)
        run = await load_run(location, await find_run(location, wanted))
    except JournalError as error:
        _fail(str(error))
    waves = {str(item["name"]): item for item in run.waves}
    if wave not in waves:
        _fail(f"run {run.run_id} has no wave {wave!r}; its waves: {', '.join(waves)}")
    if not waves[wave].get("approval"):
        _fail(f"wave {wave} of run {run.run_id} asks for no approval: it starts on its own")
    redactor = run_redactor(os.environ, targets=run.targets)
    wanted_approval = WaveApproval(
        wave, f"{getpass.getuser()}@{socket.gethostname()}", now_utc(), redactor.scrub(note)
    )
    try:
        approval = await record_approval(location, run.run_id, wanted_approval)
    except JournalError as error:
        _fail(str(error))
    if approval != wanted_approval:
        click.echo(
            f"wave {wave} of run {run.run_id} was already approved by {approval.by} "
            f"at {approval.at}"
        )
        return
    click.echo(f"approved wave {wave} of run {run.run_id}")
    if run.finished is not None:
        click.echo(
            f"run {run.run_id} has ended ({run.verdict}): the approval counts if it is resumed "
            f"(ecs-deploy-many resume {run.run_id})",
            err=True,
        )


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    raise click.exceptions.Exit(EXIT_PLAN)
