"""What every step sequence on one target shares: its events, deadlines, waits and record.

A target's deploy (``deploy.pipeline``) and its rollback (``deploy.rollback``) are both
steps on one ``TargetResult``. ``TargetSteps`` says which step is running, emits the
target's events, bounds ECS calls by the target's timeout, waits for a deployment (by
ECS's service deployment of it where that judges: ``deploy.strategy``), stops that
service deployment when an interrupted run was asked to, and records the final state
with its one ``target_finished`` event.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import anyio

from ecs_deploy_many.aws.gateway import Gateway
from ecs_deploy_many.aws.watch import ServiceDeploymentWatcher, ServiceWatcher
from ecs_deploy_many.core.clock import Clock
from ecs_deploy_many.core.errors import AwsError, DeployError, EcsDeployError, VerdictUnknown
from ecs_deploy_many.core.events import EventName, Level, Observer, Step, TargetEvent
from ecs_deploy_many.core.events import target_finished as target_finished_event
from ecs_deploy_many.core.redact import Redactor
from ecs_deploy_many.core.result import Status, TargetResult
from ecs_deploy_many.core.scope import AwsScope
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.deploy.registry import RunRevisions
from ecs_deploy_many.deploy.service_deployment import find_service_deployment
from ecs_deploy_many.deploy.strategy import judged_by_service_deployment
from ecs_deploy_many.deploy.wait import (
    Expectation,
    Judgement,
    epoch_seconds,
    wait_for_deployment,
)

__all__ = ["STOP_WITHIN", "Accounts", "RunContext", "TargetSteps", "primary_deployment"]

STOP_WITHIN = 60.0
"""Simulated seconds an interrupted wait has to stop its service deployment."""


class Accounts(Protocol):
    """Where the pipeline gets its gateways and watchers (``aws.session.ClientPool``)."""

    async def gateway(self, scope: AwsScope) -> Gateway: ...

    async def watcher(self, scope: AwsScope, cluster: str) -> ServiceWatcher: ...

    async def deployment_watcher(self, scope: AwsScope) -> ServiceDeploymentWatcher: ...


@dataclass(frozen=True)
class RunContext:
    """What every target of a run shares."""

    accounts: Accounts
    clock: Clock
    observe: Observer
    revisions: RunRevisions = field(default_factory=RunRevisions)
    redactor: Redactor = field(default_factory=Redactor)
    """Learns each task definition's secrets as the run reads them, for every output."""
    pins: Mapping[str, str] = field(default_factory=dict)
    """Each image the plan names by tag -> the same image by the digest resolved before
    the run began (``repo@sha256:...``): every target deploys exactly those bytes."""
    stop_deployments_on_interrupt: bool = False
    """When the run is interrupted, stop each service deployment it is waiting for
    (StopServiceDeployment, stopType ROLLBACK): ECS rolls it back."""


