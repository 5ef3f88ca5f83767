"""ECS's service deployments: finding ours, and judging it.

Every deployment a user starts (an UpdateService that deploys) is one service
deployment; an ECS rollback (circuit breaker, alarm, StopServiceDeployment) is not a new
one: the same one goes ROLLBACK_IN_PROGRESS, then ROLLBACK_SUCCESSFUL or ROLLBACK_FAILED.
ECS does not document how a service deployment's ARN relates to the ``deployments``
array's id, so ours is found by what it deploys: ListServiceDeployments from just
before our deployment's createdAt, then the newest whose target service revision
(DescribeServiceRevisions) runs the task definition we deployed.

``deploy.wait.judge_service_deployment`` gives the verdict; this module says why ECS
rolled back (``rollback_reason``), how a stage reads (``stage_text``), and when ECS holds
a deployment on purpose (``holds_on_purpose``), which is no stall.
"""

from __future__ import annotations

import math
from typing import Any

import anyio

from ecs_deploy_many.aws.gateway import Gateway
from ecs_deploy_many.aws.watch import ServiceRevisionWatcher

__all__ = [
    "ROLLBACK_GOING",
    "alarm_reason",
    "find_service_deployment",
    "holds_on_purpose",
    "rollback_reason",
    "stage_text",
]

ROLLBACK_GOING = frozenset({"ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"})
CREATED_SLACK = 1.0
"""Seconds before our deployment's createdAt the listing starts: clocks round."""


async def find_service_deployment(
    gateway: Gateway,
    revisions: ServiceRevisionWatcher,
    cluster: str,
    service: str,
    *,
    created_at: float,
    task_definition: str,
) -> dict[str, Any] | None:
    """The service deployment (as ListServiceDeployments briefs it) that deploys
    ``task_definition`` to ``service``, created from ``created_at`` on; the newest when
    there are several; None when ECS lists none. Its target revision is described with
    other targets' (``revisions``)."""
    briefs = await gateway.list_service_deployments(
        cluster, service, created_after=created_at - CREATED_SLACK
    )
    briefs = sorted(
        (b for b in briefs if b.get("createdAt") and b.get("targetServiceRevisionArn")),
        key=lambda brief: brief["createdAt"],
        reverse=True,
    )
    described: dict[str, dict[str, Any] | None] = {}

    async def describe(arn: str) -> None:
        described[arn] = await revisions.describe(arn)

    async with anyio.create_task_group() as group:
        for arn in dict.fromkeys(brief["targetServiceRevisionArn"] for brief in briefs):
            group.start_soon(describe, arn)
    for brief in briefs:
        revision = described.get(brief["targetServiceRevisionArn"])
        if revision and _same_revision(str(revision.get("taskDefinition", "")), task_definition):
            return brief
    return None


def _same_revision(described: str, wanted: str) -> bool:
    """An ARN against an ARN or a ``family:N`` name."""
    return described == wanted or described.endswith(f"/{wanted}")


def alarm_reason(service_deployment: dict[str, Any]) -> str | None:
    """``alarm NAME in ALARM`` (or ``alarms A, B in ALARM``) from the alarms ECS reports
    triggered; None when none is."""
    names = list((service_deployment.get("alarms") or {}).get("triggeredAlarmNames") or [])
    if not names:
        return None
    return f"alarm{'s' * (len(names) > 1)} {', '.join(names)} in ALARM"


def rollback_reason(service_deployment: dict[str, Any]) -> str:
    """Why ECS rolled a service deployment back: the alarms in ALARM by name, else ECS's
    words."""
    rollback = service_deployment.get("rollback") or {}
    return (
        alarm_reason(service_deployment)
        or rollback.get("reason")
        or service_deployment.get("statusReason")
        or "ECS gave no reason"
    )


def holds_on_purpose(service_deployment: dict[str, Any], service: dict[str, Any] | None) -> bool:
    """Whether ECS is waiting on purpose, so that tasks not moving is no stall: a bake,
    a linear or canary step's wait, a stage a lifecycle hook holds, or ECS's own
    rollback under way."""
    if service_deployment.get("status") in ROLLBACK_GOING:
        return True
    stage = service_deployment.get("lifecycleStage")
    config = _configuration(service_deployment, service)
    if stage == "BAKE_TIME":
        return True
    stepped = config.get("strategy") in ("LINEAR", "CANARY")
    if stepped and stage in ("PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"):
        return True
    hooks = config.get("lifecycleHooks") or []
    return any(stage in (hook.get("lifecycleStages") or []) for hook in hooks)


def stage_text(
    service_deployment: dict[str, Any],
    service: dict[str, Any] | None,
    *,
    in_stage_for: float,
) -> str:
    """The lifecycle stage for people: ``BAKE_TIME, 4m left`` (from bakeTimeInMinutes
    and how long the stage has been seen, ``in_stage_for`` seconds),
    ``PRODUCTION_TRAFFIC_SHIFT, 30% of production traffic``, or the stage with the target
    revision's task counts."""
    stage = service_deployment.get("lifecycleStage")
    if not stage:
        return ""
    config = _configuration(service_deployment, service)
    target = service_deployment.get("targetServiceRevision") or {}
    if stage == "BAKE_TIME" and config.get("bakeTimeInMinutes") is not None:
        left = float(config["bakeTimeInMinutes"]) * 60 - in_stage_for
        return f"BAKE_TIME, {_duration(left)} left"
    weight = target.get("requestedProductionTrafficWeight")
    if stage == "PRODUCTION_TRAFFIC_SHIFT" and weight is not None:
        return f"PRODUCTION_TRAFFIC_SHIFT, {float(weight):g}% of production traffic"
    running, requested = target.get("runningTaskCount"), target.get("requestedTaskCount")
    if running is not None and requested is not None:
        return f"{stage}, {running}/{requested} tasks running"
    return str(stage)


def _configuration(
    service_deployment: dict[str, Any], service: dict[str, Any] | None
) -> dict[str, Any]:
    """The deployment configuration the service deployment runs with (the service's as
    a fallback: ECS may omit it)."""
    return dict(
        service_deployment.get("deploymentConfiguration")
        or (service or {}).get("deploymentConfiguration")
        or {}
    )


def _duration(seconds: float) -> str:
    """``4m`` for four whole minutes left or more, ``40s`` under a minute."""
    seconds = max(0.0, seconds)
    if seconds >= 60:
        return f"{int(seconds // 60)}m"
    return f"{math.ceil(seconds)}s"
