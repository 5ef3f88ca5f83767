"""CreateService, UpdateService, DescribeServices, ListServices and DeleteService."""

from __future__ import annotations

from typing import Any

from ecs_deploy_many.sim.deployments import Scheduler, render_service
from ecs_deploy_many.sim.fleet import Timings
from ecs_deploy_many.sim.model import (
    NAME,
    Service,
    SimError,
    TaskDef,
    check_desired_count,
    invalid,
    paginate,
    tags_from,
)
from ecs_deploy_many.sim.region import Region
from ecs_deploy_many.sim.strategies import check_settings

__all__ = ["ServiceOps"]

# ECS documents a limit of 5 active deployments without naming the exception it raises;
# InvalidParameterException is the conservative guess (a client error, not retried).
MAX_DEPLOYMENTS = 5
MAX_DESCRIBE = 10
TASKDEF_NOT_FOUND = "TaskDefinition not found."
# deploymentConfiguration keys kept as given and echoed back by DescribeServices.
SETTINGS = (
    "strategy",
    "bakeTimeInMinutes",
    "lifecycleHooks",
    "linearConfiguration",
    "canaryConfiguration",
    "alarms",
)
# Checked against the strategy only when given: a strategy change may leave the other be.
STRATEGY_CONFIGURATIONS = ("linearConfiguration", "canaryConfiguration")
# What UpdateService answers when a CODE_DEPLOY service is asked for a new deployment:
# ECS's wording, quoted in many public bug reports. EXTERNAL's follows it [unconfirmed].
CONTROLLER_REFUSALS = {
    "CODE_DEPLOY": (
        "Unable to update task definition on services with a CODE_DEPLOY deployment "
        "controller. Use AWS CodeDeploy to trigger a new deployment."
    ),
    "EXTERNAL": (
        "Unable to update task definition on services with a EXTERNAL deployment "
        "controller. Use task sets to trigger a new deployment."
    ),
}


def usable_taskdef(region: Region, ref: str, params: dict[str, Any]) -> TaskDef:
    """A task definition a service or task may be started from, with its network settings."""
    taskdef = region.taskdefs.resolve(ref, TASKDEF_NOT_FOUND)
    if taskdef.status != "ACTIVE":
        raise SimError("ClientException", "TaskDefinition is inactive")
    if taskdef.body.get("networkMode") == "awsvpc" and not params.get("networkConfiguration"):
        raise invalid(
            "Network Configuration must be provided when networkMode 'awsvpc' is specified."
        )
    return taskdef


def _check_percents(config: dict[str, Any]) -> None:
    """Percentages of the desired count cannot be negative [unconfirmed wording]."""
    for key in ("minimumHealthyPercent", "maximumPercent"):
        if config.get(key, 0) < 0:
            raise invalid(f"deploymentConfiguration.{key} must be 0 or more.")


def platform_version(launch_type: str, requested: str | None) -> str | None:
    return requested or "LATEST" if launch_type == "FARGATE" else None


