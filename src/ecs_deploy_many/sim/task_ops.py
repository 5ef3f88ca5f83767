"""RunTask, StopTask, DescribeTasks and ListTasks."""

from __future__ import annotations

import json
from typing import Any

from ecs_deploy_many.sim.deployments import Scheduler
from ecs_deploy_many.sim.fleet import Timings
from ecs_deploy_many.sim.model import invalid, paginate, tags_from
from ecs_deploy_many.sim.region import Region
from ecs_deploy_many.sim.service_ops import platform_version, usable_taskdef
from ecs_deploy_many.sim.tasks import Lifecycle, render_task

__all__ = ["TaskOps"]

MAX_RUN = 10
MAX_DESCRIBE = 100
# RunTask: "A total of 8192 characters are allowed for overrides. This limit includes the
# JSON formatting characters of the override structure." Refused in ECS's words.
MAX_OVERRIDES_CHARS = 8192
# RunTask startedBy: "Up to 128 letters..."; StopTask reason: "Up to 255 characters".
MAX_STARTED_BY = 128
MAX_STOP_REASON = 255
# StopTask without a reason: ECS's wording is not documented [unconfirmed].
DEFAULT_STOP_REASON = "Task stopped by user"


class TaskOps:
    """The task half of the API: one-off tasks, and reads of every task."""

    def __init__(self, lifecycle: Lifecycle, scheduler: Scheduler, timings: Timings) -> None:
        self._lifecycle = lifecycle
        self._scheduler = scheduler
        self._timings = timings

    def run(self, region: Region, params: dict[str, Any], now: float) -> dict[str, Any]:
        cluster = region.cluster(params.get("cluster"))
        count = params.get("count", 1)
        if not 1 <= count <= MAX_RUN:
            raise invalid(f"count must be between 1 and {MAX_RUN}.")
        overrides = json.dumps(params.get("overrides", {}), separators=(",", ":"))
        if len(overrides) > MAX_OVERRIDES_CHARS:
            raise invalid(f"Container Overrides length must be at most {MAX_OVERRIDES_CHARS}")
        if len(params.get("startedBy", "")) > MAX_STARTED_BY:
            raise invalid(f"startedBy can have at most {MAX_STARTED_BY} characters.")
        taskdef = usable_taskdef(region, params["taskDefinition"], params)
        launch_type = params.get("launchType", "EC2")
        tasks = [
            self._lifecycle.create(
                cluster=cluster,
                taskdef=taskdef,
                now=now,
                launch_type=launch_type,
                platform_version=platform_version(launch_type, params.get("platformVersion")),
                group=params.get("group") or f"family:{taskdef.family}",
                started_by=params.get("startedBy"),
                timings=self._timings,
                overrides=params.get("overrides"),
                tags=tags_from(params.get("tags")),
            )
            for _ in range(count)
        ]
        return {"tasks": [render_task(t) for t in tasks], "failures": []}

    def stop(self, region: Region, params: dict[str, Any], now: float) -> dict[str, Any]:
        """A user stop; a service's scheduler then replaces the task."""
        cluster = region.cluster(params.get("cluster"))
        task = region.find_task(cluster, params["task"])
        if task is None:
            raise invalid("The referenced task was not found.")
        reason = params.get("reason") or DEFAULT_STOP_REASON
        if len(reason) > MAX_STOP_REASON:
            raise invalid(f"reason can have at most {MAX_STOP_REASON} characters.")
        if self._lifecycle.stop(task, now, "UserInitiated", reason) and task.service is not None:
            self._scheduler.reconcile(task.service, now)
        return {"task": render_task(task)}

    def describe(self, region: Region, params: dict[str, Any]) -> dict[str, Any]:
        cluster = region.cluster(params.get("cluster"))
        refs = params["tasks"]
        if not refs:
            raise invalid("Tasks cannot be empty.")
        if len(refs) > MAX_DESCRIBE:
            raise invalid(f"tasks can have at most {MAX_DESCRIBE} items.")
        include_tags = "TAGS" in params.get("include", [])
        tasks, failures = [], []
        for ref in refs:
            task = region.find_task(cluster, ref)
            if task is None:
                arn = ref if ref.startswith("arn:") else region.arn(f"task/{cluster.name}/{ref}")
                failures.append({"arn": arn, "reason": "MISSING"})
            else:
                tasks.append(render_task(task, include_tags))
        return {"tasks": tasks, "failures": failures}

    def list(self, region: Region, params: dict[str, Any]) -> dict[str, Any]:
        cluster = region.cluster(params.get("cluster"))
        source = cluster.tasks
        if "serviceName" in params:
            source = region.service(cluster, params["serviceName"]).tasks
        desired = params.get("desiredStatus", "RUNNING")
        family, started_by = params.get("family"), params.get("startedBy")
        launch_type = params.get("launchType")
        arns = [
            t.arn
            for t in source.values()
            if t.desired_status == desired
            and family in (None, t.taskdef.family)
            and started_by in (None, t.started_by)
            and launch_type in (None, t.launch_type)
        ]
        return paginate(arns, params, "taskArns")
