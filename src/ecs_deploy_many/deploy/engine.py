"""A fleet run: waves in order, targets concurrently, the failure policy over all of them.

Inside a wave every target is a task of one task group; it waits for its ``depends_on``,
then for a slot of its cluster (when ``per_cluster`` is set) and of the run
(``max_parallel``), then runs the pipeline. Cluster slots are taken before run slots so
a target stuck behind its busy cluster never holds a slot another cluster could use.

Every target ends in a known state. Targets the run never deploys are ``skipped`` (a
dependency did not succeed, or the run halted) or ``interrupted`` (the run was
cancelled); each gets a ``target_finished`` event like a deployed one. The engine holds
each deployed target's record from the start, so a cancelled one keeps what it knew.

The run succeeds when every target not marked ``allow_failure`` succeeded or was
unchanged. The failure budget decides only whether the run goes on: once failures
exceed it, ``halt`` and ``rollback_all`` start nothing new, ``continue`` carries on.
During a wave's ``bake`` the services it deployed are watched (``deploy.bake``); one
that regresses fails, and is rolled back when its target asks for rollback. A wave's
gates (``deploy.gates``) hold it before it starts until it is approved, and fail its
services when its CloudWatch alarms fire while it bakes (failed and rolled back like a
regression). Rollbacks, ``rollback_all``'s included, live in ``deploy.rollback``.

A run can continue an earlier one (``FleetRun(..., prior=histories)``): each target
starts where ``deploy.resume`` says. Targets the earlier run finished keep their result
(and their ``target_finished`` says ``resumed``); their failures count against the
budget, so a run that had halted stays halted. A halt starts nothing new, but targets
the earlier run had under way (an update or a rollback begun) are seen through.

The shards of a run (``--shard K/N``, one runner each) may share one failure budget and
one halt (``FleetRun(..., shared=...)``, a ``SharedBudget``): each new failure is
counted run-wide, the shard whose failure spends the budget halts the run, and a
background task waits for another shard's halt and then halts this one the same way as
its own (start nothing new; in-flight targets finish or roll back; ``rollback_all``
applies). Should the shared record fail, the shard says so once
(``RunResult.shared_budget_error``) and goes on with its own budget.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

import anyio
import anyio.abc

from ecs_deploy_many.core.errors import RunTableError
from ecs_deploy_many.core.events import EventName, Level, Step, TargetEvent, target_finished
from ecs_deploy_many.core.history import TargetHistory
from ecs_deploy_many.core.result import Status, TargetResult
from ecs_deploy_many.core.scope import AwsScope
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.deploy.bake import watch_during_bake
from ecs_deploy_many.deploy.gates import WaveGates, alarm_gate_failure, wait_for_approval
from ecs_deploy_many.deploy.pipeline import RunContext, deploy_target
from ecs_deploy_many.deploy.resume import Resumption, Start, kept_result, resumption
from ecs_deploy_many.deploy.rollback import roll_back_all, roll_back_run, roll_back_target
from ecs_deploy_many.plan.model import Plan, Wave

__all__ = [
    "SHARED_POLL_INTERVAL",
    "FleetRun",
    "RunResult",
    "RunVerdict",
    "SharedBudget",
    "run_plan",
]

SHARED_POLL_INTERVAL = 5.0
"""Seconds of the run's clock between two reads of a shared halt: another shard's halt
reaches this one within that (and a DynamoDB read costs that often, per shard)."""


class RunVerdict(StrEnum):
    """How a whole run ended; the names are stable (reports and exit codes read them)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class SharedBudget(Protocol):
    """The failure budget and the halt every shard of a run shares.

    Each method raises RunTableError when the shared record cannot be used.
    """

    @property
    def shard(self) -> str:
        """This runner's shard, ``K/N``: halt reasons name it."""
        ...

    async def count_failure(self) -> int:
        """Count one new failure of this shard; how many the whole run has now."""
        ...

    async def halt(self, reason: str) -> str:
        """Halt the run unless a shard did already; why the run halted (``reason``, or
        the first shard's)."""
        ...

    async def halted(self) -> str | None:
        """Why the run halted, if a shard halted it."""
        ...