class ServiceOps:
    """The service half of the API, on top of the deployment scheduler."""

    def __init__(self, scheduler: Scheduler, account_id: str, timings: Timings) -> None:
        self._scheduler = scheduler
        self._account_id = account_id
        self._timings = timings

    def _render(self, service: Service, include_tags: bool = False) -> dict[str, Any]:
        return render_service(service, self._account_id, include_tags)

    def create(
        self,
        region: Region,
        params: dict[str, Any],
        now: float,
        *,
        steady: bool = False,
        health_check: bool | None = None,
        timings: Timings | None = None,
    ) -> dict[str, Any]:
        """A new service; ``steady`` places its tasks RUNNING and healthy at once (fleets)."""
        cluster = region.cluster(params.get("cluster"))
        name = params["serviceName"]
        if not NAME.fullmatch(name):
            # ECS's wording is not documented [unconfirmed]; the rule is the API reference's.
            raise invalid(
                "serviceName can have up to 255 letters (uppercase and lowercase), numbers, "
                "underscores, and hyphens."
            )
        existing = cluster.services.get(name)
        if existing is not None and existing.status != "INACTIVE":
            raise invalid("Creation of service was not idempotent.")
        if "taskDefinition" not in params:
            raise invalid("TaskDefinition must be specified.")
        if params.get("desiredCount") is None:
            raise invalid("desiredCount must be specified for the REPLICA scheduling strategy.")
        check_desired_count(params["desiredCount"])
        config = params.get("deploymentConfiguration", {})
        _check_percents(config)
        taskdef = usable_taskdef(region, params["taskDefinition"], params)
        launch_type = params.get("launchType", "EC2")
        breaker = config.get("deploymentCircuitBreaker", {})
        controller = params.get("deploymentController", {}).get("type", "ECS")
        settings = {key: config[key] for key in SETTINGS if key in config}
        check_settings(settings, controller)
        service = Service(
            name=name,
            arn=region.arn(f"service/{cluster.name}/{name}"),
            cluster=cluster,
            desired=params["desiredCount"],
            launch_type=launch_type,
            platform_version=platform_version(launch_type, params.get("platformVersion")),
            network_configuration=params.get("networkConfiguration"),
            min_percent=config.get("minimumHealthyPercent", 100),
            max_percent=config.get("maximumPercent", 200),
            breaker=breaker.get("enable", False),
            rollback=breaker.get("rollback", False),
            health_check=health_check,
            timings=timings or self._timings,
            created_at=now,
            taskdef=taskdef,
            params=params,
            tags=tags_from(params.get("tags")),
            controller=controller,
            settings=settings,
        )
        cluster.services.pop(name, None)  # an INACTIVE service of that name is replaced
        cluster.services[name] = service
        cluster.active_services += 1
        deployment = self._scheduler.start_deployment(service, taskdef, now, staged=not steady)
        if steady:
            self._scheduler.start_tasks(service, deployment, service.desired, now, running=True)
        self._scheduler.reconcile(service, now)
        return {"service": self._render(service)}

    def update(self, region: Region, params: dict[str, Any], now: float) -> dict[str, Any]:
        cluster = region.cluster(params.get("cluster"))
        service = region.service(cluster, params["service"])
        if service.status != "ACTIVE":
            raise SimError("ServiceNotActiveException", "Service was not ACTIVE.")
        if "desiredCount" in params:
            check_desired_count(params["desiredCount"])
        config = params.get("deploymentConfiguration", {})
        _check_percents(config)
        given = {key: config[key] for key in SETTINGS if key in config}
        kept = {k: v for k, v in service.settings.items() if k not in STRATEGY_CONFIGURATIONS}
        check_settings({**kept, **given}, service.controller)
        network = params.get("networkConfiguration", service.network_configuration)
        taskdef = service.taskdef
        if "taskDefinition" in params:
            taskdef = usable_taskdef(
                region, params["taskDefinition"], {"networkConfiguration": network}
            )
        version = platform_version(
            service.launch_type, params.get("platformVersion", service.platform_version)
        )
        redeploy = (
            taskdef is not service.taskdef
            or params.get("forceNewDeployment", False)
            or network != service.network_configuration
            or version != service.platform_version
        )
        if redeploy and service.controller in CONTROLLER_REFUSALS:
            raise invalid(CONTROLLER_REFUSALS[service.controller])
        if redeploy and len(service.deployments) >= MAX_DEPLOYMENTS:
            raise invalid(
                f"{MAX_DEPLOYMENTS} active deployments exist, unable to create new deployment."
            )
        self._configure(service, params)
        service.network_configuration, service.platform_version = network, version
        if redeploy:
            self._scheduler.start_deployment(service, taskdef, now)
        self._scheduler.reconcile(service, now)
        return {"service": self._render(service)}

    @staticmethod
    def _configure(service: Service, params: dict[str, Any]) -> None:
        """Apply desiredCount and the deploymentConfiguration keys that were given."""
        service.desired = params.get("desiredCount", service.desired)
        config = params.get("deploymentConfiguration", {})
        service.min_percent = config.get("minimumHealthyPercent", service.min_percent)
        service.max_percent = config.get("maximumPercent", service.max_percent)
        breaker = config.get("deploymentCircuitBreaker", {})
        service.breaker = breaker.get("enable", service.breaker)
        service.rollback = breaker.get("rollback", service.rollback)
        service.settings.update((key, config[key]) for key in SETTINGS if key in config)
        for key in ("healthCheckGracePeriodSeconds", "enableExecuteCommand", "propagateTags"):
            if key in params:
                service.params[key] = params[key]

    def describe(self, region: Region, params: dict[str, Any]) -> dict[str, Any]:
        cluster = region.cluster(params.get("cluster"))
        refs = params["services"]
        if not refs:
            raise invalid("Services cannot be empty.")
        if len(refs) > MAX_DESCRIBE:
            raise invalid(f"services can have at most {MAX_DESCRIBE} items.")
        include_tags = "TAGS" in params.get("include", [])
        services, failures = [], []
        for ref in refs:
            service = region.find_service(cluster, ref)
            if service is None:
                arn = ref if ref.startswith("arn:") else f"{cluster.arn}/{ref}"
                failures.append(
                    {"arn": arn.replace(":cluster/", ":service/", 1), "reason": "MISSING"}
                )
            else:
                services.append(self._render(service, include_tags))
        return {"services": services, "failures": failures}

    def list(self, region: Region, params: dict[str, Any]) -> dict[str, Any]:
        cluster = region.cluster(params.get("cluster"))
        launch_type = params.get("launchType")
        arns = [
            s.arn
            for s in cluster.services.values()
            if s.status != "INACTIVE" and launch_type in (None, s.launch_type)
        ]
        return paginate(arns, params, "serviceArns", default_max=10)

    def delete(self, region: Region, params: dict[str, Any], now: float) -> dict[str, Any]:
        cluster = region.cluster(params.get("cluster"))
        service = region.service(cluster, params["service"])
        if service.status == "ACTIVE":
            if service.desired > 0 and not params.get("force", False):
                raise invalid("The service cannot be stopped while it is scaled above 0.")
            service.status = "DRAINING"
            service.desired = 0
            self._scheduler.end_history(service, now, "The service was deleted.")
            cluster.active_services -= 1
            self._scheduler.reconcile(service, now)
        return {"service": self._render(service)}
