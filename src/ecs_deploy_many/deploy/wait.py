"""Waiting for OUR deployment: what counts as done, failed or rolled back.

The classic "services stable" check (one deployment, running == desired) passes after a
circuit-breaker rollback, so tools built on it report failed rollouts as successes. Here
a deployment succeeds only when the PRIMARY is the deployment this run created, ECS says
it COMPLETED (where ECS reports a rollout state) and its running count reached the
desired count. FAILED, or the PRIMARY switching to another deployment, ends the wait at
once. A verdict is only ever read from ECS: when ECS cannot be read by the deadline, it
is unknown, never failed.

Where the deployments array cannot judge (``deploy.strategy``: blue/green, linear and
canary deployments, deployment alarms), ECS's service deployment is the authority
(``judge_service_deployment``): the wait reads it beside the service's description and
judges by the array again only when ECS will not describe it. Waiting in a bake, a linear
or canary step or a stage a lifecycle hook holds is progress, not a stall.

Before deploying, ``rollout_of`` tells how a service's current deployment stands: a
service on the rendered revision counts as unchanged only when that deployment is
steady; one still rolling out is waited for and judged like our own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ecs_deploy_many.aws.watch import ServiceDeploymentWatcher, ServiceUpdates
from ecs_deploy_many.core.clock import Clock
from ecs_deploy_many.core.errors import (
    AwsError,
    DeploymentFailed,
    DeploymentTimeout,
    VerdictUnknown,
)
from ecs_deploy_many.deploy.service_deployment import (
    ROLLBACK_GOING,
    holds_on_purpose,
    rollback_reason,
    stage_text,
)

__all__ = [
    "VERDICT_GRACE",
    "Expectation",
    "Judgement",
    "Rollout",
    "Verdict",
    "epoch_seconds",
    "judge",
    "judge_service_deployment",
    "revision_replaced",
    "rollout_of",
    "wait_for_deployment",
]


VERDICT_GRACE = 60.0
"""Simulated seconds past a deadline allowed for reading the verdict there."""


class Verdict(Enum):
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK_BY_ECS = "rolled_back_by_ecs"


class Rollout(Enum):
    """How a service's PRIMARY deployment stands, from one description."""

    STEADY = "steady"
    IN_PROGRESS = "in_progress"
    FAILED = "failed"


def rollout_of(service: dict[str, Any]) -> Rollout:
    """Steady: one deployment, the PRIMARY, COMPLETED (or, where ECS reports no rollout
    state, running its desired count). FAILED: ECS marked the PRIMARY FAILED, or there is
    none. Anything else is still rolling out."""
    deployments: list[dict[str, Any]] = service.get("deployments", [])
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    if primary is None or primary.get("rolloutState") == "FAILED":
        return Rollout.FAILED
    state = primary.get("rolloutState")
    settled = state == "COMPLETED" or (
        state is None and primary.get("runningCount") == primary.get("desiredCount")
    )
    return Rollout.STEADY if settled and len(deployments) == 1 else Rollout.IN_PROGRESS


def revision_replaced(service: dict[str, Any]) -> str | None:
    """The revision a deployment under way replaces, as far as one description shows:
    that of the ACTIVE deployment (the one that completed, when there are several);
    None when ECS shows none (it had drained, or there was none)."""
    active = [d for d in service.get("deployments", []) if d.get("status") == "ACTIVE"]
    completed = [d for d in active if d.get("rolloutState") == "COMPLETED"]
    chosen = completed or active
    return chosen[0].get("taskDefinition") if chosen else None


@dataclass(frozen=True)
class Expectation:
    """The deployment a wait is about."""

    deployment_id: str
    task_definition: str
    skip_deployments_check: bool = False
    service_deployment_arn: str | None = None
    """ECS's service deployment of it, when that judges it (``deploy.strategy``)."""


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason: str
    deployment: dict[str, Any] | None = None
    """Our entry of the service's deployments array, when it has one."""
    service_deployment: dict[str, Any] | None = None
    """Our service deployment, when it judged."""

    @property
    def stage(self) -> str | None:
        """The service deployment's lifecycle stage, when it judged."""
        return (self.service_deployment or {}).get("lifecycleStage")