@dataclass
class RunResult:
    """Every target's outcome, in plan order, and the run's verdict."""

    plan: Plan
    results: dict[str, TargetResult] = field(default_factory=dict)
    started_at: float | None = None
    finished_at: float | None = None
    verdict: RunVerdict = RunVerdict.INTERRUPTED
    halted: str | None = None
    """Why the run stopped starting targets, when it did."""
    rolled_back_by_policy: set[str] = field(default_factory=set)
    """Targets that succeeded and that ``on_failure: rollback_all`` then rolled back (or
    tried to: a rollback that did not finish leaves its target ``failed``)."""
    shared_budget_error: str | None = None
    """Why this shard stopped sharing the run's failure budget and went on with its own,
    when it did."""

    @property
    def failures(self) -> int:
        """Targets that failed (or were rolled back after failing) and count against the
        budget; targets ``rollback_all`` rolled back are not among them."""
        return sum(
            1
            for name, result in self.results.items()
            if result.status.counts_as_failure
            and not result.target.allow_failure
            and name not in self.rolled_back_by_policy
        )

    @property
    def policy_rollbacks(self) -> int:
        """Targets ``rollback_all`` put back on their previous revision."""
        return sum(
            1
            for name in self.rolled_back_by_policy
            if self.results[name].status is Status.ROLLED_BACK
        )

    def statistics(self) -> dict[str, int]:
        """How many targets ended in each status."""
        counts = {str(status): 0 for status in Status}
        for result in self.results.values():
            counts[str(result.status)] += 1
        return counts


async def run_plan(plan: Plan, context: RunContext) -> RunResult:
    """Deploy ``plan``; on cancellation, record every target's state and re-raise.

    A caller that needs the result of a cancelled run uses ``FleetRun`` and reads
    ``FleetRun.result`` after the cancellation.
    """
    return await FleetRun(plan, context).run()


