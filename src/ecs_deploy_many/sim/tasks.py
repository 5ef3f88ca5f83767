"""What a task does by itself: its walk through lastStatus, health and exit, on a time heap.

Nothing runs in the background. Every future change of a task is an entry in one heap of
timed events; the state model pops the entries that are due, in time order, whenever a
request arrives. A task that changes nothing costs nothing, so a large steady fleet is free.
Stopping a task bumps its ``token``, which voids the events it had scheduled.

Capacity is infinite: a task is never refused for lack of a container instance or an
address, on any launch type.

Deployment alarms follow the tasks too: an alarm of the fleet's ``behaviour.alarms`` is in
ALARM while at least one RUNNING service task runs an image its rule matches, so each
alarm is a counter moved by the status changes that touch it, never a scan.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from collections import Counter
from collections.abc import Callable
from typing import Any

from ecs_deploy_many.sim.fleet import Fleet, Outcome, Timings
from ecs_deploy_many.sim.model import (
    PENDING_STATES,
    Cluster,
    Deployment,
    Ids,
    Service,
    Task,
    TaskDef,
    tag_list,
)

__all__ = ["Lifecycle", "render_task"]

# The change a timed event made, for the scheduler to react to.
Change = str

FAILED_TO_START = "failed_to_start"
RUNNING = "running"
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
EXITED = "exited"
STOPPED = "stopped"
EXPIRED = "expired"
KILLED_EXIT_CODE = 143  # SIGTERM: what a container stopped by the agent reports


class Lifecycle:
    """Creates tasks, schedules their future, and applies it when it falls due."""

    def __init__(self, fleet: Fleet, ids: Ids) -> None:
        self._fleet = fleet
        self._ids = ids
        self._heap: list[tuple[float, int, Task, int, str]] = []
        self._seq = itertools.count()
        self.processed = 0  # timed events applied, for statistics()
        self._running_alarmed: Counter[str] = Counter()  # RUNNING tasks keeping each alarm
        self._alarms_of: dict[str, tuple[str, ...]] = {}  # by task-definition ARN
        self._raised: list[str] = []  # alarms gone into ALARM since last asked
        self._steps: dict[str, Callable[[Task, float], Change | None]] = {
            "PENDING": self._to_pending,
            "ACTIVATING": self._to_activating,
            "RUNNING": self._to_running,
            "HEALTHY": self._to_healthy,
            "UNHEALTHY": self._to_unhealthy,
            "EXIT": self._exit,
            "STOPPING": self._to_stopping,
            "DEPROVISIONING": self._to_deprovisioning,
            "STOPPED": self._to_stopped,
            "EXPIRE": self._expire,
        }

    # creation ---------------------------------------------------------------------------

    def create(
        self,
        *,
        cluster: Cluster,
        taskdef: TaskDef,
        now: float,
        launch_type: str,
        platform_version: str | None,
        group: str,
        started_by: str | None,
        timings: Timings,
        service: Service | None = None,
        deployment: Deployment | None = None,
        overrides: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        running: bool = False,
    ) -> Task:
        """A new task in PROVISIONING, or already RUNNING and healthy (a fleet's steady start)."""
        outcome, trigger = self.outcome_of(taskdef)
        task_id = self._ids.task_id()
        containers = taskdef.containers
        has_check = any("healthCheck" in c for c in containers)
        if service is not None and service.health_check is not None:
            has_check = service.health_check
        task = Task(
            id=task_id,
            arn=cluster.arn.replace(":cluster/", ":task/", 1) + f"/{task_id}",
            cluster=cluster,
            taskdef=taskdef,
            created_at=now,
            launch_type=launch_type,
            platform_version=platform_version,
            group=group,
            started_by=started_by,
            outcome=outcome,
            trigger=trigger,
            timings=timings,
            # An `unhealthy` image implies its container defines the failing health check.
            checked=has_check or outcome.kind == "unhealthy",
            service=service,
            deployment=deployment,
            overrides=overrides
            or {"containerOverrides": [{"name": c["name"]} for c in containers]},
            tags=tags or {},
        )
        cluster.tasks[task.id] = task
        cluster.pending_tasks += 1
        if service is not None:
            service.tasks[task.id] = task
        if deployment is not None:
            deployment.tasks[task.id] = task
        if running:  # only for `ok` service tasks, which have no future to schedule
            for key in ("pullStartedAt", "pullStoppedAt", "connectivityAt"):
                task.at[key] = now
            self._mark_running(task, now)
            self._to_healthy(task, now)
        else:
            self._schedule(task, now + timings.provisioning, "PENDING")
        return task

    def _alarms_for(self, taskdef: TaskDef) -> tuple[str, ...]:
        """The alarms a service task of ``taskdef`` keeps in ALARM while RUNNING (kept per
        task definition, not on each task: a task holds no more attributes than it must)."""
        if (alarms := self._alarms_of.get(taskdef.arn)) is None:
            images = [c["image"] for c in taskdef.containers]
            alarms = self._alarms_of[taskdef.arn] = self._fleet.alarms_of(images)
        return alarms

    def firing(self, names: list[str]) -> list[str]:
        """Those of ``names`` in ALARM now."""
        return [name for name in names if self._running_alarmed[name] > 0]

    def take_raised(self) -> list[str]:
        """Alarms that went into ALARM since the last call."""
        raised, self._raised = self._raised, []
        return raised

    def outcome_of(self, taskdef: TaskDef) -> tuple[Outcome, str | None]:
        """The first essential container whose image is not ``ok`` decides the task's fate."""
        for container in taskdef.containers:
            outcome = self._fleet.outcome_of(container["image"])
            if container.get("essential", True) and outcome.kind != "ok":
                return outcome, container["name"]
        return Outcome(), None

    # the heap ---------------------------------------------------------------------------

    def _schedule(self, task: Task, when: float, step: str) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), task, task.token, step))

    def pop_due(self, until: float) -> tuple[float, Task, Change | None] | None:
        """Apply the earliest event due by ``until``; None when nothing is due."""
        while self._heap and self._heap[0][0] <= until:
            when, _, task, token, step = heapq.heappop(self._heap)
            if token != task.token:
                continue  # the task was stopped after this event was scheduled
            self.processed += 1
            return when, task, self._steps[step](task, when)
        return None

    def next_time(self) -> float | None:
        """When the earliest scheduled event falls (it may have been voided since)."""
        return self._heap[0][0] if self._heap else None

    def pending_events(self) -> int:
        return len(self._heap)

    # steps ------------------------------------------------------------------------------

    def _set_status(self, task: Task, status: str) -> None:
        cluster = task.cluster
        was_running = task.last_status == "RUNNING"
        cluster.pending_tasks -= task.last_status in PENDING_STATES
        cluster.running_tasks -= was_running
        task.last_status = status
        cluster.pending_tasks += status in PENDING_STATES
        cluster.running_tasks += status == "RUNNING"
        task.version += 1
        if (
            self._fleet.behaviour.alarms
            and task.service is not None
            and was_running != (status == "RUNNING")
        ):
            self._count_alarms(self._alarms_for(task.taskdef), 1 if status == "RUNNING" else -1)

    def _count_alarms(self, alarms: tuple[str, ...], change: int) -> None:
        for name in alarms:
            self._running_alarmed[name] += change
            if change > 0 and self._running_alarmed[name] == 1:
                self._raised.append(name)

    def _to_pending(self, task: Task, now: float) -> Change | None:
        self._set_status(task, "PENDING")
        task.at["connectivityAt"] = task.at["pullStartedAt"] = now
        self._schedule(task, now + task.timings.pending, "ACTIVATING")
        return None

    def _to_activating(self, task: Task, now: float) -> Change | None:
        if task.outcome.kind == "fail_to_start":
            image = next(c["image"] for c in task.taskdef.containers if c["name"] == task.trigger)
            reason = (
                "CannotPullContainerError: pull image manifest has been retried 5 time(s): "
                f"failed to resolve ref {image}: not found"
            )
            task.container_reason = reason
            self.stop(task, now, "TaskFailedToStart", reason)
            return FAILED_TO_START
        task.at["pullStoppedAt"] = now
        self._set_status(task, "ACTIVATING")
        self._schedule(task, now + task.timings.activating, "RUNNING")
        return None

    def _mark_running(self, task: Task, now: float) -> None:
        self._set_status(task, "RUNNING")
        task.at["startedAt"] = now
        task.ran = True

    def _to_running(self, task: Task, now: float) -> Change | None:
        self._mark_running(task, now)
        timings, outcome = task.timings, task.outcome
        if outcome.kind == "unhealthy":
            self._schedule(task, now + _after(outcome, timings.health_check), "UNHEALTHY")
        else:
            delay = timings.health_check if task.checked else timings.health_grace
            self._schedule(task, now + delay, "HEALTHY")
        if outcome.kind == "crash":
            self._schedule(task, now + _after(outcome, timings.crash_after), "EXIT")
        elif outcome.kind == "exit" or task.service is None:
            self._schedule(task, now + _after(outcome, timings.run_duration), "EXIT")
        return RUNNING

    def _to_healthy(self, task: Task, now: float) -> Change | None:
        task.healthy = True
        if task.checked:
            task.health = "HEALTHY"
            task.version += 1
        return HEALTHY

    def _to_unhealthy(self, task: Task, now: float) -> Change | None:
        task.health = "UNHEALTHY"
        task.version += 1
        return UNHEALTHY

    def _exit(self, task: Task, now: float) -> Change | None:
        outcome = task.outcome
        code = 1 if outcome.kind == "crash" else outcome.exit_code or 0
        self.stop(task, now, "EssentialContainerExited", "Essential container in task exited", code)
        return EXITED

    def stop(
        self, task: Task, now: float, code: str, reason: str, exit_code: int | None = None
    ) -> bool:
        """Ask a task to stop; False when it was already stopping.

        ``exit_code`` is the code of a natural exit: the container that decides the task's
        fate (every container when none does) reports it; the others are stopped by the
        agent and report SIGTERM's 143, as do all containers of a task stopped from outside.
        """
        if task.desired_status == "STOPPED":
            return False
        task.desired_status = "STOPPED"
        task.token += 1
        task.healthy = False
        task.stop_code, task.stopped_reason = code, reason
        task.at["stoppingAt"] = now
        if task.ran:
            for container in task.taskdef.containers:
                name = container["name"]
                exited = task.trigger in (None, name)
                task.exit_codes[name] = (
                    exit_code if exit_code is not None and exited else KILLED_EXIT_CODE
                )
            self._set_status(task, "DEACTIVATING")
            self._schedule(task, now + task.timings.deactivating, "STOPPING")
        else:
            self._to_deprovisioning(task, now)
        return True

    def _to_stopping(self, task: Task, now: float) -> Change | None:
        self._set_status(task, "STOPPING")
        self._schedule(task, now + task.timings.stopping, "DEPROVISIONING")
        return None

    def _to_deprovisioning(self, task: Task, now: float) -> Change | None:
        self._set_status(task, "DEPROVISIONING")
        task.at["executionStoppedAt"] = now
        self._schedule(task, now + task.timings.deprovisioning, "STOPPED")
        return None

    def _to_stopped(self, task: Task, now: float) -> Change | None:
        self._set_status(task, "STOPPED")
        task.at["stoppedAt"] = now
        if task.deployment is not None:
            task.deployment.tasks.pop(task.id, None)
        self._schedule(task, now + task.timings.stopped_retention, "EXPIRE")
        return STOPPED

    def _expire(self, task: Task, now: float) -> Change | None:
        task.cluster.tasks.pop(task.id, None)
        if task.service is not None:
            task.service.tasks.pop(task.id, None)
        return EXPIRED