def _circuit_breaker_rolls_back(service: dict[str, Any]) -> bool:
    breaker = service.get("deploymentConfiguration", {}).get("deploymentCircuitBreaker", {})
    return bool(breaker.get("enable") and breaker.get("rollback"))


def judge(service: dict[str, Any] | None, expect: Expectation) -> Judgement:
    """Decide from one DescribeServices answer where our deployment stands."""
    if service is None:
        return Judgement(Verdict.FAILED, "the service no longer exists")
    deployments: list[dict[str, Any]] = service.get("deployments", [])
    ours = next((d for d in deployments if d.get("id") == expect.deployment_id), None)
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)

    if ours is None or ours is not primary:
        replaced_by = (
            f"{primary.get('id')} on {primary.get('taskDefinition')}" if primary else "nothing"
        )
        why = (primary or {}).get("rolloutStateReason") or ""
        reason = f"deployment {expect.deployment_id} was replaced by {replaced_by}"
        if "circuit breaker" in why or (ours or {}).get("rolloutState") == "FAILED":
            return Judgement(Verdict.ROLLED_BACK_BY_ECS, f"{reason}: {why}".rstrip(": "), ours)
        return Judgement(Verdict.FAILED, reason, ours)

    state = ours.get("rolloutState")
    if state == "FAILED":
        reason = ours.get("rolloutStateReason") or "ECS marked the deployment FAILED"
        if _circuit_breaker_rolls_back(service):
            return Judgement(Verdict.ROLLED_BACK_BY_ECS, f"{reason} (ECS rolls back)", ours)
        return Judgement(Verdict.FAILED, reason, ours)

    running, desired = ours.get("runningCount", 0), ours.get("desiredCount", 0)
    if running < desired:
        return Judgement(Verdict.WAITING, f"{running}/{desired} tasks running", ours)
    if expect.skip_deployments_check:
        return Judgement(Verdict.SUCCEEDED, f"{running}/{desired} tasks running", ours)
    if len(deployments) > 1:
        return Judgement(
            Verdict.WAITING, f"{len(deployments) - 1} older deployment(s) still draining", ours
        )
    if state not in (None, "COMPLETED"):
        return Judgement(Verdict.WAITING, f"rollout state {state}", ours)
    return Judgement(Verdict.SUCCEEDED, "deployment completed", ours)


def judge_service_deployment(
    service_deployment: dict[str, Any],
    service: dict[str, Any] | None,
    expect: Expectation,
    *,
    stage: str = "",
) -> Judgement:
    """Decide from our service deployment where our deployment stands.

    SUCCESSFUL succeeded. ROLLBACK_SUCCESSFUL was rolled back by ECS, for ECS's reason
    (the alarms in ALARM, by name). ROLLBACK_FAILED and STOPPED failed. Anything else is
    waited for, an ECS rollback until it ends, so the state reported is final. ``stage``
    (``service_deployment.stage_text``) is the reason of a deployment still going.
    """
    deployments = (service or {}).get("deployments", [])
    ours = next((d for d in deployments if d.get("id") == expect.deployment_id), None)
    status = service_deployment.get("status")
    verdict, reason = Verdict.WAITING, stage or f"service deployment {status}"
    if status == "SUCCESSFUL":
        verdict, reason = Verdict.SUCCEEDED, "deployment completed (service deployment SUCCESSFUL)"
    elif status == "ROLLBACK_SUCCESSFUL":
        verdict = Verdict.ROLLED_BACK_BY_ECS
        reason = f"ECS rolled back: {rollback_reason(service_deployment)}"
    elif status == "ROLLBACK_FAILED":
        detail = service_deployment.get("statusReason")
        verdict = Verdict.FAILED
        reason = f"ECS rolled back ({rollback_reason(service_deployment)}) but its rollback failed"
        reason += f": {detail}" if detail and detail not in reason else ""
    elif status == "STOPPED":
        why = service_deployment.get("statusReason") or "ECS gave no reason"
        verdict, reason = Verdict.FAILED, f"service deployment stopped: {why}"
    elif status in ROLLBACK_GOING:
        reason = f"ECS rolling back: {rollback_reason(service_deployment)}"
    return Judgement(verdict, reason, ours, service_deployment)


