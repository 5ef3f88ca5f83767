"""One target's deploy, start to finish; the only place that sequences ECS calls.

service target:          resolve -> render -> register -> update -> wait -> cleanup
                                                                 \\-> rollback (on failure)
                         (unchanged when the service runs the rendered revision and its
                         deployment is steady; a deployment of that revision still under
                         way is followed instead of updating, one that failed is redone)
task-definition target:  resolve -> render -> register [-> run_task] -> cleanup
                         (an identical revision in use is reused, not registered again;
                         its task runs again unless the target says otherwise)

Expected failures become a ``TargetResult`` (one bad service never takes others down);
anything unexpected propagates. Every step emits ``TargetEvent``s (``deploy.steps``);
the wait is judged in ``deploy.wait``, a rollback runs in ``deploy.rollback``. A target
of a continued run starts where ``deploy.resume`` says: following the earlier run's
deployment, reusing its revision, or finishing its rollback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from ecs_deploy_many.aws.gateway import Gateway, TaskDefinition
from ecs_deploy_many.core.errors import AwsError, DeployError, DeploymentFailed, EcsDeployError
from ecs_deploy_many.core.events import EventName
from ecs_deploy_many.core.redact import task_definition_secrets
from ecs_deploy_many.core.result import Status, TargetResult
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.deploy.cleanup import family_of
from ecs_deploy_many.deploy.resume import Resumption, Start
from ecs_deploy_many.deploy.resume import resumption as resumption_of
from ecs_deploy_many.deploy.rollback import restore
from ecs_deploy_many.deploy.runtask import run_one_off_task
from ecs_deploy_many.deploy.steps import Accounts, RunContext, TargetSteps, primary_deployment
from ecs_deploy_many.deploy.strategy import deployed_by, least_duration, refuse_foreign_controller
from ecs_deploy_many.deploy.taskdef import (
    RenderedTaskDefinition,
    render_task_definition,
    same_content,
)
from ecs_deploy_many.deploy.wait import Expectation, Rollout, revision_replaced, rollout_of

__all__ = [
    "Accounts",
    "RunContext",
    "base_definition",
    "deploy_target",
    "describe_target_service",
    "registers_revision",
    "render_revision",
]


async def deploy_target(
    target: Target,
    context: RunContext,
    result: TargetResult | None = None,
    resumption: Resumption | None = None,
) -> TargetResult:
    """Deploy ``target``; always returns a result, re-raising only cancellation.

    Pass ``result`` to keep a hold on the record when the caller may cancel the
    deployment: it is filled in as the steps go and marked ``interrupted`` then. Pass
    ``resumption`` to pick up where an earlier run left the target (``deploy.resume``).
    """
    return await _Pipeline(target, context, result, resumption).run()


# -- resolve and render: shared with the dry run, which must predict the deploy exactly --


async def describe_target_service(accounts: Accounts, target: Target) -> dict[str, Any]:
    """The service a service target deploys to, as ECS describes it now; missing is an error.

    The cluster's watcher batches this with every other target resolving meanwhile.
    """
    assert target.cluster
    assert target.service
    watcher = await accounts.watcher(target.scope, target.cluster)
    service = await watcher.describe(target.service)
    if service is None:
        raise DeployError(
            f"service {target.service} not found in cluster {target.cluster}", step="resolve"
        )
    return service


def registers_revision(target: Target) -> bool:
    """Whether a deploy registers a new revision; forcing a new deployment alone does not."""
    return (
        target.kind == "task_definition"
        or bool(target.image or target.containers or target.tag_only or target.edits)
        or target.task_definition_body is not None
    )


async def base_definition(
    gateway: Gateway, target: Target, current: str | None = None
) -> TaskDefinition:
    """The revision a target's new one is rendered from.

    A task definition file wins; then a task-definition target's named revision; then a
    service's ``current`` revision, or its family's newest with ``use_latest_task_def``.
    """
    if target.task_definition_body is not None:
        body = dict(target.task_definition_body)
        return TaskDefinition(body, list(body.pop("tags", None) or []))
    if target.kind == "task_definition":
        return await gateway.describe_task_definition(str(target.task_definition))
    assert current, "a service target starts from the service's revision"
    if target.use_latest_task_def:
        current = family_of(current)  # describing a bare family gives its newest ACTIVE revision
    return await gateway.describe_task_definition(current)


def render_revision(
    target: Target, base: TaskDefinition, pins: Mapping[str, str] | None = None
) -> RenderedTaskDefinition:
    """The registration input ``target`` makes of ``base``, each image it sets replaced
    by its pinned form when ``pins`` (``RunContext.pins``) has one."""
    return render_task_definition(
        base.body,
        image=target.image,
        containers=target.containers or None,
        tag_only=target.tag_only,
        tags=base.tags if target.copy_task_definition_tags and base.tags else None,
        pins=pins,
        edits=target.edits,
    )


@dataclass(frozen=True)
class _NextStep:
    """What a service target does after resolving: update to ``task_definition``
    (forcing a new deployment when the revision is the same), or follow ``deployment``,
    under way already, for ``why``."""

    task_definition: str
    force: bool = False
    deployment: dict[str, Any] | None = None
    why: str = ""


class _Pipeline(TargetSteps):
    """A target's deploy: its steps in order, ending in one final record."""

    def __init__(
        self,
        target: Target,
        context: RunContext,
        result: TargetResult | None,
        resumption: Resumption | None,
    ) -> None:
        super().__init__(target, context, result)
        self.resumption = resumption or resumption_of(target, None)

    async def run(self) -> TargetResult:
        result = self.result
        result.started_at = self.clock.now()
        self.emit(EventName.TARGET_STARTED)
        with self.finishing():
            gateway = await self.context.accounts.gateway(self.target.scope)
            if self.target.kind == "service":
                await self._deploy_service(gateway)
            else:
                await self._deploy_task_definition(gateway)
        return result

    # -- the steps -------------------------------------------------------------------

    def _render(self, base: TaskDefinition) -> RenderedTaskDefinition:
        self.enter("render")
        self.context.redactor.add(task_definition_secrets(base.body))
        rendered = render_revision(self.target, base, self.context.pins)
        # the target's own edits: new secret references, secret-looking values
        self.context.redactor.add(task_definition_secrets(rendered.definition))
        for change in rendered.changes:
            self.emit(
                EventName.CONTAINER_IMAGE,
                container=change.name,
                old_image=change.old_image,
                new_image=change.new_image,
            )
        return rendered

    async def _register(self, gateway: Gateway, rendered: RenderedTaskDefinition) -> TaskDefinition:
        """Register the rendered revision, or take the one another target registered, or
        the one the earlier run registered for this target."""
        self.enter("register")
        earlier = await self._registered_earlier(gateway, rendered)
        registered, shared = await self.context.revisions.register(
            gateway, self.target.scope, rendered.definition, earlier=earlier
        )
        self.result.new_task_definition = registered.arn
        self.emit(
            EventName.REGISTERED,
            new_task_definition=registered.arn,
            shared=shared,
            reused=earlier is not None and not shared,
        )
        return registered

    async def _registered_earlier(
        self, gateway: Gateway, rendered: RenderedTaskDefinition
    ) -> TaskDefinition | None:
        """The revision the earlier run registered for this target and did not use, if
        it is still ACTIVE and holds exactly the rendered definition.

        The journal names it; when the target had got as far as resolving and names
        none, its registration may have gone out unrecorded, and the family's newest
        revision is the one it would be.
        """
        history, start = self.resumption.history, self.resumption.start
        if start in (Start.REUSE, Start.RECONCILE) and history.new_task_definition:
            name = history.new_task_definition
        elif start is Start.FRESH and history.old_task_definition:
            name = str(rendered.definition["family"])
        else:
            return None
        try:
            with self.answered_in_time():
                earlier = await gateway.describe_task_definition(name)
        except AwsError as error:
            if error.code != "ClientException":  # ECS's code for "no such revision"
                raise
            return None
        active = earlier.body.get("status", "ACTIVE") == "ACTIVE"
        return earlier if active and same_content(earlier.body, rendered.definition) else None

    async def _deploy_task_definition(self, gateway: Gateway) -> None:
        target = self.target
        with self.answered_in_time():
            base = await base_definition(gateway, target)
        if "taskDefinitionArn" in base.body:
            self.result.old_task_definition = base.arn
        self.emit(EventName.RESOLVED, old_task_definition=self.result.old_task_definition)
        rendered = self._render(base)
        with self.answered_in_time():
            registered = await self._registered_already(gateway, base, rendered)
        if registered is not None:
            self.result.new_task_definition = registered.arn
            self.context.revisions.in_use(registered.arn)
            self.emit(EventName.UNCHANGED, old_task_definition=registered.arn)
            if not (target.run_task and target.rerun_unchanged):
                self.result.status = Status.UNCHANGED
                return
        else:
            registered = await self._register(gateway, rendered)
        if target.run_task:
            self.enter("run_task")
            assert target.cluster, "run_task needs a cluster"
            await run_one_off_task(
                gateway,
                cluster=target.cluster,
                task_definition=registered,
                launch_type=target.launch_type,
                platform_version=target.platform_version,
                network_configuration=target.network_configuration,
                wait_for_success=target.wait_for_success,
                timeout=target.timeout,
                clock=self.clock,
                on_status=lambda arn, status: self.emit(
                    EventName.TASK_STATUS, task=arn, status=status
                ),
            )
        await self._cleanup(gateway)
        self.result.status = Status.SUCCEEDED

    async def _registered_already(
        self, gateway: Gateway, base: TaskDefinition, rendered: RenderedTaskDefinition
    ) -> TaskDefinition | None:
        """The task definition's revision in use (the named one, or the family's newest)
        when it holds exactly the rendered definition: registering again would only add
        a copy. None when the target always registers, as ``ecs-deploy`` does."""
        if not self.target.skip_unchanged:
            return None
        if "taskDefinitionArn" in base.body:
            current = base  # described already: the named revision or the newest
        else:  # a task definition file
            try:
                current = await gateway.describe_task_definition(str(self.target.task_definition))
            except AwsError as error:
                if error.code != "ClientException":  # ECS's code for "no such family"
                    raise
                return None
        return current if same_content(current.body, rendered.definition) else None

    async def _deploy_service(self, gateway: Gateway) -> None:
        target = self.target
        with self.answered_in_time():
            service = await describe_target_service(self.context.accounts, target)
        self._resolve(service)
        refuse_foreign_controller(service)
        self._warn_of_a_short_timeout(service)
        if self.resumption.start is Start.ROLLBACK:
            await self._finish_rollback(gateway, service)
            return
        step = await self._next_step(gateway, service)
        if step is None:
            return
        self.result.new_task_definition = step.task_definition
        try:
            if step.deployment is None:
                service = await self._update(gateway, service, step)
                deployment = primary_deployment(service)
            else:
                deployment = step.deployment
                self._attach(deployment, step.why)
            expect = Expectation(
                deployment["id"], step.task_definition, target.skip_deployments_check
            )
            self.enter("wait")
            try:
                await self.wait(expect, deployment, service)
            except anyio.get_cancelled_exc_class():
                if self.context.stop_deployments_on_interrupt:
                    await self.stop_service_deployment(gateway, expect, deployment)
                raise
        except EcsDeployError as failure:
            # UpdateService's own error means ECS refused the update (the gateway
            # repeats transient failures): nothing changed. After any other failure
            # the service may run our revision.
            if not (isinstance(failure, AwsError) and failure.operation == "UpdateService"):
                await self._after_failure(gateway, failure)
            raise
        await self._cleanup(gateway)
        self.result.status = Status.SUCCEEDED

    async def _next_step(self, gateway: Gateway, service: dict[str, Any]) -> _NextStep | None:
        """Which revision the service gets and whether a deployment under way is followed
        instead of updating; None when the target is unchanged (recorded here)."""
        target = self.target
        current: str = service["taskDefinition"]
        earlier = self._earlier_deployment(service)
        if earlier is not None:
            return earlier
        if not registers_revision(target):
            # a scale change, or --force-new-deployment alone: same revision, fresh tasks
            if self._settings_unchanged(service) and rollout_of(service) is Rollout.STEADY:
                self._unchanged(current)
                return None
            return _NextStep(current, force=target.force_new_deployment)
        with self.answered_in_time():
            base = await base_definition(gateway, target, current)
            rendered = self._render(base)
            on_rendered = await self._on_rendered_revision(gateway, service, rendered)
        rollout = rollout_of(service) if on_rendered else None
        if rollout is Rollout.STEADY:
            self._unchanged(current)
            return None
        if rollout is Rollout.IN_PROGRESS:
            # Someone (an interrupted run, say) is rolling out this very revision: its
            # outcome is this target's. A rollback returns to what that one replaces.
            if not self.resumption.in_flight:
                self.result.old_task_definition = revision_replaced(service)
            why = "a deployment of the rendered revision was under way"
            return _NextStep(current, deployment=primary_deployment(service), why=why)
        if rollout is Rollout.FAILED:
            return _NextStep(current, force=True)  # the same revision, deployed again
        registered = await self._register(gateway, rendered)
        return _NextStep(registered.arn, force=target.force_new_deployment)

    def _unchanged(self, current: str) -> None:
        self.result.new_task_definition = current
        self.result.status = Status.UNCHANGED
        self.emit(EventName.UNCHANGED, old_task_definition=current)

    def _warn_of_a_short_timeout(self, service: dict[str, Any]) -> None:
        """Say so before deploying when the strategy's own waits outlast the timeout."""
        least, timeout = least_duration(service), self.target.timeout
        if least > timeout:
            self.emit(
                EventName.TIMEOUT_TOO_SHORT,
                "warning",
                timeout_s=timeout,
                least_s=least,
                reason=(
                    f"the timeout of {timeout:g} s is shorter than the {least:g} s this "
                    f"service's deployment waits on purpose ({deployed_by(service)}): it "
                    "will time out; give the target a longer timeout"
                ),
            )

    def _resolve(self, service: dict[str, Any]) -> None:
        """Record what the service runs before the run changes it (for a target the
        earlier run may have changed already: what it ran before that run)."""
        history = self.resumption.history
        before = self.resumption.in_flight
        result = self.result
        result.old_task_definition = (
            history.old_task_definition if before else service["taskDefinition"]
        )
        result.old_desired_count = (
            history.old_desired_count if before else service.get("desiredCount")
        )
        result.old_deployment_configuration = (
            history.old_deployment_configuration
            if before
            else service.get("deploymentConfiguration")
        )
        # what a rollback would return to, and what the service runs now
        self.context.revisions.in_use(result.old_task_definition, service["taskDefinition"])
        deployments = [d["id"] for d in service.get("deployments", [])]
        self.emit(
            EventName.RESOLVED,
            old_task_definition=result.old_task_definition,
            desired=result.old_desired_count,
            deployment_configuration=result.old_deployment_configuration,
            deployment_ids=list(history.deployments_before) if before else deployments,
        )

    def _earlier_deployment(self, service: dict[str, Any]) -> _NextStep | None:
        """The deployment a resumed target follows instead of updating, if any.

        The earlier run's deployment when ECS had answered with it. When the update went
        out unanswered: a deployment of the run's revision that began after the run
        resolved the service, if ECS shows one.
        """
        history, start = self.resumption.history, self.resumption.start
        deployments: list[dict[str, Any]] = service.get("deployments", [])
        if start is Start.ATTACH:
            assert history.deployment_id
            found = next((d for d in deployments if d.get("id") == history.deployment_id), None)
            revision = history.new_task_definition or service["taskDefinition"]
            why = "the deployment the earlier run started"
            return _NextStep(
                revision, deployment=dict(found or {"id": history.deployment_id}), why=why
            )
        revision = history.new_task_definition or history.old_task_definition
        if start is not Start.RECONCILE or revision is None:
            return None
        later = [
            d
            for d in deployments
            if d.get("id") not in history.deployments_before and d.get("taskDefinition") == revision
        ]
        if not later:
            return None
        later.sort(key=lambda d: d.get("status") != "PRIMARY")
        why = "the deployment the earlier run's update started"
        return _NextStep(revision, deployment=dict(later[0]), why=why)

    def _attach(self, deployment: dict[str, Any], why: str) -> None:
        """Follow ``deployment`` as if this run's UpdateService had started it."""
        self.result.deployment_id = deployment["id"]
        self.context.revisions.in_use(self.result.old_task_definition)
        self.emit(
            EventName.ATTACHED,
            deployment_id=deployment["id"],
            new_task_definition=self.result.new_task_definition,
            old_task_definition=self.result.old_task_definition,
            rollout_state=deployment.get("rolloutState"),
            reason=why,
        )

    async def _update(
        self, gateway: Gateway, service: dict[str, Any], step: _NextStep
    ) -> dict[str, Any]:
        """UpdateService to the step's revision; the service as ECS answers."""
        self.enter("update")
        with self.answered_in_time():
            updated = await gateway.update_service(
                **self._update_params(service, step.task_definition, force=step.force)
            )
        deployment = primary_deployment(updated)
        self.result.deployment_id = deployment["id"]
        self.emit(
            EventName.SERVICE_UPDATED,
            deployment_id=deployment["id"],
            new_task_definition=step.task_definition,
            desired=deployment.get("desiredCount"),
        )
        return updated

    async def _finish_rollback(self, gateway: Gateway, service: dict[str, Any]) -> None:
        """End a rollback the earlier run began: update only if the service is not on
        the revision yet, then wait for it."""
        history = self.resumption.history
        self.result.new_task_definition = history.new_task_definition
        self.result.deployment_id = history.deployment_id
        reason = history.rollback_reason or "the earlier run began a rollback"
        await restore(self, gateway, history.rollback_pending, reason, service=service)
        self.result.error = reason

    async def _on_rendered_revision(
        self, gateway: Gateway, service: dict[str, Any], rendered: RenderedTaskDefinition
    ) -> bool:
        """Whether the service's revision holds this definition, with these settings
        (how its deployment stands is another question: ``wait.rollout_of``)."""
        if not self._settings_unchanged(service):
            return False
        current = await gateway.describe_task_definition(service["taskDefinition"])
        return same_content(current.body, rendered.definition)

    def _settings_unchanged(self, service: dict[str, Any]) -> bool:
        """Whether the service has the target's desired count and deployment percentages
        already, and the target converges (a plan) rather than always redeploying."""
        target = self.target
        if not target.skip_unchanged or target.force_new_deployment:
            return False
        config = self._deployment_configuration(service)
        if config not in (None, service.get("deploymentConfiguration", {})):
            return False
        return target.desired_count in (None, service.get("desiredCount"))

    def _update_params(
        self, service: dict[str, Any], task_definition: str, *, force: bool
    ) -> dict[str, Any]:
        target = self.target
        params: dict[str, Any] = {
            "cluster": target.cluster,
            "service": target.service,
            "taskDefinition": task_definition,
        }
        if force:
            params["forceNewDeployment"] = True
        if target.desired_count is not None:
            params["desiredCount"] = target.desired_count
        config = self._deployment_configuration(service)
        if config is not None:
            params["deploymentConfiguration"] = config
        return params

    def _deployment_configuration(self, service: dict[str, Any]) -> dict[str, Any] | None:
        """The service's deployment configuration with the target's percentages, if any.

        The whole structure goes back to ECS so the circuit breaker settings survive.
        """
        target = self.target
        if target.min_healthy_percent is None and target.max_percent is None:
            return None
        config = dict(service.get("deploymentConfiguration", {}))
        if target.min_healthy_percent is not None:
            config["minimumHealthyPercent"] = target.min_healthy_percent
        if target.max_percent is not None:
            config["maximumPercent"] = target.max_percent
        return config

    async def _after_failure(self, gateway: Gateway, failure: EcsDeployError) -> None:
        """ECS rolled back, or we roll back when asked to (whatever the failure, even an
        unknown verdict); the result says which."""
        if isinstance(failure, DeploymentFailed) and failure.rolled_back_by_ecs:
            self.result.status = Status.ROLLED_BACK
            self.emit(EventName.ROLLED_BACK_BY_ECS, "error", reason=str(failure))
            return
        if not self.target.rollback:
            return
        await restore(self, gateway, self.result.old_task_definition, str(failure))

    async def _cleanup(self, gateway: Gateway) -> None:
        keep = self.target.max_definitions
        if not keep or self.result.new_task_definition is None:  # None or 0: keep them all
            return
        self.enter("cleanup")
        family = family_of(self.result.new_task_definition)
        # Housekeeping after the deploy: when it fails, the deploy still stands.
        try:
            with self.answered_in_time():
                cleanup = await self.context.revisions.clean_up(
                    gateway, self.target.scope, family=family, keep=keep
                )
        except EcsDeployError as error:
            self.emit(
                EventName.CLEANUP_SKIPPED,
                "warning",
                family=family,
                reason=f"cleanup failed: {error}",
            )
            return
        if cleanup.kept_because:
            self.emit(
                EventName.CLEANUP_SKIPPED, "warning", family=family, reason=cleanup.kept_because
            )
            return
        removed = list(cleanup.deregistered)
        self.emit(
            EventName.DEREGISTERED, family=family, count=len(removed), task_definitions=removed
        )