def _after(outcome: Outcome, default: float) -> float:
    return default if outcome.after is None else outcome.after


def _container_status(task: Task) -> str:
    if task.last_status in ("DEPROVISIONING", "STOPPED"):
        return "STOPPED"
    if task.ran:
        return "RUNNING"
    return "PENDING"


def render_task(task: Task, include_tags: bool = False) -> dict[str, Any]:
    """The DescribeTasks shape of a task."""
    body = task.taskdef.body
    arn_prefix, _, _ = task.arn.partition(":task/")
    containers = []
    for c in task.taskdef.containers:
        name = c["name"]
        digest = hashlib.sha256(f"{task.id}/{name}".encode()).hexdigest()
        container: dict[str, Any] = {
            "containerArn": f"{arn_prefix}:container/{task.cluster.name}/{task.id}/"
            f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}",
            "taskArn": task.arn,
            "name": name,
            "image": c["image"],
            "lastStatus": _container_status(task),
            "networkBindings": [],
            "networkInterfaces": [],
            "cpu": str(c.get("cpu", 0)),
        }
        if name in task.exit_codes and task.last_status in ("DEPROVISIONING", "STOPPED"):
            container["exitCode"] = task.exit_codes[name]
        if task.container_reason and name == task.trigger:
            container["reason"] = task.container_reason
        if task.checked:
            container["healthStatus"] = task.health
        for key in ("memory", "memoryReservation"):
            if key in c:
                container[key] = str(c[key])
        containers.append(container)
    rendered: dict[str, Any] = {
        "attachments": [],
        "attributes": [{"name": "ecs.cpu-architecture", "value": "x86_64"}],
        "availabilityZone": f"{task.cluster.region}a",
        "clusterArn": task.cluster.arn,
        "connectivity": "CONNECTED" if "connectivityAt" in task.at else "DISCONNECTED",
        "containers": containers,
        "createdAt": task.created_at,
        "desiredStatus": task.desired_status,
        "enableExecuteCommand": False,
        "group": task.group,
        "healthStatus": task.health,
        "lastStatus": task.last_status,
        "launchType": task.launch_type,
        "overrides": task.overrides,
        "taskArn": task.arn,
        "taskDefinitionArn": task.taskdef.arn,
        "version": task.version,
        **task.at,
    }
    for key in ("cpu", "memory"):
        if key in body:
            rendered[key] = str(body[key])
    if task.launch_type == "FARGATE":
        version = task.platform_version
        rendered["platformVersion"] = "1.4.0" if version in (None, "LATEST") else version
        rendered["platformFamily"] = "Linux"
        rendered["ephemeralStorage"] = {"sizeInGiB": 20}
    if task.started_by is not None:
        rendered["startedBy"] = task.started_by
    if task.stop_code is not None:
        rendered["stopCode"] = task.stop_code
        rendered["stoppedReason"] = task.stopped_reason
    if include_tags:
        rendered["tags"] = tag_list(task.tags)
    return rendered
