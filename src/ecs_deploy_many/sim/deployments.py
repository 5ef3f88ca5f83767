"""The service scheduler: rolling deployments, the circuit breaker and service events.

``reconcile`` looks at one service and makes the moves ECS would make now: stop old tasks
as far as minimumHealthyPercent allows, start tasks of the PRIMARY deployment as far as
maximumPercent allows, drop drained deployments, complete the PRIMARY. It only ever reads
the tasks of that one service, so its cost follows the service, not the fleet.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import math
from typing import Any

from ecs_deploy_many.sim import history
from ecs_deploy_many.sim import tasks as lifecycle
from ecs_deploy_many.sim.model import (
    Deployment,
    Ids,
    Service,
    ServiceDeployment,
    Task,
    TaskDef,
    breaker_threshold,
    launch_settings,
    tag_list,
)
from ecs_deploy_many.sim.strategies import STAGED, StagedRollout
from ecs_deploy_many.sim.tasks import Change, Lifecycle

__all__ = ["Scheduler", "render_configuration", "render_service"]

STUCK = (
    "was unable to stop or start tasks during a deployment because of the service "
    "deployment configuration. Update the minimumHealthyPercent or maximumPercent value "
    "and try again."
)
BREAKER_REASON = "ECS deployment circuit breaker: tasks failed to start."
# Who started a rollback, as the rollback deployment's rolloutStateReason names it:
# "<who>: rolling back to deploymentId ecs-svc/...". The breaker's is ECS's wording; the
# others follow it [unconfirmed].
BREAKER = "ECS deployment circuit breaker"
STOP_ROLLBACK = "ECS service deployment stopped"
ALARMS = "ECS deployment alarms"
UNSTABLE_AFTER = 3  # failed starts before "unable to consistently start" [unconfirmed]


class Scheduler:
    """Drives every service's deployments toward its desired count."""

    def __init__(self, lifecycle: Lifecycle, ids: Ids) -> None:
        self._lifecycle = lifecycle
        self._ids = ids
        self._staged = StagedRollout(self)
        # Services to reconcile at a time of their own (a stage's wait ending), not a task's.
        self._timers: list[tuple[float, int, Service]] = []
        self._timer_seq = itertools.count()
        # Services whose deployment watched an alarm at their last reconcile, by alarm name.
        self._watchers: dict[str, dict[int, Service]] = {}

    # timers -----------------------------------------------------------------------------

    def wake(self, service: Service, when: float) -> None:
        """Reconcile ``service`` at ``when``; a wake that finds nothing due costs one look."""
        heapq.heappush(self._timers, (when, next(self._timer_seq), service))

    def next_wake(self) -> float | None:
        return self._timers[0][0] if self._timers else None

    def pop_wakes(self, until: float) -> list[Service]:
        """The services whose wake is due by ``until``, and those watching an alarm that
        has just gone into ALARM."""
        due = []
        while self._timers and self._timers[0][0] <= until:
            due.append(heapq.heappop(self._timers)[2])
        for name in self._lifecycle.take_raised():
            due.extend(self._watchers.pop(name, {}).values())
        return due

    def event(self, service: Service, now: float, text: str) -> None:
        service.events.appendleft(
            {
                "id": self._ids.uuid(),
                "createdAt": now,
                "message": f"(service {service.name}) {text}",
            }
        )

    def start_deployment(
        self,
        service: Service,
        taskdef: TaskDef,
        now: float,
        *,
        rollback_to: Deployment | None = None,
        rollback_by: str = BREAKER,
        staged: bool = True,
    ) -> Deployment:
        """A new PRIMARY, IN_PROGRESS; the previous PRIMARY turns ACTIVE, keeps its rolloutState.

        A deployment the user started gets a service revision and a service deployment; a
        rollback (``rollback_to``, started by ``rollback_by``) runs the revision it returns to.
        With ``staged`` (not for a fleet's steady start), a BLUE_GREEN, LINEAR or CANARY
        service walks through its lifecycle stages.
        """
        if service.deployments:
            service.primary.status = "ACTIVE"
            service.primary.updated_at = now
        deployment = Deployment(
            id=self._ids.deployment_id(),
            taskdef=taskdef,
            created_at=now,
            updated_at=now,
            launch_type=service.launch_type,
            platform_version=service.platform_version,
            network_configuration=service.network_configuration,
            desired=service.desired,
            is_rollback=rollback_to is not None,
        )
        deployment.reason = (
            f"{rollback_by}: rolling back to deploymentId {rollback_to.id}."
            if rollback_to is not None
            else f"ECS deployment {deployment.id} in progress."
        )
        service.deployments.insert(0, deployment)
        service.taskdef = taskdef
        if rollback_to is not None:
            deployment.revision = rollback_to.revision
        else:
            history.new_revision(service, deployment, now)
            if service.controller == "ECS":
                record = history.open_service_deployment(
                    service,
                    deployment,
                    self._ids.service_deployment_id(),
                    render_configuration(service),
                    now,
                )
                if staged and service.settings.get("strategy") in STAGED:
                    self.wake(service, StagedRollout.begin(service, deployment, record, now))
        return deployment

    def start_tasks(
        self, service: Service, deployment: Deployment, count: int, now: float, running: bool
    ) -> list[Task]:
        started = [
            self._lifecycle.create(
                cluster=service.cluster,
                taskdef=deployment.taskdef,
                now=now,
                launch_type=deployment.launch_type,
                platform_version=deployment.platform_version,
                group=f"service:{service.name}",
                started_by=deployment.id,
                timings=service.timings,
                service=service,
                deployment=deployment,
                running=running,
            )
            for _ in range(count)
        ]
        if started:
            deployment.updated_at = now
            ids = " ".join(f"(task {t.id})" for t in started)
            self.event(service, now, f"has started {len(started)} tasks: {ids}.")
        return started

    def stop_tasks(
        self, service: Service, tasks: list[Task], now: float, reason: str | None = None
    ) -> None:
        """Stop tasks in one move; without a reason, ECS's scale-in wording for each task."""
        for task in tasks:
            deployment = task.deployment.id if task.deployment is not None else ""
            why = reason or f"Scaling activity initiated by (deployment {deployment})"
            self._lifecycle.stop(task, now, "ServiceSchedulerInitiated", why)
            if task.deployment is not None:
                task.deployment.updated_at = now
        if tasks:
            ids = " ".join(f"(task {t.id})" for t in tasks)
            self.event(service, now, f"has stopped {len(tasks)} running tasks: {ids}.")

    # reacting to tasks ------------------------------------------------------------------

    def on_task_changed(self, task: Task, change: Change | None, now: float) -> None:
        """Account for what happened to one of a service's tasks; the caller reconciles."""
        service, deployment = task.service, task.deployment
        if service is None or deployment is None:
            return
        deployment.updated_at = now
        if change == lifecycle.FAILED_TO_START:
            self.event(service, now, f"was unable to place a task. Reason: {task.stopped_reason}.")
            # Stage 1 of the breaker counts tasks that never reach RUNNING, until one does.
            self._count_failure(service, deployment, now, counts=not deployment.has_run)
            if deployment.failed_tasks >= UNSTABLE_AFTER and not deployment.unstable_reported:
                deployment.unstable_reported = True
                self.event(service, now, "is unable to consistently start tasks successfully.")
        elif change == lifecycle.RUNNING:
            deployment.has_run = True
        elif change == lifecycle.HEALTHY:
            deployment.consecutive_failures = 0
        elif change == lifecycle.UNHEALTHY and task.desired_status == "RUNNING":
            self.event(service, now, f"(task {task.id}) failed container health checks.")
            self.stop_tasks(service, [task], now, "Task failed container health checks")
            # Stage 2 counts tasks replaced after failing health checks. A task whose
            # essential container exits (a `crash` image) is not counted: the documented
            # definition of failedTasks names only launch and health-check failures, so a
            # crash loop stalls the rollout instead of tripping the breaker.
            self._count_failure(service, deployment, now, counts=deployment.has_run)

    def _count_failure(
        self, service: Service, deployment: Deployment, now: float, *, counts: bool
    ) -> None:
        deployment.failed_tasks += 1
        if not counts:
            return
        deployment.consecutive_failures += 1
        if (
            service.breaker
            and deployment is service.primary
            and deployment.rollout == "IN_PROGRESS"
            and deployment.consecutive_failures >= breaker_threshold(service.desired)
        ):
            self._trip(service, deployment, now)

    def _trip(self, service: Service, deployment: Deployment, now: float) -> None:
        if deployment.history is not None:
            deployment.history.breaker_tripped = True
        self._fail(
            service,
            deployment,
            now,
            reason=BREAKER_REASON,
            what="tasks failed to start",
            rollback=service.rollback,
            rollback_by=BREAKER,
        )

    def _fail(
        self,
        service: Service,
        deployment: Deployment,
        now: float,
        *,
        reason: str,
        what: str,
        rollback: bool,
        rollback_by: str,
    ) -> None:
        """The PRIMARY failed: roll back to the last completed deployment when configured to.

        A rollback that fails itself is not rolled back again: the service stalls, as
        without rollback (conservative; ECS does not document this case). The limit of
        five deployments binds UpdateService only, so a rollback is never refused.
        """
        deployment.rollout = "FAILED"
        deployment.reason = reason
        self.event(service, now, f"(deployment {deployment.id}) deployment failed: {what}.")
        record = deployment.history
        if rollback and service.stable is not None and not deployment.is_rollback:
            self._roll_back(service, record, now, reason, rollback_by)
        elif record is not None and not record.finished:
            status = "ROLLBACK_FAILED" if deployment.is_rollback else "STOPPED"
            history.finish(record, status, now, reason)

    def _roll_back(
        self,
        service: Service,
        record: ServiceDeployment | None,
        now: float,
        reason: str,
        rollback_by: str,
    ) -> None:
        stable = service.stable
        assert stable is not None
        self.event(service, now, f"rolling back to deployment {stable.id}.")
        failed = service.primary
        rollback = self.start_deployment(
            service, stable.taskdef, now, rollback_to=stable, rollback_by=rollback_by
        )
        if failed.weights is not None and stable in service.deployments:
            # Blue still runs beside green: traffic returns to it and its tasks carry on
            # under the rollback deployment, which then drains green as a rolling update.
            failed.weights = (0.0, 0.0)
            for task in stable.tasks.values():
                task.deployment = rollback
            rollback.tasks.update(stable.tasks)
            stable.tasks.clear()
            service.deployments.remove(stable)
        if record is not None and not record.finished:
            history.begin_rollback(record, rollback, reason, now)

    def _watch_alarms(self, service: Service, now: float) -> None:
        """Fail the PRIMARY when an alarm its deployment watches is in ALARM.

        Alarms are watched from the start of a deployment until it completes; a BLUE_GREEN,
        LINEAR or CANARY one stops watching when its bake ends (CLEAN_UP). A deployment
        with an alarm that is OK is woken when that alarm goes into ALARM.
        """
        primary = service.primary
        record = primary.history
        if (
            record is None
            or record.finished
            or record.target is not primary
            or primary.rollout != "IN_PROGRESS"
            or record.stage == "CLEAN_UP"
        ):
            return
        alarms = record.configuration.get("alarms") or {}
        if not alarms.get("enable"):
            return
        names = list(alarms.get("alarmNames", []))
        firing = self._lifecycle.firing(names)
        if not firing:
            for name in names:
                self._watchers.setdefault(name, {})[id(service)] = service
            return
        record.triggered_alarms = firing
        self._fail(
            service,
            primary,
            now,
            reason=f"ECS deployment alarms: {', '.join(firing)} in ALARM.",
            what="alarm(s) detected",
            rollback=bool(alarms.get("rollback")),
            rollback_by=ALARMS,
        )

    def stop_and_roll_back(self, service: Service, record: ServiceDeployment, now: float) -> None:
        """StopServiceDeployment ROLLBACK: the deployment fails on request and rolls back,
        whether or not its service configured rollback. The deployment's reason and event
        are the simulator's wording [unconfirmed]."""
        target = record.target
        target.rollout = "FAILED"
        target.reason = history.STOP_REASON
        target.updated_at = now
        self.event(
            service, now, f"(deployment {target.id}) deployment stopped: rollback requested."
        )
        self._roll_back(service, record, now, history.STOP_REASON, STOP_ROLLBACK)
        self.reconcile(service, now)

    def end_history(self, service: Service, now: float, reason: str) -> None:
        """The service is being deleted: its unfinished service deployment is STOPPED."""
        latest = next(reversed(service.history.values()), None)
        if latest is not None and not latest.finished:
            history.finish(latest, "STOPPED", now, reason)

    # the rolling update -----------------------------------------------------------------

    def reconcile(self, service: Service, now: float) -> None:
        """Make every move the deployment configuration allows at ``now``."""
        if service.status != "ACTIVE":
            self._drain(service, now)
            return
        primary, desired = service.primary, service.desired
        primary.desired = desired
        self._watch_alarms(service, now)
        primary = service.primary
        record = _staged(primary)
        if record is not None:
            self._staged.advance(service, primary, record, now)
            self._settle(service, now)
            return
        moving = primary.rollout != "FAILED"  # a FAILED deployment launches no new tasks
        ours = primary.live()
        old = [t for d in service.deployments[1:] for t in d.live()]
        # Scale in: unhealthy tasks go first.
        stopping = sorted(ours, key=lambda t: t.healthy)[: max(0, len(ours) - desired)]
        healthy = sum(t.healthy for t in ours + old) - sum(t.healthy for t in stopping)
        floor_healthy = math.ceil(desired * service.min_percent / 100)
        ceiling = math.floor(desired * service.max_percent / 100)
        if moving:
            for task in sorted(old, key=lambda t: t.healthy):
                if not task.healthy:
                    stopping.append(task)
                elif healthy - 1 >= floor_healthy:
                    stopping.append(task)
                    healthy -= 1
        self.stop_tasks(service, stopping, now)
        live = len(ours) + len(old) - len(stopping)
        ours_left = len(ours) - sum(t.deployment is primary for t in stopping)
        count = min(desired - ours_left, ceiling - live) if moving else 0
        started = self.start_tasks(service, primary, count, now, False) if count > 0 else []
        if primary.rollout == "IN_PROGRESS" and not started and not stopping:
            self._report_stuck(service, primary, ours, old, now)
        self._settle(service, now)

    def _report_stuck(
        self, service: Service, primary: Deployment, ours: list[Task], old: list[Task], now: float
    ) -> None:
        """Nothing moved and nothing in flight can change that: say so, once."""
        in_flight = any(not t.healthy for t in ours + old)
        if old and not in_flight and len(ours) < service.desired and not primary.stuck_reported:
            primary.stuck_reported = True
            self.event(service, now, STUCK)

    def _settle(self, service: Service, now: float) -> None:
        """Drop drained deployments; complete the PRIMARY once it alone runs healthy."""
        primary = service.primary
        for deployment in service.deployments[1:]:
            if not deployment.tasks:
                service.deployments.remove(deployment)
            else:
                deployment.desired = len(deployment.live())
        ours = primary.live()
        staged = _staged(primary)
        if (
            primary.rollout == "IN_PROGRESS"
            and (staged is None or staged.stage == "CLEAN_UP")
            and len(service.deployments) == 1
            and len(ours) == service.desired
            and all(t.healthy for t in ours)
        ):
            primary.rollout = "COMPLETED"
            primary.reason = f"ECS deployment {primary.id} completed."
            primary.updated_at = now
            service.stable = primary
            record = primary.history
            if record is not None and not record.finished:
                status = "ROLLBACK_SUCCESSFUL" if primary.is_rollback else "SUCCESSFUL"
                history.finish(record, status, now)
            self.event(service, now, f"(deployment {primary.id}) deployment completed.")
            self.event(service, now, "has reached a steady state.")

    def _drain(self, service: Service, now: float) -> None:
        """A deleted service stops everything, then turns INACTIVE."""
        live = [t for d in service.deployments for t in d.live()]
        if live:
            self.stop_tasks(service, live, now, "Service deleted")
        if not any(d.tasks for d in service.deployments):
            service.status = "INACTIVE"


