"""How ECS deploys a service: its deployment controller and its deployment strategy.

Only the ECS controller lets UpdateService change a service's task definition: under
CODE_DEPLOY, CodeDeploy shifts traffic between task sets; under EXTERNAL, some other tool
manages task sets. Such a service is refused before anything is registered or changed,
with what to do instead.

Under the ECS controller, ``deploymentConfiguration.strategy`` says how a new revision
replaces the old: ROLLING (the default), or BLUE_GREEN, LINEAR, CANARY, where traffic
shifts between two full sets of tasks and a bake time holds both. The ``deployments``
array judges a rolling update well (``deploy.wait.judge``); for the other strategies, and
wherever deployment alarms can roll a deployment back, the service deployment is the
authority (``deploy.service_deployment``).
"""

from __future__ import annotations

import math
from typing import Any

from ecs_deploy_many.core.errors import ControllerNotSupported

# ECS's defaults for the step waits (API reference, LinearConfiguration and
# CanaryConfiguration).
LINEAR_STEP_PERCENT = 10.0
LINEAR_STEP_BAKE_MINUTES = 6
CANARY_BAKE_MINUTES = 10

__all__ = [
    "controller_of",
    "deployed_by",
    "is_default",
    "judged_by_service_deployment",
    "least_duration",
    "refuse_foreign_controller",
    "strategy_of",
]

_WHAT_TO_DO = {
    "CODE_DEPLOY": (
        "ECS does not let UpdateService change its task definition. Deploy it with AWS "
        "CodeDeploy (a deployment of its CodeDeploy application), or move it to the ECS "
        "deployment controller with native blue/green "
        "(deploymentConfiguration.strategy BLUE_GREEN) and deploy it here"
    ),
    "EXTERNAL": (
        "ECS does not let UpdateService change its task definition: the tool that "
        "manages its task sets deploys it. Deploy it with that tool, or move it to the "
        "ECS deployment controller (deploymentConfiguration.strategy ROLLING or "
        "BLUE_GREEN) and deploy it here"
    ),
}


def controller_of(service: dict[str, Any]) -> str:
    """The service's deployment controller; ECS when ECS names none."""
    return str((service.get("deploymentController") or {}).get("type") or "ECS")


def strategy_of(service: dict[str, Any]) -> str:
    """The service's deployment strategy; ROLLING when ECS names none."""
    return str((service.get("deploymentConfiguration") or {}).get("strategy") or "ROLLING")


def refuse_foreign_controller(service: dict[str, Any]) -> None:
    """Raise ControllerNotSupported unless the ECS controller deploys ``service``."""
    controller = controller_of(service)
    if controller == "ECS":
        return
    what_to_do = _WHAT_TO_DO.get(
        controller, "ECS does not let UpdateService change its task definition"
    )
    raise ControllerNotSupported(
        f"service {service.get('serviceName')} uses the {controller} deployment "
        f"controller: {what_to_do}",
        controller=controller,
    )


def judged_by_service_deployment(service: dict[str, Any]) -> bool:
    """Whether the deployments array cannot judge a deployment of ``service`` alone.

    A strategy other than ROLLING holds both revisions through traffic shifts and a
    bake, which the array does not show; enabled deployment alarms roll back for a
    reason the array does not name. A rolling update without alarms is judged by the
    array, which costs no call beyond the DescribeServices the wait makes anyway.
    """
    config = service.get("deploymentConfiguration") or {}
    alarms = config.get("alarms") or {}
    return strategy_of(service) != "ROLLING" or bool(alarms.get("enable"))


def is_default(service: dict[str, Any]) -> bool:
    """The ECS controller's rolling update without deployment alarms: what every service
    did before ECS had strategies, and what a dry run need not mention."""
    return controller_of(service) == "ECS" and not judged_by_service_deployment(service)


def deployed_by(service: dict[str, Any]) -> str:
    """How ECS deploys ``service``, in a few words: ``ECS controller, BLUE_GREEN, bake
    10m, alarms api-5xx (rollback)``; ``CODE_DEPLOY controller``."""
    controller = controller_of(service)
    if controller != "ECS":
        return f"{controller} controller"
    config = service.get("deploymentConfiguration") or {}
    strategy = strategy_of(service)
    parts = [f"{controller} controller", strategy]
    linear = config.get("linearConfiguration") or {}
    canary = config.get("canaryConfiguration") or {}
    if strategy == "LINEAR" and "stepPercent" in linear:
        parts[-1] += f" {float(linear['stepPercent']):g}%"
        parts[-1] += f" every {linear.get('stepBakeTimeInMinutes', '?')}m"
    if strategy == "CANARY" and "canaryPercent" in canary:
        parts[-1] += f" {float(canary['canaryPercent']):g}%"
        parts[-1] += f" for {canary.get('canaryBakeTimeInMinutes', '?')}m"
    if strategy != "ROLLING" and config.get("bakeTimeInMinutes") is not None:
        parts.append(f"bake {config['bakeTimeInMinutes']}m")
    alarms = config.get("alarms") or {}
    if alarms.get("enable"):
        names = ", ".join(alarms.get("alarmNames") or []) or "none named"
        parts.append(f"alarms {names}{' (rollback)' if alarms.get('rollback') else ''}")
    return ", ".join(parts)


def least_duration(service: dict[str, Any]) -> float:
    """Seconds a deployment of ``service`` waits on purpose, at the least: the bake time of
    a blue/green, linear or canary deployment, and the waits between a linear
    deployment's steps or after a canary's first shift (0 for a rolling update)."""
    config = service.get("deploymentConfiguration") or {}
    strategy = strategy_of(service)
    if controller_of(service) != "ECS" or strategy == "ROLLING":
        return 0.0
    minutes = float(config.get("bakeTimeInMinutes") or 0)
    if strategy == "LINEAR":
        linear = config.get("linearConfiguration") or {}
        step = float(linear.get("stepPercent") or LINEAR_STEP_PERCENT)
        waits = math.ceil(100 / step) - 1  # none after the step that reaches 100 %
        minutes += waits * float(linear.get("stepBakeTimeInMinutes", LINEAR_STEP_BAKE_MINUTES))
    if strategy == "CANARY":
        canary = config.get("canaryConfiguration") or {}
        minutes += float(canary.get("canaryBakeTimeInMinutes", CANARY_BAKE_MINUTES))
    return minutes * 60
