"""A run journaled by several shards reads back as one run: every shard's targets, one
verdict once every shard finished, and how many did."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ecs_deploy_many.cli.many import cli
from ecs_deploy_many.core.clock import ScaledClock
from ecs_deploy_many.core.events import EventName, TargetEvent
from ecs_deploy_many.core.redact import Redactor
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.journal import DirectoryLocation, RunStart, load_run, new_run_id, open_journal

pytestmark = pytest.mark.anyio

API = Target("blue/api", cluster="blue", service="api")
WORKER = Target("blue/worker", cluster="blue", service="worker")
WEB = Target("green/web", cluster="green", service="web")
MAILER = Target("red/mailer", cluster="red", service="mailer")


@dataclass
class Outcome:
    """How a shard ended, as ``run_finished`` records it."""

    verdict: str
    counts: dict[str, int]
    halted: str | None = None
    failures: int = 0
    started_at: float | None = 0.0
    finished_at: float | None = 10.0
    rolled_back_by_policy: Sequence[str] = field(default_factory=tuple)

    def statistics(self) -> dict[str, int]:
        return self.counts


def start(part: str, targets: Sequence[Target]) -> RunStart:
    return RunStart(
        plan="plan.yaml",
        plan_digest="sha256:0",
        targets=targets,
        waves=[{"name": "all", "targets": [t.name for t in targets], "bake": 0.0}],
        policy={"max_parallel": 5, "per_cluster": None, "failure_budget": {}, "on_failure": "halt"},
        shard=part,
    )


async def journal_shard(
    location: DirectoryLocation,
    run_id: str,
    part: str,
    targets: Sequence[Target],
    outcome: Outcome | None,
) -> None:
    """One shard's journal: each target finished with the outcome's first status."""
    async with open_journal(
        location, start(part, targets), run_id=run_id, clock=ScaledClock(),
        redactor=Redactor(), on_failure=print,
    ) as journal:  # fmt: skip
        if outcome is None:
            return
        status = next(iter(outcome.counts))
        for target in targets:
            facts = {"status": status, "started_at": 0.0, "finished_at": 5.0}
            journal(TargetEvent(target, "done", EventName.TARGET_FINISHED, 5.0, facts))
        journal.finish(outcome)


@pytest.fixture
def location(tmp_path: Path) -> DirectoryLocation:
    return DirectoryLocation(tmp_path / "runs")


async def test_the_run_s_targets_are_every_shard_s_in_shard_order(
    location: DirectoryLocation,
) -> None:
    run_id = new_run_id()
    # Shard 3 starts first: the order is still the shards'.
    await journal_shard(location, run_id, "3/3", [MAILER], Outcome("succeeded", {"succeeded": 1}))
    await journal_shard(location, run_id, "1/3", [API, WORKER], None)
    run = await load_run(location, run_id)
    assert [t.name for t in run.targets] == ["blue/api", "blue/worker", "red/mailer"]
    assert [w["targets"] for w in run.waves] == [["blue/api", "blue/worker", "red/mailer"]]
    assert run.shard_count == 3
    assert sorted(run.shard_finishes) == [3]
    assert (run.finished, run.verdict) == (None, "unfinished")  # shards 1 and 2 are not done


@pytest.mark.parametrize(
    ("verdicts", "merged"),
    [
        (("succeeded", "succeeded"), "succeeded"),
        (("succeeded", "interrupted"), "interrupted"),
        (("interrupted", "failed"), "failed"),
        (("failed", "succeeded"), "failed"),
    ],
)
async def test_the_verdict_is_the_worst_shard_s_and_the_counts_are_summed(
    location: DirectoryLocation, verdicts: tuple[str, str], merged: str
) -> None:
    run_id = new_run_id()
    halted = "the run halted: 1 failed target(s) across its shards" if merged == "failed" else None
    first = Outcome(verdicts[0], {verdicts[0]: 2}, started_at=1.0, finished_at=20.0)
    second = Outcome(verdicts[1], {verdicts[1]: 1}, halted=halted, started_at=2.0)
    await journal_shard(location, run_id, "1/2", [API, WORKER], first)
    await journal_shard(location, run_id, "2/2", [WEB], second)
    run = await load_run(location, run_id)
    assert run.finished is not None
    assert run.verdict == merged
    assert sum(run.counts().values()) == 3
    assert run.finished.halted == halted
    assert (run.finished.started_at, run.finished.finished_at) == (1.0, 20.0)


async def test_runs_and_show_say_how_many_shards_finished(
    location: DirectoryLocation, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = new_run_id()
    await journal_shard(location, run_id, "1/2", [API, WORKER], Outcome("failed", {"failed": 2}))
    capsys.readouterr()
    await cli.main(["runs", "--journal", str(location.path)], "x", standalone_mode=False)
    listed = capsys.readouterr().out
    assert f"{run_id}  plan.yaml" in listed
    assert "unfinished (1/2 shards finished)  2 targets: 2 failed" in listed

    await journal_shard(location, run_id, "2/2", [WEB], Outcome("succeeded", {"succeeded": 1}))
    await cli.main(["runs", "--journal", str(location.path)], "x", standalone_mode=False)
    listed = capsys.readouterr().out
    assert "failed (2/2 shards finished)  3 targets: 2 failed, 1 succeeded" in listed
    await cli.main(["show", run_id, "--journal", str(location.path)], "x", standalone_mode=False)
    shown = capsys.readouterr()
    assert shown.err.endswith(": failed (2/2 shards finished)\n")
    assert "3 targets: 1 succeeded, 2 failed" in shown.out