def _staged(deployment: Deployment) -> ServiceDeployment | None:
    """The service deployment of a BLUE_GREEN, LINEAR or CANARY rollout ``deployment`` runs."""
    record = deployment.history
    if (
        record is None
        or record.target is not deployment
        or record.stage is None
        or record.finished
        or deployment.rollout != "IN_PROGRESS"
    ):
        return None
    return record


def _render_deployment(deployment: Deployment) -> dict[str, Any]:
    running, pending = deployment.counts()
    rendered: dict[str, Any] = {
        "id": deployment.id,
        "status": deployment.status,
        "taskDefinition": deployment.taskdef.arn,
        "desiredCount": deployment.desired,
        "pendingCount": pending,
        "runningCount": running,
        "failedTasks": deployment.failed_tasks,
        "createdAt": deployment.created_at,
        "updatedAt": deployment.updated_at,
        "launchType": deployment.launch_type,
        "rolloutState": deployment.rollout,
        "rolloutStateReason": deployment.reason,
    }
    return rendered | launch_settings(deployment.platform_version, deployment.network_configuration)


def render_configuration(service: Service) -> dict[str, Any]:
    """The service's deploymentConfiguration, as DescribeServices shows it."""
    return {
        "deploymentCircuitBreaker": {"enable": service.breaker, "rollback": service.rollback},
        "maximumPercent": service.max_percent,
        "minimumHealthyPercent": service.min_percent,
        "strategy": "ROLLING",
        **(copy.deepcopy(service.settings) if service.settings else {}),
    }