EventSink = Callable[[dict[str, Any]], None]
ProgressSink = Callable[[Judgement], None]
FallbackSink = Callable[[str], None]


async def wait_for_deployment(
    updates: ServiceUpdates,
    expect: Expectation,
    *,
    clock: Clock,
    timeout: float,
    since: Any,
    on_service_event: EventSink,
    on_progress: ProgressSink,
    progress_deadline: float | None = None,
    service_deployments: ServiceDeploymentWatcher | None = None,
    on_fallback: FallbackSink | None = None,
) -> Judgement:
    """Wait until ``expect`` succeeds; raise DeploymentFailed, DeploymentTimeout or
    VerdictUnknown.

    Service events from ``since`` on (the deployment's createdAt, a server timestamp, so
    local clock skew does not matter) go to ``on_service_event`` once each, oldest first;
    every change of the judgement's reason goes to ``on_progress``. With a
    ``progress_deadline``, a deployment that has made no progress (see
    ``_WaitState.stalled``) for that long fails, however much of ``timeout`` is left.

    With ``expect.service_deployment_arn``, each description of the service is followed
    by one of that service deployment from ``service_deployments`` (coalesced with the
    other targets' of the region), which judges. Should ECS refuse to describe it or not
    know it, ``on_fallback`` hears why and the deployments array judges from then on.

    At the deadline the verdict comes from a description read then (the last one may
    be old when reads were failing, or the deployment may have finished since): a
    deployment still running there timed out. When ECS cannot be read, the verdict is
    unknown, never failed: the deployment may still complete.
    """
    state = _WaitState(
        epoch_seconds(since), clock, progress_deadline, clock.now(), on_service_event, on_progress
    )
    if expect.service_deployment_arn and service_deployments is not None:
        state.service_deployments = service_deployments
        state.on_fallback = on_fallback
    try:
        try:
            with clock.fail_after(timeout):
                judgement = await _until_settled(updates, expect, state)
        except TimeoutError:
            judgement = await _at_deadline(updates, expect, state, timeout)
    except AwsError as error:
        raise VerdictUnknown(
            f"verdict unknown: ECS could not be read ({error}); "
            f"deployment {expect.deployment_id} may still complete",
            deployment_id=expect.deployment_id,
            code=error.code,
        ) from error
    if judgement.verdict is not Verdict.SUCCEEDED:
        raise DeploymentFailed(
            judgement.reason,
            deployment_id=expect.deployment_id,
            rolled_back_by_ecs=judgement.verdict is Verdict.ROLLED_BACK_BY_ECS,
        )
    return judgement


async def _at_deadline(
    updates: ServiceUpdates, expect: Expectation, state: _WaitState, timeout: float
) -> Judgement:
    """The verdict at the deadline, from one description read after it."""
    updates.ask_now()
    judgement = None
    with state.clock.move_on_after(VERDICT_GRACE):
        judgement = await state.read(updates, expect)
    if judgement is None:
        raise VerdictUnknown(
            f"verdict unknown: ECS could not be read by the deadline of {timeout:g} s; "
            f"deployment {expect.deployment_id} may still complete "
            f"(last state: {state.last_reason or 'no answer yet'})",
            deployment_id=expect.deployment_id,
        )
    if judgement.verdict is Verdict.WAITING:
        raise DeploymentTimeout(
            f"deployment {expect.deployment_id} did not finish within {timeout:g} s "
            f"(last state: {judgement.reason})",
            step="wait",
        )
    return judgement


