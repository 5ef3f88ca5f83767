"""Service deployments and service revisions: ECS's record of what each deployment did.

ECS "automatically creates a new service deployment when a user creates a service,
updates a service and uses the force new deployment option, or updates one or more
service properties that require a deployment"; a service deployment names its source
and target service revisions, its status, the circuit breaker's failure count, the
alarms in ALARM and the details of a rollback. Completed states are SUCCESSFUL,
STOPPED, ROLLBACK_SUCCESSFUL and ROLLBACK_FAILED; StopServiceDeployment with stopType
ROLLBACK works on an ongoing deployment "even if you didn't configure the service
deployment for the rollback option". ListServiceDeployments answers 20 results a page
unless maxResults (1 to 100) says otherwise; the describes take at most 20 ARNs.
Sources: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-deployment.html,
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stop-service-deployment.html,
https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeployment.html and
botocore's ECS model (ListServiceDeployments, DescribeServiceDeployments,
DescribeServiceRevisions).

Simulator choices [unconfirmed]: a service deployment is IN_PROGRESS from the moment it
is created (PENDING, ROLLBACK_REQUESTED and STOP_REQUESTED pass in no time); a rollback
keeps the service deployment (ROLLBACK_IN_PROGRESS, then ROLLBACK_SUCCESSFUL or
ROLLBACK_FAILED) while the ``deployments`` array shows it as a new PRIMARY on the old
revision; a deployment replaced by a newer one before it finished ends STOPPED, naming
the newer one; a failure without rollback ends STOPPED (the API reference's stoppedAt:
"the rollback option is not in use for the failure detection mechanism ... and the
service fails"); only services under the ECS deployment controller record them; history
is kept for the service's life (ECS keeps 90 days and deletes it with the service). A
service revision's ARN ends in the digits of the ``ecs-svc`` deployment that created it;
a rollback runs the revision it returns to, so it makes none.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ecs_deploy_many.sim.model import (
    Deployment,
    Revision,
    Service,
    ServiceDeployment,
    SimError,
    breaker_threshold,
    invalid,
    launch_settings,
    paginate,
)
from ecs_deploy_many.sim.region import Region

if TYPE_CHECKING:
    from ecs_deploy_many.sim.deployments import Scheduler

__all__ = [
    "HistoryOps",
    "finish",
    "new_revision",
    "open_service_deployment",
    "render_revision",
    "render_service_deployment",
]

MAX_DESCRIBE = 20
LIST_PAGE = 20
ROLLBACK_STATUSES = frozenset({"ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"})
# StopServiceDeployment's wording is not documented [unconfirmed]; the codes are the ones
# its API reference lists (ServiceDeploymentNotFoundException, ConflictException).
STOP_REASON = "Service deployment stopped by StopServiceDeployment: rolling back."
_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")


def new_revision(service: Service, deployment: Deployment, now: float) -> Revision:
    """The service revision a deployment runs, named after the deployment's digits."""
    digits = deployment.id.removeprefix("ecs-svc/")
    revision = Revision(
        arn=f"{service.arn.replace(':service/', ':service-revision/', 1)}/{digits}",
        service=service,
        taskdef=deployment.taskdef,
        created_at=now,
        launch_type=deployment.launch_type,
        platform_version=deployment.platform_version,
        network_configuration=deployment.network_configuration,
        load_balancers=list(service.params.get("loadBalancers", [])),
        service_registries=list(service.params.get("serviceRegistries", [])),
    )
    service.revisions[digits] = revision
    deployment.revision = revision
    return revision


def open_service_deployment(
    service: Service,
    deployment: Deployment,
    ident: str,
    configuration: dict[str, Any],
    now: float,
) -> ServiceDeployment:
    """Record a deployment the user started; the one still running before it is STOPPED."""
    record = ServiceDeployment(
        id=ident,
        arn=f"{service.arn.replace(':service/', ':service-deployment/', 1)}/{ident}",
        service=service,
        created_at=deployment.created_at,
        target=deployment,
        sources=[d for d in service.deployments if d is not deployment],
        configuration=configuration,
        updated_at=now,
    )
    previous = next(reversed(service.history.values()), None)
    if previous is not None and not previous.finished:
        finish(previous, "STOPPED", now, f"Replaced by service deployment {record.arn}.")
    service.history[ident] = record
    deployment.history = record
    return record


def finish(record: ServiceDeployment, status: str, now: float, reason: str | None = None) -> None:
    """A completed state; the lifecycle stage stays where the deployment ended."""
    record.stage = stage_of(record)
    record.status = status
    if reason is not None:
        record.reason = reason
    record.finished_at = record.updated_at = now
    if status == "STOPPED":
        record.stopped_at = now


