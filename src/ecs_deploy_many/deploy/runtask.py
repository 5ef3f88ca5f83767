"""One-off tasks (``--run-task``): start one, and with ``--wait-for-success`` judge its exit.

A task succeeded when it reached STOPPED without failing to start and every essential
container exited 0; a container with no exit code never ran, which is a failure. The
original tool looked only at the first container.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ecs_deploy_many.aws.gateway import Gateway, TaskDefinition
from ecs_deploy_many.clock import Clock
from ecs_deploy_many.errors import DeploymentTimeout, TaskRunFailed

__all__ = ["run_one_off_task", "task_failure"]

POLL_INTERVAL = 3.0
MAX_POLL_INTERVAL = 15.0
STARTED_BY = "ecs-deploy-many"


def task_failure(task: Mapping[str, Any], essential: Mapping[str, bool]) -> str | None:
    """Why a STOPPED task failed, or None when it succeeded."""
    if task.get("stopCode") == "TaskFailedToStart":
        return f"task failed to start: {task.get('stoppedReason', 'no reason given')}"
    for container in task.get("containers", []):
        name = container.get("name", "?")
        if not essential.get(name, True):
            continue
        code = container.get("exitCode")
        if code is None:
            reason = container.get("reason") or task.get("stoppedReason") or "it never ran"
            return f"essential container {name} has no exit code: {reason}"
        if code != 0:
            return f"essential container {name} exited with code {code}"
    return None


async def run_one_off_task(
    gateway: Gateway,
    *,
    cluster: str,
    task_definition: TaskDefinition,
    launch_type: str | None,
    platform_version: str | None,
    network_configuration: Mapping[str, Any] | None,
    wait_for_success: bool,
    timeout: float,
    clock: Clock,
    on_status: Callable[[str, str], None],
) -> str:
    """Run one task of ``task_definition``; return its ARN or raise TaskRunFailed."""
    params: dict[str, Any] = {
        "cluster": cluster,
        "taskDefinition": task_definition.arn,
        "count": 1,
        "startedBy": STARTED_BY,
    }
    if launch_type:
        params["launchType"] = launch_type
    if platform_version:
        params["platformVersion"] = platform_version
    if network_configuration:
        params["networkConfiguration"] = dict(network_configuration)
    response = await gateway.run_task(**params)
    if response.get("failures") or not response.get("tasks"):
        reasons = "; ".join(
            f"{f.get('arn', '?')}: {f.get('reason', '?')}" for f in response.get("failures", [])
        )
        raise TaskRunFailed(
            f"RunTask started no task: {reasons or 'no reason given'}", step="run_task"
        )
    task_arn: str = response["tasks"][0]["taskArn"]
    on_status(task_arn, response["tasks"][0].get("lastStatus", "PROVISIONING"))
    if not wait_for_success:
        return task_arn

    essential = {
        c["name"]: bool(c.get("essential", True))
        for c in task_definition.body.get("containerDefinitions", [])
    }
    watch = _TaskWatch(gateway, cluster, task_arn, on_status)
    try:
        with clock.fail_after(timeout):
            task = await watch.until_stopped(clock)
    except TimeoutError:
        raise DeploymentTimeout(
            f"task {task_arn} did not stop within {timeout:g} s (last status {watch.last_status})",
            step="run_task",
        ) from None
    failure = task_failure(task, essential)
    if failure:
        raise TaskRunFailed(failure, step="run_task")
    return task_arn


class _TaskWatch:
    """Polls one task until it stops, reporting each new lastStatus."""

    def __init__(
        self, gateway: Gateway, cluster: str, task_arn: str, on_status: Callable[[str, str], None]
    ) -> None:
        self._gateway = gateway
        self._cluster = cluster
        self._task_arn = task_arn
        self._on_status = on_status
        self.last_status = ""

    async def until_stopped(self, clock: Clock) -> dict[str, Any]:
        interval = POLL_INTERVAL
        while True:
            await clock.sleep(interval)
            interval = min(MAX_POLL_INTERVAL, interval * 1.5)
            described = await self._gateway.describe_tasks(self._cluster, [self._task_arn])
            if described["failures"] or not described["tasks"]:
                raise TaskRunFailed(f"task {self._task_arn} disappeared", step="run_task")
            task: dict[str, Any] = described["tasks"][0]
            status = task.get("lastStatus", "")
            if status != self.last_status:
                self.last_status = status
                self._on_status(self._task_arn, status)
            if status == "STOPPED":
                return task