class FleetRun:
    """One run of a plan; ``result`` is complete once ``run`` returns or raises.

    ``prior`` continues an earlier run of the same plan: its targets' histories, by
    target name (a target without one starts afresh).
    """

    def __init__(
        self,
        plan: Plan,
        context: RunContext,
        prior: Mapping[str, TargetHistory] | None = None,
        shared: SharedBudget | None = None,
        gates: WaveGates | None = None,
    ) -> None:
        self.plan = plan
        self._shared = shared
        self._gates = gates or WaveGates()
        self._unapproved = False
        self.context = context
        self.result = RunResult(plan)
        self._starts = {
            target.name: resumption(target, (prior or {}).get(target.name))
            for target in plan.targets
        }
        self._interrupted = False
        self._run_slots = anyio.CapacityLimiter(plan.max_parallel)
        self._cluster_slots: dict[tuple[AwsScope, str], anyio.CapacityLimiter] = {}

    async def run(self) -> RunResult:
        """Run every wave; re-raises cancellation once every target has a final state."""
        if self._shared is None or self.plan.on_failure == "continue":
            return await self._run()
        async with anyio.create_task_group() as group:
            await group.start(self._follow_shared_halt, self._shared)
            try:
                result = await self._run()
            finally:
                group.cancel_scope.cancel()
        return result

    async def _run(self) -> RunResult:
        clock = self.context.clock
        self.result.started_at = clock.now()
        self._keep_finished()
        try:
            for wave in self.plan.waves:
                await self._pass_approval(wave)
                await self._run_wave(wave)
                if (wave.bake or wave.alarms) and not self.result.halted:
                    await self._bake(wave)
            budget_spent = self.result.halted and not (self._interrupted or self._unapproved)
            if budget_spent and self.plan.on_failure == "rollback_all":
                await roll_back_all(
                    self.plan.waves,
                    self.result.results,
                    self.context,
                    reason=f"rolled back by rollback_all: {self.result.halted}",
                    slots=self._slots,
                    rolled_back=self.result.rolled_back_by_policy,
                )
        except anyio.get_cancelled_exc_class():
            for target in self.plan.targets:
                if target.name not in self.result.results:
                    self._settle(target, Status.INTERRUPTED, "the run was interrupted first")
            self._conclude(RunVerdict.INTERRUPTED)
            raise
        ok = all(r.status.ok or r.target.allow_failure for r in self.result.results.values())
        if self._interrupted:
            self._conclude(RunVerdict.INTERRUPTED)
        else:
            self._conclude(RunVerdict.SUCCEEDED if ok else RunVerdict.FAILED)
        return self.result

    def _keep_finished(self) -> None:
        """Take over the results of the targets the earlier run finished."""
        failed = False
        for target in self.plan.targets:
            start = self._starts[target.name]
            if start.start is Start.KEEP:
                result = self.result.results[target.name] = kept_result(target, start.history)
                event = target_finished(result, self.context.clock.now())
                self.context.observe(replace(event, facts={**event.facts, "resumed": True}))
                failed = failed or result.status.counts_as_failure
        if failed:
            self._check_budget()

    async def roll_back(
        self, histories: Mapping[str, TargetHistory], *, reason: str, force: bool = False
    ) -> RunResult:
        """Instead of deploying: put back every service an earlier run of the plan changed
        (``deploy.rollback.roll_back_run``), within the plan's limits.

        The result holds the services handled. It succeeds when each is back on its
        previous revision, was there already, or moved on since and was left alone.
        """
        self.result.started_at = self.context.clock.now()
        try:
            await roll_back_run(
                self.plan.waves,
                self.plan.targets,
                histories,
                self.context,
                reason=reason,
                force=force,
                slots=self._slots,
                results=self.result.results,
            )
        except anyio.get_cancelled_exc_class():
            self._conclude(RunVerdict.INTERRUPTED)
            raise
        failed = any(r.status.needs_attention for r in self.result.results.values())
        self._conclude(RunVerdict.FAILED if failed else RunVerdict.SUCCEEDED)
        return self.result

    def halt(self, reason: str) -> None:
        """Start nothing new, from outside the run (a lost lock, a closing window):
        in-flight targets finish (or roll back), the others end ``skipped`` with
        ``reason``, and the run fails unless it had nothing left to start."""
        self.result.halted = self.result.halted or reason

    def interrupt(self, reason: str) -> None:
        """Start nothing new (in-flight targets go on) and end the run as interrupted."""
        self._interrupted = True
        self.result.halted = self.result.halted or reason

    def _conclude(self, verdict: RunVerdict) -> None:
        order = {target.name: i for i, target in enumerate(self.plan.targets)}
        self.result.results = dict(
            sorted(self.result.results.items(), key=lambda item: order[item[0]])
        )
        self.result.verdict = verdict
        self.result.finished_at = self.context.clock.now()

    # -- one wave --------------------------------------------------------------------

    async def _run_wave(self, wave: Wave) -> None:
        finished = {name: anyio.Event() for name in wave.targets}
        async with anyio.create_task_group() as group:
            for name in wave.targets:
                group.start_soon(self._run_target, self.plan.target(name), finished)

    async def _run_target(self, target: Target, finished: dict[str, anyio.Event]) -> None:
        start = self._starts[target.name]
        try:
            if start.start is Start.KEEP:
                return
            for name in target.depends_on:
                if name in finished:  # same wave; earlier waves are over
                    await finished[name].wait()
            blocked = self._blocking_dependency(target) or self._halted_for(start)
            if blocked is not None:
                self._settle(target, _left_as(start), blocked)
                return
            async with self._slots(target):
                blocked = self._halted_for(start)
                if blocked is not None:
                    self._settle(target, _left_as(start), blocked)
                    return
                record = self.result.results[target.name] = TargetResult(target)
                await deploy_target(target, self.context, record, start)
            # Counting failures reads every result: only a new failure can break the budget.
            if record.status.counts_as_failure:
                await self._count_failure(target)
        finally:
            finished[target.name].set()

    def _halted_for(self, start: Resumption) -> str | None:
        """Why the run starts nothing new, if it does not; a target the earlier run had
        under way goes on through a halt (as one under way in this run does), not
        through an interruption."""
        if start.in_flight and not self._interrupted:
            return None
        return self.result.halted

    def _blocking_dependency(self, target: Target) -> str | None:
        for name in target.depends_on:
            status = self.result.results[name].status
            if not status.ok:
                return f"dependency {name} {_past_tense(status)}"
        return None

    @asynccontextmanager
    async def _slots(self, target: Target) -> AsyncIterator[None]:
        """Hold a slot of the target's cluster, then one of the run."""
        async with AsyncExitStack() as slots:
            limiter = self._cluster_limiter(target)
            if limiter is not None:
                await slots.enter_async_context(limiter)
            await slots.enter_async_context(self._run_slots)
            yield

    def _cluster_limiter(self, target: Target) -> anyio.CapacityLimiter | None:
        """One limiter per cluster, a cluster being a name in one account and region."""
        if self.plan.per_cluster is None or target.cluster is None:
            return None
        key = (target.scope, target.cluster)
        limiter = self._cluster_slots.get(key)
        if limiter is None:
            limiter = self._cluster_slots[key] = anyio.CapacityLimiter(self.plan.per_cluster)
        return limiter

    def _check_budget(self) -> None:
        failures = self.result.failures
        if self._budget_spent(failures):
            self.result.halted = (
                f"the run halted: {failures} failed target(s) exceed the failure budget "
                f"of {self.plan.failure_budget}"
            )

    def _budget_spent(self, failures: int) -> bool:
        """Whether ``failures`` halt a run not halted yet."""
        total = len(self.plan.targets)
        return not (
            self.result.halted
            or self.plan.on_failure == "continue"
            or self.plan.failure_budget.allows(failures, total)
        )

    async def _count_failure(self, target: Target) -> None:
        """A new failure of ``target``: halt the run when it spends the budget, the
        shards' shared one when there is one (else, or once it failed, this run's own)."""
        if self._shared is None or self.result.shared_budget_error is not None:
            self._check_budget()
            return
        try:
            failures = await self._shared.count_failure()
            if self._budget_spent(failures):
                self.result.halted = await self._shared.halt(
                    f"the run halted: {failures} failed target(s) across its shards exceed "
                    f"the failure budget of {self.plan.failure_budget} (the last: "
                    f"{target.name}, in shard {self._shared.shard})"
                )
        except RunTableError as error:
            self._stop_sharing(error)
            self._check_budget()

    async def _follow_shared_halt(
        self, shared: SharedBudget, *, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        """Halt this shard as its own failures would once another shard halted the run:
        read before the first target starts (a shard started after the halt deploys
        nothing), then every ``SHARED_POLL_INTERVAL`` seconds of the run's clock."""
        await self._halt_if_shared_halted(shared)
        task_status.started()
        while not self.result.halted and self.result.shared_budget_error is None:
            await self.context.clock.sleep(SHARED_POLL_INTERVAL)
            await self._halt_if_shared_halted(shared)

    async def _halt_if_shared_halted(self, shared: SharedBudget) -> None:
        try:
            reason = await shared.halted()
        except RunTableError as error:
            self._stop_sharing(error)
            return
        if reason is not None:
            self.halt(reason)

    def _stop_sharing(self, error: RunTableError) -> None:
        if self.result.shared_budget_error is None:
            self.result.shared_budget_error = (
                f"{error}; this shard went on with its own failure budget"
            )

    # -- gates and bake ------------------------------------------------------------

    async def _pass_approval(self, wave: Wave) -> None:
        """Hold ``wave`` until it is approved; halt the run when it is not in time.

        A wave whose targets the earlier run all finished needs no approval again."""
        if wave.approval is None or self.result.halted:
            return
        waiting = [
            self.plan.target(name)
            for name in wave.targets
            if self._starts[name].start is not Start.KEEP
        ]
        if not waiting:
            return
        approvals = self._gates.approvals
        how = approvals.how_to_approve(wave.name) if approvals else None
        facts = {"wave": wave.name, "timeout_s": wave.approval.timeout, "approve_with": how}
        self._emit(waiting, "approval", EventName.APPROVAL_WAITING, facts, "warning")
        outcome = await wait_for_approval(
            wave, approvals, self.context.clock, lambda: self.result.halted
        )
        if outcome is None:  # the run halted meanwhile: its reason stands
            return
        if isinstance(outcome, str):
            self._unapproved = True
            self.result.halted = self.result.halted or outcome
            return
        facts = {"wave": wave.name, "by": outcome.by, "approved_at": outcome.at}
        self._emit(waiting, "approval", EventName.APPROVED, {**facts, "note": outcome.note})

    def _emit(
        self,
        targets: list[Target],
        step: Step,
        event: EventName,
        facts: Mapping[str, object],
        level: Level = "info",
    ) -> None:
        now = self.context.clock.now()
        for target in targets:
            self.context.observe(TargetEvent(target, step, event, now, facts, level))

    async def _bake(self, wave: Wave) -> None:
        """Watch the services the wave deployed for ``wave.bake`` seconds, and hold its
        alarm gate meanwhile."""
        baking = [
            result
            for name in wave.targets
            if (result := self.result.results.get(name))
            and result.status is Status.SUCCEEDED
            and result.target.kind == "service"
        ]
        if not baking:
            return
        watching = {result.target.name: anyio.CancelScope() for result in baking}
        async with anyio.create_task_group() as group:
            if wave.alarms is not None:
                group.start_soon(self._hold_alarm_gate, wave, baking, watching)
            if wave.bake:
                with self.context.clock.move_on_after(wave.bake):
                    async with anyio.create_task_group() as watchers:
                        for result in baking:
                            watcher = watching[result.target.name]
                            watchers.start_soon(self._bake_target, result, wave.bake, watcher)

    async def _bake_target(
        self, result: TargetResult, bake: float, watching: anyio.CancelScope
    ) -> None:
        """Fail (and roll back, when the target asks for it) a service that regresses;
        ``watching`` is cancelled when the alarm gate fails the target first."""
        target = result.target
        assert target.cluster
        with watching:
            watcher = await self.context.accounts.watcher(target.scope, target.cluster)
            problem = await watch_during_bake(watcher, result)
        if watching.cancel_called:
            return
        reason = f"regressed during the {bake:g} s bake: {problem}"
        await self._fail_baked(result, reason, EventName.BAKE_REGRESSED, {})

    async def _hold_alarm_gate(
        self,
        wave: Wave,
        baking: list[TargetResult],
        watching: Mapping[str, anyio.CancelScope],
    ) -> None:
        """Read the wave's alarms now, every ``interval`` while it bakes, and at its end;
        on the first failure fail every service still baking (``deploy.gates``)."""
        gate, clock = wave.alarms, self.context.clock
        assert gate is not None
        end = clock.now() + wave.bake
        while any(result.status is Status.SUCCEEDED for result in baking):
            failure = await alarm_gate_failure(self._gates.alarms, gate)
            if failure is not None:
                failing = [result for result in baking if result.status is Status.SUCCEEDED]
                for result in failing:
                    watching[result.target.name].cancel()
                    result.status = Status.FAILED  # before any wait: no watcher fails it too
                facts = {"wave": wave.name, "alarms": list(failure.alarms)}
                async with anyio.create_task_group() as group:
                    for result in failing:
                        group.start_soon(
                            self._fail_baked,
                            result,
                            failure.reason,
                            EventName.ALARM_GATE_FAILED,
                            facts,
                        )
                return
            left = end - clock.now()
            if left <= 0:
                return
            await clock.sleep(min(gate.interval, left))

    async def _fail_baked(
        self,
        result: TargetResult,
        reason: str,
        event: EventName,
        facts: Mapping[str, object],
    ) -> None:
        """A service that succeeded fails during its wave's bake: say so, roll it back
        when its target asks for it, and count the failure."""
        target = result.target
        result.status, result.error, result.failed_step = Status.FAILED, reason, "bake"
        self.context.observe(
            TargetEvent(
                target,
                "bake",
                event,
                self.context.clock.now(),
                {**facts, "reason": reason},
                "error",
            )
        )
        # The rollback must finish even though the bake's time may run out meanwhile.
        with self.context.clock.move_on_after(target.timeout, shield=True):
            if target.rollback:
                await roll_back_target(result, self.context, reason=reason)
            else:  # the outcome changed after the target finished: a new summary line
                self.context.observe(target_finished(result, self.context.clock.now()))
            await self._count_failure(target)

    def _settle(self, target: Target, status: Status, reason: str) -> None:
        """Record a target the run never deployed, and say so like a deployed one."""
        result = self.result.results[target.name] = TargetResult(target, status, error=reason)
        self.context.observe(target_finished(result, self.context.clock.now(), "warning"))


def _left_as(start: Resumption) -> Status:
    """A target the run does not deploy: skipped, or interrupted when the earlier run
    may have left its service mid-change."""
    return Status.INTERRUPTED if start.in_flight else Status.SKIPPED


def _past_tense(status: Status) -> str:
    return {
        Status.FAILED: "failed",
        Status.ROLLED_BACK: "was rolled back",
        Status.SKIPPED: "was skipped",
        Status.INTERRUPTED: "was interrupted",
        Status.UNKNOWN: "has no known verdict",
    }.get(status, str(status))