def begin_rollback(
    record: ServiceDeployment, rollback: Deployment, reason: str, now: float
) -> None:
    """The same service deployment now returns to its source revision through ``rollback``."""
    record.status = "ROLLBACK_IN_PROGRESS"
    record.reason = reason
    record.updated_at = now
    record.rollback_deployment = rollback
    rollback.history = record
    record.rollback = {
        "reason": reason,
        "startedAt": now,
        "serviceRevisionArn": rollback.revision.arn if rollback.revision else "",
    }


def stage_of(record: ServiceDeployment) -> str:
    """The lifecycle stage: a strategy keeps its own; a rolling update is in SCALE_UP while
    its tasks start and in CLEAN_UP while old ones drain (a simulator choice [unconfirmed])."""
    if record.stage is not None:
        return record.stage
    active = record.rollback_deployment or record.target
    ours = active.live()
    settled = len(ours) >= active.desired and all(t.healthy for t in ours)
    return "CLEAN_UP" if settled else "SCALE_UP"


# rendering ------------------------------------------------------------------------------


def _summary(deployment: Deployment, weights: tuple[float, float] | None = None) -> dict[str, Any]:
    running, pending = deployment.counts()
    summary: dict[str, Any] = {
        "arn": deployment.revision.arn if deployment.revision else "",
        "requestedTaskCount": deployment.desired,
        "runningTaskCount": running,
        "pendingTaskCount": pending,
    }
    if weights is not None:
        test, production = weights
        summary["requestedTestTrafficWeight"] = test
        summary["requestedProductionTrafficWeight"] = production
    return summary


def _monitor_status(enabled: bool, triggered: bool, record: ServiceDeployment) -> str:
    if not enabled:
        return "DISABLED"
    if triggered:
        return "TRIGGERED"
    return "MONITORING_COMPLETE" if record.finished else "MONITORING"


def render_service_deployment(record: ServiceDeployment) -> dict[str, Any]:
    """The DescribeServiceDeployments shape."""
    service, target = record.service, record.target
    configuration = record.configuration
    breaker = configuration.get("deploymentCircuitBreaker", {})
    alarms = configuration.get("alarms") or {}
    # What green does not take of the traffic, blue keeps (a strategy's deployments only).
    blue = (
        None if target.weights is None else (100.0 - target.weights[0], 100.0 - target.weights[1])
    )
    updated = [record.updated_at, target.updated_at]
    if record.rollback_deployment is not None:
        updated.append(record.rollback_deployment.updated_at)
    rendered: dict[str, Any] = {
        "serviceDeploymentArn": record.arn,
        "serviceArn": service.arn,
        "clusterArn": service.cluster.arn,
        "createdAt": record.created_at,
        "startedAt": record.created_at,
        "updatedAt": max(updated) if not record.finished else record.updated_at,
        "sourceServiceRevisions": [_summary(d, blue) for d in record.sources],
        "targetServiceRevision": _summary(target, target.weights),
        "status": record.status,
        "lifecycleStage": stage_of(record),
        "deploymentConfiguration": configuration,
        "deploymentCircuitBreaker": {
            "status": _monitor_status(bool(breaker.get("enable")), record.breaker_tripped, record),
            "failureCount": target.failed_tasks,
            "threshold": breaker_threshold(target.desired),
        },
        "alarms": {
            "status": _monitor_status(
                bool(alarms.get("enable")), bool(record.triggered_alarms), record
            ),
            "alarmNames": list(alarms.get("alarmNames", [])),
            "triggeredAlarmNames": list(record.triggered_alarms),
        },
    }
    if record.reason is not None:
        rendered["statusReason"] = record.reason
    if record.finished_at is not None:
        rendered["finishedAt"] = record.finished_at
    if record.stopped_at is not None:
        rendered["stoppedAt"] = record.stopped_at
    if record.rollback is not None:
        rendered["rollback"] = dict(record.rollback)
    return rendered


def _brief(record: ServiceDeployment) -> dict[str, Any]:
    brief: dict[str, Any] = {
        "serviceDeploymentArn": record.arn,
        "serviceArn": record.service.arn,
        "clusterArn": record.service.cluster.arn,
        "startedAt": record.created_at,
        "createdAt": record.created_at,
        "targetServiceRevisionArn": record.target.revision.arn if record.target.revision else "",
        "status": record.status,
    }
    if record.finished_at is not None:
        brief["finishedAt"] = record.finished_at
    if record.reason is not None:
        brief["statusReason"] = record.reason
    return brief


