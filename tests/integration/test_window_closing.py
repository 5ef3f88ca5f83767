"""A release window closing mid-run, on an injected clock started seconds before it closes.

The simulator, the engine and the window watcher share one clock, started at a fixed
instant; the targets deploy one at a time, so the window closes while the first one is
in flight: it finishes, the others end ``skipped`` with the reason, and the run fails.
Both daylight-saving changes are crossed: a window ending in Europe/Berlin's skipped
hour closes at the jump, one ending in America/New_York's repeated hour at its first pass.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio
import pytest

from ecs_deploy_many.core.clock import ScaledClock
from ecs_deploy_many.core.events import TargetEvent
from ecs_deploy_many.deploy.engine import FleetRun, RunVerdict
from ecs_deploy_many.deploy.pipeline import RunContext
from ecs_deploy_many.jobs.windows import close_on_schedule
from ecs_deploy_many.plan import parse_plan
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import ecs_client, sim_pool
from tests.integration.test_engine import (
    EU,
    FLEET,
    NEW,
    SPEED,
    assert_runs,
    assert_untouched,
    plan,
    statuses,
    target,
)

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

pytestmark = pytest.mark.anyio

CASES = [
    pytest.param(
        "{days: mon-fri, start: '09:00', end: '17:00', timezone: Europe/Berlin}",
        "2026-12-04T15:59:50",  # Fri 16:59:50 CET
        "the release window closed at Fri 2026-12-04 17:00 CET",
        id="an-ordinary-evening",
    ),
    pytest.param(
        "{days: sat, start: '22:00', end: '02:30', timezone: Europe/Berlin}",
        "2026-03-29T00:59:50",  # Sun 01:59:50 CET: 02:30 never comes, the jump to 03:00 does
        "the release window closed at Sun 2026-03-29 03:00 CEST",
        id="berlin-spring-forward",
    ),
    pytest.param(
        "{days: sun, start: '00:00', end: '01:30', timezone: America/New_York}",
        "2026-11-01T05:29:50",  # 01:29:50 EDT, the first pass of the repeated hour
        "the release window closed at Sun 2026-11-01 01:30 EDT",
        id="new-york-fall-back",
    ),
]


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_DEFAULT_REGION", EU)


@pytest.mark.parametrize(("window", "start", "closed"), CASES)
async def test_a_window_closing_mid_run_leaves_the_rest_skipped(
    window: str, start: str, closed: str
) -> None:
    clock = ScaledClock(SPEED, start=datetime.fromisoformat(start).replace(tzinfo=UTC).timestamp())
    text = plan(
        *(target("alpha", i) for i in range(3)),
        head=f"concurrency: {{max_parallel: 1}}\nschedule:\n  windows: [{window}]",
    )
    events: list[TargetEvent] = []
    async with (
        Simulator(FLEET, clock=clock, strict_output=True, listen=False) as sim,
        sim_pool(sim) as pool,
        ecs_client(sim, EU) as client,
    ):
        loaded = parse_plan(text, environ={})
        assert loaded.schedule is not None
        run = FleetRun(loaded, RunContext(pool, clock, events.append))
        async with anyio.create_task_group() as group:
            group.start_soon(close_on_schedule, loaded.schedule, clock, run.halt)
            result = await run.run()
            group.cancel_scope.cancel()
        assert statuses(result) == {
            "alpha/svc00": "succeeded",  # in flight when the window closed: it finished
            "alpha/svc01": "skipped",
            "alpha/svc02": "skipped",
        }
        assert result.halted == closed
        assert result.results["alpha/svc01"].error == closed
        assert result.verdict is RunVerdict.FAILED
        ecs: dict[str, ECSClient] = {EU: client}
        await assert_runs(ecs, "alpha", 0, NEW)
        await assert_untouched(ecs, "alpha", 1)
        await assert_untouched(ecs, "alpha", 2)
