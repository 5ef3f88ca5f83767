"""The task-definition registry of one account and region.

Revisions are numbered 1, 2, 3... per family and never deleted: a deregistered (INACTIVE)
revision stays describable, since services and tasks may still reference it.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from ecs_deploy_many.sim.model import (
    NAME,
    SimError,
    TaskDef,
    invalid,
    paginate,
    tag_list,
    tags_from,
)

__all__ = ["TaskDefinitions", "validate_registration"]

_ARN = re.compile(r"^arn:aws[\w-]*:ecs:[\w-]+:\d{12}:task-definition/([^:/]+):(\d+)$")
_UNDESCRIBABLE = "Unable to describe task definition."
# ECS's task definition size quota (64 KiB), refused with the message ECS gives; how ECS
# measures the size is not documented [unconfirmed]: here, the request's compact JSON.
MAX_TASKDEF_BYTES = 65_536
# ECS's "Containers per task definition" quota; the refusal's wording is [unconfirmed].
MAX_CONTAINERS = 10

# Container keys ECS fills in when a definition leaves them out, as DescribeTaskDefinition
# shows them: cpu 0, essential true, and empty lists for the list-valued settings below.
_CONTAINER_DEFAULTS: dict[str, Any] = {
    "cpu": 0,
    "essential": True,
    "portMappings": [],
    "environment": [],
    "mountPoints": [],
    "volumesFrom": [],
    "systemControls": [],
}
_TASK_DEFAULTS: dict[str, Any] = {"volumes": [], "placementConstraints": []}


def _fill_container(container: dict[str, Any], network_mode: str | None) -> dict[str, Any]:
    """ECS's defaults; port mappings gain protocol tcp, and hostPort under awsvpc."""
    filled = {**copy.deepcopy(_CONTAINER_DEFAULTS), **copy.deepcopy(container)}
    for mapping in filled["portMappings"]:
        mapping.setdefault("protocol", "tcp")
        if network_mode == "awsvpc" and "containerPort" in mapping:
            mapping.setdefault("hostPort", mapping["containerPort"])
    return filled


def validate_registration(params: dict[str, Any]) -> None:
    """The checks ECS makes at registration that a deployer can trip over."""
    family = params.get("family", "")
    if not isinstance(family, str) or not NAME.fullmatch(family):
        raise SimError(
            "ClientException",
            "Family contains invalid characters or is longer than 255 characters.",
        )
    size = len(json.dumps(params, separators=(",", ":"), default=str).encode())
    if size > MAX_TASKDEF_BYTES:
        raise SimError(
            "ClientException",
            f"Actual length: '{size}'. Max allowed length is '{MAX_TASKDEF_BYTES}' bytes.",
        )
    containers = params.get("containerDefinitions") or []
    if not containers:
        raise SimError("ClientException", "Container list cannot be empty.")
    if len(containers) > MAX_CONTAINERS:
        raise SimError(
            "ClientException", f"A task definition can have at most {MAX_CONTAINERS} containers."
        )
    names = [c.get("name") for c in containers]
    if len(set(names)) != len(names):
        raise SimError("ClientException", "Container names must be unique.")
    if "FARGATE" in params.get("requiresCompatibilities", []):
        if params.get("networkMode") != "awsvpc":
            raise SimError("ClientException", "Fargate only supports network mode 'awsvpc'.")
        for key in ("cpu", "memory"):
            if not params.get(key):
                raise SimError(
                    "ClientException",
                    f"Fargate requires that '{key}' be defined at the task level.",
                )
    if not params.get("memory"):
        for c in containers:
            if "memory" not in c and "memoryReservation" not in c:
                raise SimError(
                    "ClientException",
                    f"Invalid setting for container '{c.get('name')}'. At least one of "
                    "'memory' or 'memoryReservation' must be specified.",
                )


