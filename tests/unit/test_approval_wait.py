"""Waiting for a wave's approval (``deploy.gates.wait_for_approval``), on virtual time,
with approval records in a journal directory; and how the live view shows the wait."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from ecs_deploy_many.core.clock import real_clock
from ecs_deploy_many.core.errors import JournalError
from ecs_deploy_many.core.events import EventName, TargetEvent
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.deploy.gates import APPROVAL_POLL_INTERVAL, wait_for_approval
from ecs_deploy_many.journal import DirectoryLocation
from ecs_deploy_many.journal.approvals import JournalApprovals, WaveApproval, record_approval
from ecs_deploy_many.observe.progress import ProgressView
from ecs_deploy_many.plan.model import ApprovalGate, Wave

pytestmark = pytest.mark.anyio

WAVE = Wave("release", ("prod/api",), approval=ApprovalGate(timeout=300))
RUN_ID = "20261202T031500Z-1a2b3c"


class Unreadable(JournalApprovals):
    """A journal whose approvals cannot be read (a bucket policy denying GetObject)."""

    async def approval(self, wave: str) -> WaveApproval | None:
        raise JournalError("cannot read s3://releases/approvals: AccessDenied")


async def test_an_unreadable_approval_never_approves(tmp_path: Path) -> None:
    clock = real_clock()
    approvals = Unreadable(DirectoryLocation(tmp_path), RUN_ID)
    started = clock.now()
    outcome = await wait_for_approval(WAVE, approvals, clock, lambda: None)
    assert outcome == (
        "wave release was not approved within 300 s (the last read failed: cannot read "
        "s3://releases/approvals: AccessDenied)"
    )
    assert clock.now() - started == pytest.approx(300)


async def test_a_halt_ends_the_wait_at_the_next_read(tmp_path: Path) -> None:
    clock = real_clock()
    approvals = JournalApprovals(DirectoryLocation(tmp_path), RUN_ID)
    halted: list[str] = []

    async def halt_later() -> None:
        await clock.sleep(100)
        halted.append("the release window closed")

    async with anyio.create_task_group() as group:
        group.start_soon(halt_later)
        started = clock.now()
        outcome = await wait_for_approval(WAVE, approvals, clock, lambda: next(iter(halted), None))
    assert outcome is None
    assert 100 <= clock.now() - started <= 100 + APPROVAL_POLL_INTERVAL


async def test_an_approval_recorded_first_is_found_at_once(tmp_path: Path) -> None:
    clock = real_clock()
    approvals = JournalApprovals(DirectoryLocation(tmp_path), RUN_ID)
    given = WaveApproval("release", "carol@ops", "2026-12-02T03:20:00Z", "go")
    assert await record_approval(approvals.location, RUN_ID, given) == given
    started = clock.now()
    assert await wait_for_approval(WAVE, approvals, clock, lambda: None) == given
    assert clock.now() == started


def test_the_live_view_shows_targets_waiting_for_approval() -> None:
    view = ProgressView(total=1)
    target = Target(name="prod/api", cluster="prod", service="api", wave="release")
    view(TargetEvent(target, "approval", EventName.APPROVAL_WAITING, 10.0, {}, "warning"))
    [row] = view.in_flight
    assert (row.name, row.wave, row.step) == ("prod/api", "release", "approval")
