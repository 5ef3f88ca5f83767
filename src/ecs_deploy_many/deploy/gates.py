"""Gates between waves: an approval a wave waits for, alarms that must stay quiet while
it bakes.

**Approval.** A wave with ``approval`` starts only once ``Approvals`` (the run journal's
approval records, ``journal.approvals``) holds an approval for it, read every
``APPROVAL_POLL_INTERVAL`` seconds of the run's clock. A read that fails never approves:
the wait goes on, and a timeout says what the last read failed on. When ``timeout``
passes first, the run halts: the wave and every later one are skipped, and nothing is
rolled back (nothing failed; ``rollback_all`` does not apply).

**Alarms.** A wave with ``alarms`` reads them once its deployments are over, then every
``interval`` seconds through its bake, and once more at the bake's end: a wave without
a bake gets that single read. The gate fails when an alarm is in ALARM, when a named
alarm does not exist, and when CloudWatch cannot be read (access denied, no network,
throttled after the SDK's retries): a gate that cannot see its alarms cannot vouch for
the wave, as a bake cannot vouch for a service ECS will not describe. INSUFFICIENT_DATA
passes. A failed gate fails every service target of the wave that succeeded and is
still baking, with the reason, and the engine rolls back those with ``rollback``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ecs_deploy_many.aws.alarms import AlarmReading
from ecs_deploy_many.core.clock import Clock
from ecs_deploy_many.core.errors import EcsDeployError
from ecs_deploy_many.core.scope import AwsScope
from ecs_deploy_many.plan.model import AlarmGate, Wave

__all__ = [
    "APPROVAL_POLL_INTERVAL",
    "AlarmReader",
    "Approval",
    "Approvals",
    "GateFailure",
    "WaveGates",
    "alarm_gate_failure",
    "wait_for_approval",
]

APPROVAL_POLL_INTERVAL = 15.0
"""Seconds of the run's clock between two reads of a wave's approval: an approval takes
effect within that, and a journal in S3 costs one GetObject that often per runner."""


class Approval(Protocol):
    """Who approved a wave, when (UTC, ISO-8601), and what they said."""

    @property
    def by(self) -> str: ...
    @property
    def at(self) -> str: ...
    @property
    def note(self) -> str: ...


class Approvals(Protocol):
    """Where a run's approvals are recorded (``journal.approvals.JournalApprovals``)."""

    async def approval(self, wave: str) -> Approval | None:
        """The approval of ``wave``, if one is recorded; raises EcsDeployError when the
        record cannot be read."""
        ...

    def how_to_approve(self, wave: str) -> str:
        """The command that approves ``wave``, for the message that says the run waits."""
        ...


class AlarmReader(Protocol):
    """Reads alarms (``aws.alarms.CloudWatchAlarms``)."""

    async def read(
        self, scope: AwsScope, names: Sequence[str], prefixes: Sequence[str] = ()
    ) -> AlarmReading: ...


@dataclass(frozen=True)
class WaveGates:
    """What a run's gates read. Without ``approvals`` no wave can be approved (one that
    asks is skipped at once); without ``alarms`` every alarm gate fails."""

    approvals: Approvals | None = None
    alarms: AlarmReader | None = None


async def wait_for_approval(
    wave: Wave, approvals: Approvals | None, clock: Clock, halted: Callable[[], str | None]
) -> Approval | str | None:
    """Wait for ``wave``'s approval: the approval, why the wave goes without one (the
    timeout passed, nothing can approve it), or None when the run halted meanwhile."""
    assert wave.approval is not None
    timeout = wave.approval.timeout
    if approvals is None:
        return f"wave {wave.name} needs an approval, and this run has no journal to record one"
    deadline = clock.now() + timeout
    problem = ""
    while True:
        try:
            found = await approvals.approval(wave.name)
        except EcsDeployError as error:  # never an approval; try again at the next read
            found, problem = None, f" (the last read failed: {error})"
        if found is not None:
            return found
        if halted() is not None:
            return None
        left = deadline - clock.now()
        if left <= 0:
            return f"wave {wave.name} was not approved within {timeout:g} s{problem}"
        await clock.sleep(min(APPROVAL_POLL_INTERVAL, left))


@dataclass(frozen=True)
class GateFailure:
    """Why an alarm gate failed, and the alarms in ALARM when that was the cause."""

    reason: str
    alarms: tuple[str, ...] = ()


async def alarm_gate_failure(reader: AlarmReader | None, gate: AlarmGate) -> GateFailure | None:
    """Read ``gate`` once: why it fails now, or None when it passes."""
    if reader is None:
        return GateFailure("alarm gate: nothing reads CloudWatch in this run")
    try:
        reading = await reader.read(gate.scope, gate.names, gate.prefixes)
    except EcsDeployError as error:  # CredentialsError too: fail safe
        return GateFailure(
            f"alarm gate: cannot read CloudWatch, so nothing vouches for the wave: {error}"
        )
    if reading.firing:
        names = tuple(alarm.name for alarm in reading.firing)
        return GateFailure(f"alarm gate: {', '.join(names)} in ALARM", names)
    if reading.missing:
        return GateFailure(
            f"alarm gate: no CloudWatch alarm named {', '.join(reading.missing)}"
            f"{_where(gate.scope)}"
        )
    return None


def _where(scope: AwsScope) -> str:
    return f" in {scope.region}" if scope.region else ""