def render_revision(revision: Revision) -> dict[str, Any]:
    """The DescribeServiceRevisions shape."""
    images = []
    for container in revision.taskdef.containers:
        image: dict[str, Any] = {"containerName": container["name"], "image": container["image"]}
        # ECS resolves tags to digests; the simulator serves no registry, so only an image
        # named by digest shows one [unconfirmed].
        if digest := _DIGEST.search(container["image"]):
            image["imageDigest"] = digest[1]
        images.append(image)
    rendered: dict[str, Any] = {
        "serviceRevisionArn": revision.arn,
        "serviceArn": revision.service.arn,
        "clusterArn": revision.service.cluster.arn,
        "taskDefinition": revision.taskdef.arn,
        "launchType": revision.launch_type,
        "loadBalancers": revision.load_balancers,
        "serviceRegistries": revision.service_registries,
        "containerImages": images,
        "guardDutyEnabled": False,
        "createdAt": revision.created_at,
    }
    return rendered | launch_settings(revision.platform_version, revision.network_configuration)


# the API --------------------------------------------------------------------------------


def _service_of(region: Region, arn: str, kind: str) -> tuple[Service, str] | None:
    """The ACTIVE or DRAINING service an ARN of ``kind`` names, and the ARN's last part."""
    prefix = region.arn(f"{kind}/")
    if not arn.startswith(prefix):
        return None
    parts = arn.removeprefix(prefix).split("/")
    if len(parts) != 3:
        return None
    cluster = region.find_cluster(parts[0])
    service = cluster.services.get(parts[1]) if cluster is not None else None
    if service is None or service.status == "INACTIVE":
        return None
    return service, parts[2]


def _checked_arns(params: dict[str, Any], key: str) -> list[str]:
    arns: list[str] = params[key]
    if not arns:
        raise invalid(f"{key} cannot be empty.")
    if len(arns) > MAX_DESCRIBE:
        raise invalid(f"{key} can have at most {MAX_DESCRIBE} items.")
    return arns


class HistoryOps:
    """ListServiceDeployments, DescribeServiceDeployments, StopServiceDeployment and
    DescribeServiceRevisions."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    @staticmethod
    def find(region: Region, arn: str) -> ServiceDeployment | None:
        found = _service_of(region, arn, "service-deployment")
        return found[0].history.get(found[1]) if found is not None else None

    def list(self, region: Region, params: dict[str, Any]) -> dict[str, Any]:
        """Newest first [unconfirmed: ECS documents no order], filtered by status and by
        createdAt (both bounds inclusive [unconfirmed])."""
        cluster = region.cluster(params.get("cluster"))
        service = region.service(cluster, params["service"])
        statuses = set(params.get("status") or ())
        created = params.get("createdAt") or {}
        after, before = created.get("after"), created.get("before")
        picked = [
            _brief(record)
            for record in reversed(service.history.values())
            if (not statuses or record.status in statuses)
            and (after is None or record.created_at >= after)
            and (before is None or record.created_at <= before)
        ]
        return paginate(picked, params, "serviceDeployments", default_max=LIST_PAGE)

    def describe(self, region: Region, params: dict[str, Any]) -> dict[str, Any]:
        found, failures = [], []
        for arn in _checked_arns(params, "serviceDeploymentArns"):
            record = self.find(region, arn)
            if record is None:
                failures.append({"arn": arn, "reason": "MISSING"})
            else:
                found.append(render_service_deployment(record))
        return {"serviceDeployments": found, "failures": failures}

    def describe_revisions(self, region: Region, params: dict[str, Any]) -> dict[str, Any]:
        found, failures = [], []
        for arn in _checked_arns(params, "serviceRevisionArns"):
            where = _service_of(region, arn, "service-revision")
            revision = where[0].revisions.get(where[1]) if where is not None else None
            if revision is None:
                failures.append({"arn": arn, "reason": "MISSING"})
            else:
                found.append(render_revision(revision))
        return {"serviceRevisions": found, "failures": failures}

    def stop(self, region: Region, params: dict[str, Any], now: float) -> dict[str, Any]:
        """ROLLBACK: back to the last completed revision, with or without rollback
        configured. A deployment already rolling back goes on; a finished one is a
        ConflictException."""
        arn = params["serviceDeploymentArn"]
        record = self.find(region, arn)
        if record is None:
            raise SimError(
                "ServiceDeploymentNotFoundException", f"Service deployment {arn} not found."
            )
        if params.get("stopType", "ROLLBACK") != "ROLLBACK":
            raise invalid("The simulator supports stopType ROLLBACK only.")
        if record.finished:
            raise SimError(
                "ConflictException",
                f"Service deployment {arn} is {record.status}: only an ongoing service "
                "deployment can be stopped.",
            )
        if record.status not in ROLLBACK_STATUSES:
            service = record.service
            if service.stable is None:
                raise SimError(
                    "ConflictException",
                    f"Service deployment {arn} has no previous service revision to roll back to.",
                )
            self._scheduler.stop_and_roll_back(service, record, now)
        return {"serviceDeploymentArn": record.arn}
