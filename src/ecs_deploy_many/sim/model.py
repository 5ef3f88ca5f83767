"""The records the simulator keeps, its error type and its identifiers.

Plain mutable dataclasses: the scheduler and the task lifecycle change them in place and
the renderers turn them into botocore-shaped dicts only when a response is built.
"""

from __future__ import annotations

import base64
import json
import math
import random
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ecs_deploy_many.core.quotas import MAX_TASKS_PER_SERVICE

if TYPE_CHECKING:
    from ecs_deploy_many.sim.fleet import Outcome, Timings

__all__ = [
    "FINISHED_STATUSES",
    "MAX_EVENTS",
    "NAME",
    "PENDING_STATES",
    "Cluster",
    "Deployment",
    "Ids",
    "Revision",
    "Service",
    "ServiceDeployment",
    "SimError",
    "Task",
    "TaskDef",
    "breaker_threshold",
    "check_desired_count",
    "invalid",
    "launch_settings",
    "paginate",
    "tag_list",
    "tags_from",
]

MAX_EVENTS = 100
# Cluster, service and task-definition family names: up to 255 letters, digits, hyphens
# and underscores (ECS API reference, CreateCluster/CreateService/RegisterTaskDefinition).
NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")  # use fullmatch
# What ``paginate`` writes into a nextToken (base64 of ``{"offset": N}``), read back strictly.
_TOKEN = re.compile(rb'\{"offset": (\d{1,10})\}')
PENDING_STATES = frozenset({"PROVISIONING", "PENDING", "ACTIVATING"})
# "Completed: a service deployment has finished (successfully or unsuccessfully)" (the
# developer guide's "View service history using Amazon ECS service deployments").
FINISHED_STATUSES = frozenset({"SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED"})


class SimError(Exception):
    """An ECS error response: ``code`` becomes ``__type``, ``status`` the HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def invalid(message: str) -> SimError:
    return SimError("InvalidParameterException", message)


def check_desired_count(count: int) -> None:
    """Refuse a desired count below 0 or above the tasks-per-service quota.

    The wording of ECS's refusal is not documented [unconfirmed]; the code is
    InvalidParameterException.
    """
    if not 0 <= count <= MAX_TASKS_PER_SERVICE:
        raise invalid(
            f"desiredCount must be between 0 and {MAX_TASKS_PER_SERVICE}, the tasks per "
            "service quota."
        )


def breaker_threshold(desired: int) -> int:
    """Consecutive failed tasks that trip the deployment circuit breaker: 0.5 times the
    desired count, at least 3 and at most 200 (API reference, ServiceDeploymentCircuitBreaker)."""
    return min(200, max(3, math.ceil(0.5 * desired)))


class Ids:
    """Deterministic identifiers: the same seed and calls give the same ids."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        # A generator of its own, so service deployments leave every other id as it was.
        self._history_rng = random.Random(f"service-deployments/{seed}")

    def task_id(self) -> str:
        return f"{self._rng.getrandbits(128):032x}"

    def deployment_id(self) -> str:
        return f"ecs-svc/{self._rng.randrange(10**18, 10**19)}"

    def service_deployment_id(self) -> str:
        """22 URL-safe characters, like ``r9i43YFjvgF_xlg7m2eJ1r`` in ECS's examples."""
        raw = self._history_rng.getrandbits(132).to_bytes(17, "big")
        return base64.urlsafe_b64encode(raw).decode()[:22]

    def uuid(self) -> str:
        h = f"{self._rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def launch_settings(
    platform_version: str | None, network_configuration: dict[str, Any] | None
) -> dict[str, Any]:
    """The Fargate platform and awsvpc network keys a service, deployment or service
    revision shows only when it has them."""
    rendered: dict[str, Any] = {}
    if platform_version is not None:
        rendered["platformVersion"] = platform_version
        rendered["platformFamily"] = "Linux"
    if network_configuration is not None:
        rendered["networkConfiguration"] = network_configuration
    return rendered


def tags_from(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {tag["key"]: tag.get("value", "") for tag in tags or []}


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in tags.items()]


def paginate(
    items: Sequence[Any], params: dict[str, Any], key: str, default_max: int = 100
) -> dict[str, Any]:
    """One page of ``items`` and, when more remain, an opaque ``nextToken``."""
    start = 0
    if token := params.get("nextToken"):
        try:
            offset = _TOKEN.fullmatch(base64.b64decode(token, validate=True))
        except ValueError:  # not base64 (binascii.Error), or not ASCII
            offset = None
        if offset is None:
            raise invalid("Invalid token.")
        start = int(offset[1])
    size = params.get("maxResults") or default_max
    if not 1 <= size <= 100:
        raise invalid("maxResults must be between 1 and 100.")
    page: dict[str, Any] = {key: list(items[start : start + size])}
    if start + size < len(items):
        page["nextToken"] = base64.b64encode(json.dumps({"offset": start + size}).encode()).decode()
    return page


@dataclass(eq=False)
class TaskDef:
    """One registered revision; ``body`` is the DescribeTaskDefinition shape."""

    family: str
    revision: int
    arn: str
    body: dict[str, Any]
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return str(self.body["status"])

    @property
    def containers(self) -> list[dict[str, Any]]:
        return list(self.body["containerDefinitions"])


@dataclass(eq=False)
class Cluster:
    name: str
    arn: str
    region: str
    tags: dict[str, str] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)  # by id, until they expire
    running_tasks: int = 0
    pending_tasks: int = 0
    active_services: int = 0