@dataclass
class _WaitState:
    since: float
    clock: Clock
    progress_deadline: float | None
    progress_at: float
    on_service_event: EventSink
    on_progress: ProgressSink
    best_running: int = -1
    least_draining: float = float("inf")
    seen: set[str] = field(default_factory=set)
    last_reason: str = ""
    service_deployments: ServiceDeploymentWatcher | None = None
    on_fallback: FallbackSink | None = None
    stage: tuple[Any, ...] = ()
    """Our service deployment's status, stage and traffic weight as last read."""
    stage_since: float = 0.0

    async def read(self, updates: ServiceUpdates, expect: Expectation) -> Judgement:
        """Judge the next description, passing on its new events and any new state."""
        service = await updates.next()
        for event in reversed((service or {}).get("events", [])):
            if event["id"] not in self.seen and epoch_seconds(event.get("createdAt")) >= self.since:
                self.seen.add(event["id"])
                self.on_service_event(event)
        judgement = await self._judge(service, expect)
        if judgement.verdict is Verdict.WAITING:
            judgement = self.stalled(service, judgement) or judgement
        if judgement.reason != self.last_reason:
            self.last_reason = judgement.reason
            self.on_progress(judgement)
        return judgement

    async def _judge(self, service: dict[str, Any] | None, expect: Expectation) -> Judgement:
        """By our service deployment when it judges and ECS describes it, else by the
        deployments array."""
        arn = expect.service_deployment_arn
        if arn is None or self.service_deployments is None:
            return judge(service, expect)
        try:
            found = await self.service_deployments.describe(arn)
        except AwsError as error:
            found, why = None, f"ECS refused to describe {arn} ({error})"
        else:
            why = f"ECS no longer describes {arn}"
        if found is None:
            self.service_deployments = None
            if self.on_fallback is not None:
                self.on_fallback(why)
            return judge(service, expect)
        key = (
            found.get("status"),
            found.get("lifecycleStage"),
            (found.get("targetServiceRevision") or {}).get("requestedProductionTrafficWeight"),
        )
        now = self.clock.now()
        if key[:2] != self.stage[:2]:
            self.stage_since = now
        if key != self.stage:
            self.stage, self.progress_at = key, now  # a new stage or weight is progress
        text = stage_text(found, service, in_stage_for=now - self.stage_since)
        return judge_service_deployment(found, service, expect, stage=text)

    def stalled(self, service: dict[str, Any] | None, judgement: Judgement) -> Judgement | None:
        """A failing judgement when nothing has moved for ``progress_deadline``.

        Progress is our deployment running more tasks than ever before, or the older
        deployments running fewer: tasks that start and fail over and over are not. So
        is a new lifecycle stage or traffic weight, and ECS holding the deployment on
        purpose (``service_deployment.holds_on_purpose``: a bake, a linear or canary
        step, a lifecycle hook, its own rollback).
        """
        if self.progress_deadline is None:
            return None
        sd = judgement.service_deployment
        if sd is not None and holds_on_purpose(sd, service):
            self.progress_at = self.clock.now()
            return None
        ours = judgement.deployment or {}
        running = int(ours.get("runningCount", 0))
        draining = sum(
            int(d.get("runningCount", 0))
            for d in (service or {}).get("deployments", [])
            if d.get("id") != ours.get("id")
        )
        now = self.clock.now()
        if running > self.best_running or draining < self.least_draining:
            self.best_running = max(self.best_running, running)
            self.least_draining = min(self.least_draining, draining)
            self.progress_at = now
            return None
        if now - self.progress_at < self.progress_deadline:
            return None
        return Judgement(
            Verdict.FAILED,
            f"no progress for {self.progress_deadline:g} s "
            f"({running}/{ours.get('desiredCount', '?')} tasks running)",
            ours,
        )


async def _until_settled(
    updates: ServiceUpdates, expect: Expectation, state: _WaitState
) -> Judgement:
    """Read descriptions until the verdict is no longer WAITING."""
    while True:
        judgement = await state.read(updates, expect)
        if judgement.verdict is not Verdict.WAITING:
            return judgement


def epoch_seconds(value: Any) -> float:
    """ECS timestamps arrive as datetimes from botocore; compare as epoch seconds."""
    if value is None:
        return 0.0
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value)