class TaskDefinitions:
    """Register, resolve, describe, deregister and list task definitions."""

    def __init__(self, region: str, account_id: str) -> None:
        self._prefix = f"arn:aws:ecs:{region}:{account_id}:task-definition/"
        self._registered_by = f"arn:aws:iam::{account_id}:root"
        self._families: dict[str, list[TaskDef]] = {}

    def register(self, params: dict[str, Any], now: float) -> TaskDef:
        validate_registration(params)
        family = params["family"]
        revisions = self._families.setdefault(family, [])
        revision = len(revisions) + 1
        arn = f"{self._prefix}{family}:{revision}"
        body = {k: copy.deepcopy(v) for k, v in params.items() if k != "tags"}
        network_mode = body.get("networkMode")
        body["containerDefinitions"] = [
            _fill_container(c, network_mode) for c in body["containerDefinitions"]
        ]
        fargate_ready = network_mode == "awsvpc" and body.get("cpu") and body.get("memory")
        body = {
            **_TASK_DEFAULTS,
            **body,
            "taskDefinitionArn": arn,
            "revision": revision,
            "status": "ACTIVE",
            "requiresAttributes": self._required_attributes(body),
            "compatibilities": ["EC2", "FARGATE"] if fargate_ready else ["EC2"],
            "registeredAt": now,
            "registeredBy": self._registered_by,
        }
        taskdef = TaskDef(family, revision, arn, body, tags_from(params.get("tags")))
        revisions.append(taskdef)
        return taskdef

    @staticmethod
    def _required_attributes(body: dict[str, Any]) -> list[dict[str, str]]:
        names = ["com.amazonaws.ecs.capability.docker-remote-api.1.18"]
        if body.get("networkMode") == "awsvpc":
            names.append("ecs.capability.task-eni")
        if body.get("executionRoleArn"):
            names.append("ecs.capability.execution-role-awslogs")
        if any("healthCheck" in c for c in body["containerDefinitions"]):
            names.append("ecs.capability.container-health-check")
        return [{"name": name} for name in names]

    def find(self, ref: str) -> TaskDef | None:
        """Resolve a family (latest ACTIVE revision), ``family:revision`` or an ARN."""
        if match := _ARN.match(ref):
            if not ref.startswith(self._prefix):
                return None
            family, number = match.group(1), match.group(2)
        elif ":" in ref:
            family, _, number = ref.partition(":")
        else:
            active = [t for t in self._families.get(ref, []) if t.status == "ACTIVE"]
            return active[-1] if active else None
        revisions = self._families.get(family, [])
        # A revision is a 32-bit number: thousands of digits make no int() here.
        if not (number.isascii() and number.isdigit() and len(number) <= 10):
            return None
        rev = int(number)
        return revisions[rev - 1] if 1 <= rev <= len(revisions) else None

    def resolve(self, ref: str, missing: str = _UNDESCRIBABLE) -> TaskDef:
        if (taskdef := self.find(ref)) is None:
            raise SimError("ClientException", missing)
        return taskdef

    def describe(self, params: dict[str, Any]) -> dict[str, Any]:
        taskdef = self.resolve(params["taskDefinition"])
        response: dict[str, Any] = {"taskDefinition": copy.deepcopy(taskdef.body)}
        if "TAGS" in params.get("include", []):
            response["tags"] = tag_list(taskdef.tags)
        return response

    def deregister(self, params: dict[str, Any], now: float) -> dict[str, Any]:
        ref = params["taskDefinition"]
        if ":" not in ref:
            raise invalid("The revision of the task definition must be specified.")
        taskdef = self.resolve(ref, "The specified task definition does not exist.")
        if taskdef.status == "ACTIVE":
            taskdef.body["status"] = "INACTIVE"
            taskdef.body["deregisteredAt"] = now
        return {"taskDefinition": copy.deepcopy(taskdef.body)}

    def list_arns(self, params: dict[str, Any]) -> dict[str, Any]:
        """``familyPrefix`` is the full family name, as the API reference defines it."""
        status = params.get("status", "ACTIVE")
        family = params.get("familyPrefix")
        families = [family] if family is not None else sorted(self._families)
        arns = [
            t.arn
            for name in families
            for t in self._families.get(name, [])
            if status == "ALL" or t.status == status
        ]
        if params.get("sort") == "DESC":
            arns.reverse()
        return paginate(arns, params, "taskDefinitionArns")

    def list_families(self, params: dict[str, Any]) -> dict[str, Any]:
        """``familyPrefix`` is a real prefix here; the default status is ALL."""
        status = params.get("status", "ALL")
        prefix = params.get("familyPrefix", "")
        names = []
        for name in sorted(self._families):
            active = any(t.status == "ACTIVE" for t in self._families[name])
            wanted = status == "ALL" or (status == "ACTIVE") == active
            if name.startswith(prefix) and wanted:
                names.append(name)
        return paginate(names, params, "families")