@dataclass(eq=False)
class Revision:
    """A service revision: what one deployment runs (DescribeServiceRevisions)."""

    arn: str
    service: Service
    taskdef: TaskDef
    created_at: float
    launch_type: str
    platform_version: str | None
    network_configuration: dict[str, Any] | None
    load_balancers: list[dict[str, Any]]
    service_registries: list[dict[str, Any]]


@dataclass(eq=False)
class Deployment:
    id: str
    taskdef: TaskDef
    created_at: float
    launch_type: str
    platform_version: str | None
    network_configuration: dict[str, Any] | None
    status: str = "PRIMARY"
    rollout: str = "IN_PROGRESS"
    reason: str = ""
    updated_at: float = 0.0
    desired: int = 0
    failed_tasks: int = 0
    consecutive_failures: int = 0
    has_run: bool = False  # a task reached RUNNING: the circuit breaker is in stage 2
    is_rollback: bool = False
    stuck_reported: bool = False
    unstable_reported: bool = False
    tasks: dict[str, Task] = field(default_factory=dict)  # not yet STOPPED
    revision: Revision | None = None
    weights: tuple[float, float] | None = None  # (test, production) traffic, strategies only
    # The service deployment this entry carries out: the one it started, or the one it
    # rolls back.
    history: ServiceDeployment | None = None

    def live(self) -> list[Task]:
        """Tasks the scheduler still wants running."""
        return [t for t in self.tasks.values() if t.desired_status == "RUNNING"]

    def counts(self) -> tuple[int, int]:
        """runningCount and pendingCount, as DescribeServices and service revisions show them."""
        tasks = self.tasks.values()
        running = sum(t.last_status == "RUNNING" for t in tasks)
        pending = sum(
            t.last_status in PENDING_STATES and t.desired_status == "RUNNING" for t in tasks
        )
        return running, pending


@dataclass(eq=False)
class Service:
    name: str
    arn: str
    cluster: Cluster
    desired: int
    launch_type: str
    platform_version: str | None
    network_configuration: dict[str, Any] | None
    min_percent: int
    max_percent: int
    breaker: bool
    rollback: bool
    health_check: bool | None  # None: decided by the task definition
    timings: Timings
    created_at: float
    taskdef: TaskDef
    params: dict[str, Any]  # CreateService input echoed back (loadBalancers, ...)
    status: str = "ACTIVE"
    deployments: list[Deployment] = field(default_factory=list)  # PRIMARY first
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_EVENTS))
    tags: dict[str, str] = field(default_factory=dict)
    stable: Deployment | None = None  # the last COMPLETED deployment, for rollbacks
    tasks: dict[str, Task] = field(default_factory=dict)  # by id, until they expire
    controller: str = "ECS"  # deploymentController.type
    # deploymentConfiguration keys beyond the percentages and the breaker, as given
    # (strategy, bakeTimeInMinutes, lifecycleHooks, linearConfiguration, ...).
    settings: dict[str, Any] = field(default_factory=dict)
    revisions: dict[str, Revision] = field(default_factory=dict)  # by ARN digits
    history: dict[str, ServiceDeployment] = field(default_factory=dict)  # by id, oldest first

    @property
    def primary(self) -> Deployment:
        return self.deployments[0]


@dataclass(eq=False)
class ServiceDeployment:
    """One deployment a user started (ListServiceDeployments, DescribeServiceDeployments).

    ``target`` is the ``deployments`` entry it started; a rollback keeps the same service
    deployment and runs in ``rollback_deployment``, a new entry on the source revision.
    """

    id: str
    arn: str
    service: Service
    created_at: float
    target: Deployment
    sources: list[Deployment]
    configuration: dict[str, Any]  # deploymentConfiguration as it was when it started
    status: str = "IN_PROGRESS"
    reason: str | None = None
    updated_at: float = 0.0
    finished_at: float | None = None
    stopped_at: float | None = None
    stage: str | None = None  # lifecycleStage, where the strategy keeps it
    stage_until: float | None = None  # when the current stage's wait ends
    shift: int = 0  # production traffic shifts made, for LINEAR and CANARY steps
    rollback: dict[str, Any] | None = None  # {reason, startedAt, serviceRevisionArn}
    rollback_deployment: Deployment | None = None
    breaker_tripped: bool = False
    triggered_alarms: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


@dataclass(eq=False)
class Task:
    """One task. A fleet holds up to 100,000: CPython shares the keys of instance dicts of
    at most 30 attributes, so a field more would make each task several times larger."""

    id: str
    arn: str
    cluster: Cluster
    taskdef: TaskDef
    created_at: float
    launch_type: str
    platform_version: str | None
    group: str
    started_by: str | None
    outcome: Outcome
    trigger: str | None  # the container whose outcome decides the task's fate
    timings: Timings
    checked: bool  # a container health check decides health
    service: Service | None = None
    deployment: Deployment | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    last_status: str = "PROVISIONING"
    desired_status: str = "RUNNING"
    health: str = "UNKNOWN"
    healthy: bool = False  # the scheduler may count it toward minimumHealthyPercent
    ran: bool = False
    at: dict[str, float] = field(default_factory=dict)  # pullStartedAt, startedAt, ...
    stop_code: str | None = None
    stopped_reason: str | None = None
    container_reason: str | None = None
    exit_codes: dict[str, int] = field(default_factory=dict)
    version: int = 1
    token: int = 0  # bumped on stop so earlier timed events are ignored
