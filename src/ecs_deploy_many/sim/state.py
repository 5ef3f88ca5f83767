"""The ECS control plane the simulator serves: one object, one entry point, ``handle``.

Time is lazy. Nothing runs between requests; each request first replays every timed event
due up to the clock's now, in time order and each at its own timestamp, re-running the
scheduler of the one service the event touched. Then it runs the operation. Work therefore
follows what changes (tasks starting and stopping), never the size of what is stored.

Every account and region is its own namespace. Identifiers come from one seeded random
generator, so a run with the same seed and requests gives the same ids.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from ecs_deploy_many.core.clock import Clock
from ecs_deploy_many.sim.deployments import Scheduler
from ecs_deploy_many.sim.fleet import Fleet, ServiceSpec
from ecs_deploy_many.sim.history import HistoryOps
from ecs_deploy_many.sim.model import (
    NAME,
    Cluster,
    Ids,
    Service,
    SimError,
    Task,
    TaskDef,
    invalid,
    paginate,
    tag_list,
    tags_from,
)
from ecs_deploy_many.sim.region import DEFAULT_CLUSTER, Region
from ecs_deploy_many.sim.service_ops import ServiceOps
from ecs_deploy_many.sim.task_ops import TaskOps
from ecs_deploy_many.sim.tasks import Lifecycle

__all__ = ["SimError", "SimState"]

# Fleet services on awsvpc task definitions need a network configuration, as in ECS.
FLEET_NETWORK = {
    "awsvpcConfiguration": {"subnets": ["subnet-00000000000000000"], "assignPublicIp": "DISABLED"}
}
# "Maximum number of tags per resource – 50" (ECS's tagging restrictions); the refusal's
# wording is [unconfirmed]. A single call's list is bounded by the model, this by the total.
MAX_TAGS = 50
# DescribeClusters takes "a list of up to 100 cluster names or full cluster ARN entries".
MAX_DESCRIBE_CLUSTERS = 100
_RESOURCE_ARN = re.compile(
    r"^arn:aws:ecs:([\w-]+):(\d{12}):(cluster|service|task|task-definition)/(.+)$"
)

Handler = Callable[[Region, dict[str, Any]], dict[str, Any]]


class SimState:
    """Clusters, task definitions, services and tasks of one account, in every region."""

    OPERATIONS: frozenset[str] = frozenset(
        {
            "CreateCluster",
            "DescribeClusters",
            "ListClusters",
            "RegisterTaskDefinition",
            "DescribeTaskDefinition",
            "DeregisterTaskDefinition",
            "ListTaskDefinitions",
            "ListTaskDefinitionFamilies",
            "CreateService",
            "UpdateService",
            "DescribeServices",
            "ListServices",
            "DeleteService",
            "ListServiceDeployments",
            "DescribeServiceDeployments",
            "StopServiceDeployment",
            "DescribeServiceRevisions",
            "RunTask",
            "StopTask",
            "DescribeTasks",
            "ListTasks",
            "TagResource",
            "UntagResource",
            "ListTagsForResource",
        }
    )

    def __init__(self, clock: Clock, fleet: Fleet | None = None, *, seed: int = 0) -> None:
        self.fleet = fleet or Fleet()
        self.account_id = self.fleet.account_id
        self._clock = clock
        self._now = clock.now()
        self._regions: dict[str, Region] = {}
        ids = Ids(seed)
        self._lifecycle = Lifecycle(self.fleet, ids)
        self._scheduler = Scheduler(self._lifecycle, ids)
        self._services = ServiceOps(self._scheduler, self.account_id, self.fleet.timings)
        self._history = HistoryOps(self._scheduler)
        self._tasks = TaskOps(self._lifecycle, self._scheduler, self.fleet.timings)
        self._handlers: dict[str, Handler] = {
            "CreateCluster": self._create_cluster,
            "DescribeClusters": self._describe_clusters,
            "ListClusters": self._list_clusters,
            "RegisterTaskDefinition": self._register_task_definition,
            "DescribeTaskDefinition": lambda r, p: r.taskdefs.describe(p),
            "DeregisterTaskDefinition": lambda r, p: r.taskdefs.deregister(p, self._now),
            "ListTaskDefinitions": lambda r, p: r.taskdefs.list_arns(p),
            "ListTaskDefinitionFamilies": lambda r, p: r.taskdefs.list_families(p),
            "CreateService": lambda r, p: self._services.create(r, p, self._now),
            "UpdateService": lambda r, p: self._services.update(r, p, self._now),
            "DescribeServices": self._services.describe,
            "ListServices": self._services.list,
            "DeleteService": lambda r, p: self._services.delete(r, p, self._now),
            "ListServiceDeployments": self._history.list,
            "DescribeServiceDeployments": self._history.describe,
            "StopServiceDeployment": lambda r, p: self._history.stop(r, p, self._now),
            "DescribeServiceRevisions": self._history.describe_revisions,
            "RunTask": lambda r, p: self._tasks.run(r, p, self._now),
            "StopTask": lambda r, p: self._tasks.stop(r, p, self._now),
            "DescribeTasks": self._tasks.describe,
            "ListTasks": self._tasks.list,
            "TagResource": self._tag_resource,
            "UntagResource": self._untag_resource,
            "ListTagsForResource": lambda r, p: {"tags": tag_list(self._tagged(r, p).tags)},
        }
        assert self._handlers.keys() == self.OPERATIONS
        self._load(self.fleet)

    # the entry point --------------------------------------------------------------------

    def handle(self, operation: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        """Bring the model to the clock's now, then run one ECS operation."""
        handler = self._handlers.get(operation)
        if handler is None:
            raise SimError(
                "UnknownOperationException", f"The simulator does not support {operation}."
            )
        self.advance(self._clock.now())
        return handler(self._region(region), params)

    def advance(self, until: float) -> None:
        """Apply every timed event due by ``until``, each at its own time.

        Events falling at the same instant are applied together before the services they
        touched are reconciled, so two tasks turning healthy at once make one move, as in ECS.
        A service's own wake (a deployment stage's wait ending) reconciles it the same way.
        """
        while (when := self._next_due(until)) is not None:
            self._now = max(self._now, when)
            touched: dict[int, Service] = {}
            while (due := self._lifecycle.pop_due(when)) is not None:
                _, task, change = due
                if task.service is not None:
                    self._scheduler.on_task_changed(task, change, when)
                    touched[id(task.service)] = task.service
            for service in self._scheduler.pop_wakes(when):
                touched[id(service)] = service
            for service in touched.values():
                self._scheduler.reconcile(service, when)
        self._now = max(self._now, until)

    def _next_due(self, until: float) -> float | None:
        """The time of the earliest task event or service wake due by ``until``."""
        task_event, wake = self._lifecycle.next_time(), self._scheduler.next_wake()
        when = (
            task_event if wake is None or (task_event is not None and task_event < wake) else wake
        )
        return when if when is not None and when <= until else None

    def statistics(self) -> dict[str, int]:
        """Counters for benchmarks and tests: how much work the model has done."""
        return {
            "events_processed": self._lifecycle.processed,
            "events_scheduled": self._lifecycle.pending_events(),
        }

    def _region(self, name: str) -> Region:
        if (region := self._regions.get(name)) is None:
            region = self._regions[name] = Region(name, self.account_id)
        return region

    # the fleet --------------------------------------------------------------------------

    def _load(self, fleet: Fleet) -> None:
        """Register the fleet's task definitions in each of its regions; create its services."""
        regions = {fleet.region, *(c.region or fleet.region for c in fleet.clusters)}
        for name in sorted(regions):
            region = self._region(name)
            for family, revisions in fleet.task_definitions.items():
                for body in revisions.revisions:
                    region.taskdefs.register({**body, "family": family}, self._now)
        # The fleet's own validation holds every rule CreateService checks: nothing fails here.
        for spec in fleet.clusters:
            region = self._region(spec.region or fleet.region)
            self._create_cluster(region, {"clusterName": spec.name})
            for service in spec.services:
                self._load_service(region, spec.name, service)

    def _load_service(self, region: Region, cluster: str, spec: ServiceSpec) -> None:
        """CreateService for a fleet service: steady at once when its image is ``ok``."""
        taskdef = region.taskdefs.resolve(spec.task_definition)
        params: dict[str, Any] = {
            "cluster": cluster,
            "serviceName": spec.name,
            "taskDefinition": taskdef.arn,
            "desiredCount": spec.desired_count,
            "launchType": spec.launch_type,
            "deploymentConfiguration": spec.deployment_configuration(),
            "deploymentController": {"type": spec.deployment_controller},
        }
        if taskdef.body.get("networkMode") == "awsvpc":
            params["networkConfiguration"] = FLEET_NETWORK
        outcome, _ = self._lifecycle.outcome_of(taskdef)
        self._services.create(
            region,
            params,
            self._now,
            steady=outcome.kind == "ok",
            health_check=spec.health_check,
            timings=self.fleet.timings_for(spec),
        )

    # clusters ---------------------------------------------------------------------------

    def _create_cluster(self, region: Region, params: dict[str, Any]) -> dict[str, Any]:
        """Idempotent, like ECS: creating an existing cluster returns it."""
        name = params.get("clusterName") or DEFAULT_CLUSTER
        if not NAME.fullmatch(name):
            # ECS's wording is not documented [unconfirmed]; the rule is the API reference's.
            raise invalid(
                "clusterName can have up to 255 letters (uppercase and lowercase), numbers, "
                "underscores, and hyphens."
            )
        cluster = region.clusters.get(name)
        if cluster is None:
            cluster = Cluster(name, region.arn(f"cluster/{name}"), region.name)
            cluster.tags = tags_from(params.get("tags"))
            region.clusters[name] = cluster
        return {"cluster": _render_cluster(cluster, include_tags=True)}

    def _describe_clusters(self, region: Region, params: dict[str, Any]) -> dict[str, Any]:
        include_tags = "TAGS" in params.get("include", [])
        refs = params.get("clusters") or [DEFAULT_CLUSTER]
        if len(refs) > MAX_DESCRIBE_CLUSTERS:
            raise invalid(f"clusters can have at most {MAX_DESCRIBE_CLUSTERS} items.")
        clusters, failures = [], []
        for ref in refs:
            cluster = region.find_cluster(ref)
            if cluster is None:
                arn = ref if ref.startswith("arn:") else region.arn(f"cluster/{ref}")
                failures.append({"arn": arn, "reason": "MISSING"})
            else:
                clusters.append(_render_cluster(cluster, include_tags))
        return {"clusters": clusters, "failures": failures}

    def _list_clusters(self, region: Region, params: dict[str, Any]) -> dict[str, Any]:
        return paginate([c.arn for c in region.clusters.values()], params, "clusterArns")

    # task definitions -------------------------------------------------------------------

    def _register_task_definition(self, region: Region, params: dict[str, Any]) -> dict[str, Any]:
        taskdef = region.taskdefs.register(params, self._now)
        response: dict[str, Any] = {"taskDefinition": copy.deepcopy(taskdef.body)}
        if taskdef.tags:
            response["tags"] = tag_list(taskdef.tags)
        return response

    # tags -------------------------------------------------------------------------------

    def _tagged(self, region: Region, params: dict[str, Any]) -> Cluster | Service | Task | TaskDef:
        """The resource an ARN names, in this region and account."""
        arn = params["resourceArn"]
        match = _RESOURCE_ARN.match(arn)
        if match is None or match.group(1) != region.name or match.group(2) != self.account_id:
            raise invalid("The ARN provided is invalid.")
        kind, path = match.group(3), match.group(4)
        found: Cluster | Service | Task | TaskDef | None
        if kind == "task-definition":
            found = region.taskdefs.find(arn)
        elif kind == "cluster":
            found = region.cluster(path)
        else:
            cluster_name, _, name = path.partition("/")
            cluster = region.cluster(cluster_name)
            found = (
                region.service(cluster, name)
                if kind == "service"
                else region.find_task(cluster, name)
            )
        if found is None:
            raise SimError(
                "ResourceNotFoundException", "The specified resource could not be found."
            )
        return found

    def _tag_resource(self, region: Region, params: dict[str, Any]) -> dict[str, Any]:
        """Add or replace tags; a resource holds at most 50, as ECS documents for tagging."""
        tags = self._tagged(region, params).tags
        merged = {**tags, **tags_from(params["tags"])}
        if len(merged) > MAX_TAGS:
            raise invalid(f"A resource can have at most {MAX_TAGS} tags.")
        tags.update(merged)
        return {}

    def _untag_resource(self, region: Region, params: dict[str, Any]) -> dict[str, Any]:
        tags = self._tagged(region, params).tags
        for key in params["tagKeys"]:
            tags.pop(key, None)
        return {}


def _render_cluster(cluster: Cluster, include_tags: bool) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "clusterArn": cluster.arn,
        "clusterName": cluster.name,
        "status": "ACTIVE",
        "registeredContainerInstancesCount": 0,
        "runningTasksCount": cluster.running_tasks,
        "pendingTasksCount": cluster.pending_tasks,
        "activeServicesCount": cluster.active_services,
        "statistics": [],
        "settings": [{"name": "containerInsights", "value": "disabled"}],
        "capacityProviders": [],
        "defaultCapacityProviderStrategy": [],
    }
    if include_tags:
        rendered["tags"] = tag_list(cluster.tags)
    return rendered