def render_service(service: Service, account_id: str, include_tags: bool) -> dict[str, Any]:
    """The DescribeServices shape of a service."""
    deployments = [_render_deployment(d) for d in service.deployments]
    params = service.params
    rendered: dict[str, Any] = {
        "serviceArn": service.arn,
        "serviceName": service.name,
        "clusterArn": service.cluster.arn,
        "loadBalancers": params.get("loadBalancers", []),
        "serviceRegistries": params.get("serviceRegistries", []),
        "status": service.status,
        "desiredCount": service.desired,
        "runningCount": sum(d["runningCount"] for d in deployments),
        "pendingCount": sum(d["pendingCount"] for d in deployments),
        "launchType": service.launch_type,
        "taskDefinition": service.taskdef.arn,
        "deploymentConfiguration": render_configuration(service),
        "deployments": deployments,
        "events": list(service.events),
        "createdAt": service.created_at,
        "placementConstraints": params.get("placementConstraints", []),
        "placementStrategy": params.get("placementStrategy", []),
        "schedulingStrategy": "REPLICA",
        "deploymentController": {"type": service.controller},
        "createdBy": f"arn:aws:iam::{account_id}:root",
        "enableECSManagedTags": params.get("enableECSManagedTags", False),
        "propagateTags": params.get("propagateTags", "NONE"),
        "enableExecuteCommand": params.get("enableExecuteCommand", False),
    }
    rendered |= launch_settings(service.platform_version, service.network_configuration)
    if "healthCheckGracePeriodSeconds" in params:
        rendered["healthCheckGracePeriodSeconds"] = params["healthCheckGracePeriodSeconds"]
    if include_tags:
        rendered["tags"] = tag_list(service.tags)
    return rendered