class TargetSteps:
    """One target's steps in progress, and the record they fill in."""

    def __init__(
        self, target: Target, context: RunContext, result: TargetResult | None = None
    ) -> None:
        self.target = target
        self.context = context
        self.clock = context.clock
        self.result = result or TargetResult(target)
        self.step: Step = "resolve"
        self.service_deployment_arn: str | None = None
        """ECS's service deployment of the deployment the last wait was about, once known."""

    def enter(self, step: Step) -> None:
        """Move to ``step``; the debug-level event marks when it began (timelines use it)."""
        self.step = step
        self.emit(EventName.STEP_STARTED, "debug")

    def emit(self, event: EventName, level: Level = "info", **facts: Any) -> None:
        self.context.observe(
            TargetEvent(self.target, self.step, event, self.clock.now(), facts, level)
        )

    def fail(self, error: EcsDeployError) -> None:
        """Record an expected failure; a target ECS rolled back stays ``rolled_back``."""
        result = self.result
        if result.status is not Status.ROLLED_BACK:
            result.status = Status.UNKNOWN if isinstance(error, VerdictUnknown) else Status.FAILED
        result.error = str(error)
        result.error_code = error.code if isinstance(error, AwsError | VerdictUnknown) else None
        result.failed_step = getattr(error, "step", "") or self.step

    def finish(self) -> None:
        """The record is final: stamp it and say so."""
        self.result.finished_at = self.clock.now()
        self.step = "done"
        self.context.observe(target_finished_event(self.result, self.result.finished_at))

    @contextmanager
    def finishing(self) -> Iterator[None]:
        """Run the steps inside, then ``finish`` however they end: an expected failure
        is recorded (not raised), a cancellation leaves the target ``interrupted`` at its
        step and goes on."""
        try:
            yield
        except EcsDeployError as error:
            self.fail(error)
        except anyio.get_cancelled_exc_class():
            self.result.status = Status.INTERRUPTED
            self.result.error = self.result.error or f"interrupted during {self.step}"
            self.finish()
            raise
        self.finish()

    @contextmanager
    def answered_in_time(self) -> Iterator[None]:
        """Bound the step's ECS calls (retried while they fail transiently) by the
        target's timeout."""
        timeout = self.target.timeout
        try:
            with self.clock.fail_after(timeout):
                yield
        except TimeoutError:
            raise DeployError(
                f"ECS did not answer within the timeout of {timeout:g} s", step=self.step
            ) from None

    async def wait(
        self,
        expect: Expectation,
        deployment: dict[str, Any],
        service: dict[str, Any] | None = None,
    ) -> Judgement:
        """Wait until ECS says ``deployment`` finished (``deploy.wait`` judges).

        ``service`` (as described or updated) says whether ECS's service deployment
        judges it (``deploy.strategy``); that one is found first.
        """
        target = self.target
        assert target.cluster
        assert target.service
        accounts = self.context.accounts
        deployments = None
        self.service_deployment_arn = None
        if service is not None and judged_by_service_deployment(service):
            arn = await self._our_service_deployment(expect, deployment)
            if arn is not None:
                expect = replace(expect, service_deployment_arn=arn)
                deployments = await accounts.deployment_watcher(target.scope)
        watcher = await accounts.watcher(target.scope, target.cluster)
        async with watcher.subscribe(target.service) as updates:
            judgement = await wait_for_deployment(
                updates,
                expect,
                clock=self.clock,
                timeout=target.timeout,
                since=deployment.get("createdAt"),
                on_service_event=self._service_event,
                on_progress=self._progress,
                progress_deadline=target.progress_deadline,
                service_deployments=deployments,
                on_fallback=self._judged_by_deployments,
            )
        self.emit(EventName.DEPLOYMENT_COMPLETED, deployment_id=expect.deployment_id)
        return judgement

    async def find_service_deployment(
        self, expect: Expectation, deployment: dict[str, Any]
    ) -> str | None:
        """The ARN of ECS's service deployment of ``deployment`` (which deploys
        ``expect.task_definition``); None when ECS lists none. Raises AwsError when ECS
        refuses to list them."""
        target = self.target
        assert target.cluster
        assert target.service
        gateway = await self.context.accounts.gateway(target.scope)
        watcher = await self.context.accounts.deployment_watcher(target.scope)
        if watcher.unsupported is not None:
            raise watcher.unsupported
        try:
            with self.answered_in_time():
                found = await find_service_deployment(
                    gateway,
                    watcher.revisions,
                    target.cluster,
                    target.service,
                    created_at=epoch_seconds(deployment.get("createdAt")),
                    task_definition=expect.task_definition,
                )
        except AwsError as error:
            if error.code == "UnknownOperationException":
                watcher.unsupported = error
            raise
        return None if found is None else str(found["serviceDeploymentArn"])

    async def stop_service_deployment(
        self, gateway: Gateway, expect: Expectation, deployment: dict[str, Any]
    ) -> None:
        """The run was interrupted mid-wait and asked to stop its deployments: have ECS
        stop ours and roll it back (StopServiceDeployment, stopType ROLLBACK); the
        record says what became of it."""
        outcome = "its service deployment could not be stopped in time"
        with self.clock.move_on_after(STOP_WITHIN, shield=True):
            try:
                arn = self.service_deployment_arn or await self.find_service_deployment(
                    expect, deployment
                )
                if arn is None:
                    outcome = "ECS lists no service deployment of it to stop"
                else:
                    await gateway.stop_service_deployment(arn)
                    outcome = f"stopped service deployment {arn}: ECS rolls it back"
                    self.emit(
                        EventName.DEPLOYMENT_STOPPED,
                        "warning",
                        deployment_id=expect.deployment_id,
                        service_deployment_arn=arn,
                    )
            except EcsDeployError as error:
                outcome = f"its service deployment could not be stopped: {error}"
        self.result.error = f"interrupted during wait; {outcome}"

    async def _our_service_deployment(
        self, expect: Expectation, deployment: dict[str, Any]
    ) -> str | None:
        """Find our service deployment to judge by, and say which it is; when ECS lists
        none or will not list them, say that the deployments array judges instead."""
        try:
            arn = await self.find_service_deployment(expect, deployment)
        except AwsError as error:
            self._judged_by_deployments(f"ECS refused to list service deployments ({error})")
            return None
        if arn is None:
            self._judged_by_deployments(
                f"ECS lists no service deployment of {expect.task_definition}"
            )
            return None
        self.service_deployment_arn = arn
        self.emit(
            EventName.SERVICE_DEPLOYMENT,
            deployment_id=expect.deployment_id,
            service_deployment_arn=arn,
        )
        return arn

    def _judged_by_deployments(self, why: str) -> None:
        self.emit(
            EventName.SERVICE_DEPLOYMENT,
            "warning",
            service_deployment_arn=None,
            reason=f"{why}: judged by the service's deployments array",
        )

    def _service_event(self, event: dict[str, Any]) -> None:
        created_at = epoch_seconds(event.get("createdAt"))
        self.result.service_events.append({"at": created_at, "message": event.get("message", "")})
        self.emit(EventName.ECS_EVENT, message=event.get("message", ""), created_at=created_at)

    def _progress(self, judgement: Judgement) -> None:
        deployment = judgement.deployment or {}
        self.emit(
            EventName.PROGRESS,
            deployment_id=deployment.get("id"),
            running=deployment.get("runningCount"),
            desired=deployment.get("desiredCount"),
            pending=deployment.get("pendingCount"),
            failed_tasks=deployment.get("failedTasks"),
            rollout_state=deployment.get("rolloutState"),
            stage=judgement.stage,
            state=judgement.reason,
        )


def primary_deployment(service: dict[str, Any]) -> dict[str, Any]:
    """The PRIMARY deployment of a service UpdateService returned."""
    for deployment in service.get("deployments", []):
        if deployment.get("status") == "PRIMARY":
            return dict(deployment)
    raise DeployError("UpdateService returned no PRIMARY deployment", step="update")
