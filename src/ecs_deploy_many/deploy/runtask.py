"""One-off tasks (``--run-task``): start one, and with ``--wait-for-success`` judge its exit.

A task succeeded when it reached STOPPED without failing to start and every essential
container exited 0; a container with no exit code never ran, which is a failure. The
original tool looked only at the first container.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ecs_deploy_many.aws.gateway import Gateway, TaskDefinition
from ecs_deploy_many.core.clock import Clock
from ecs_deploy_many.core.errors import DeploymentTimeout, TaskRunFailed

__all__ = ["run_one_off_task", "task_failure"]

POLL_INTERVAL = 3.0
MAX_POLL_INTERVAL = 15.0
STARTED_BY = "ecs-deploy-many"
STOP_SIGNAL_CODES = frozenset({137, 143})
"""Exit codes of a container ECS stopped: SIGKILL (128 + 9) and SIGTERM (128 + 15)."""


def task_failure(task: Mapping[str, Any], essential: Mapping[str, bool]) -> str | None:
    """Why a STOPPED task failed, or None when it succeeded.

    When one essential container exits, ECS stops the others (SIGTERM, exit 143; SIGKILL
    after the stop timeout, 137), and DescribeTasks does not say which went first. The
    container to blame is therefore the first essential one that ended by itself: a
    non-zero code other than a stop signal's, a container ``reason`` (an out-of-memory
    kill is 137 with one), or no exit code at all. Then the first that exited 0 (a
    sidecar stopped after the main container finished). The message also gives ECS's
    ``stoppedReason`` and every container's exit code, in ECS's order.
    """
    stop_code = task.get("stopCode")
    if stop_code == "TaskFailedToStart":
        return f"task failed to start: {task.get('stoppedReason', 'no reason given')}"
    containers = [c for c in task.get("containers", []) if essential.get(c.get("name", "?"), True)]
    failed = [c for c in containers if c.get("exitCode") != 0]
    if not failed:
        return None
    stopped = task.get("stoppedReason") or stop_code or "no reason given"
    about = f"{stopped}; exit codes: {_exit_codes(task, essential)}"
    if stop_code not in (None, "EssentialContainerExited"):
        return f"task stopped ({stop_code}): {about}"  # from outside: no container to blame
    first = next((c for c in failed if _ended_by_itself(c)), None)
    if first is not None:
        return f"{_what_happened(first, task)} ({about})"
    finished = next((c for c in containers if c.get("exitCode") == 0), None)
    after = (
        f" after essential container {finished.get('name')} exited with code 0" if finished else ""
    )
    return f"{_what_happened(failed[0], task)}{after} ({about})"


def _ended_by_itself(container: Mapping[str, Any]) -> bool:
    """Whether a container's end was its own, not ECS stopping it because another ended."""
    code = container.get("exitCode")
    return code is None or code not in STOP_SIGNAL_CODES or bool(container.get("reason"))


def _what_happened(container: Mapping[str, Any], task: Mapping[str, Any]) -> str:
    name = container.get("name", "?")
    code = container.get("exitCode")
    reason = container.get("reason")
    if code is None:
        why = reason or task.get("stoppedReason") or "it never ran"
        return f"essential container {name} has no exit code: {why}"
    return f"essential container {name} exited with code {code}" + (f": {reason}" if reason else "")


def _exit_codes(task: Mapping[str, Any], essential: Mapping[str, bool]) -> str:
    """``main 143, helper 4, log-router 0 (not essential)``: every container, in order."""
    parts = []
    for container in task.get("containers", []):
        name = container.get("name", "?")
        code = container.get("exitCode")
        part = f"{name} {'none' if code is None else code}"
        parts.append(part if essential.get(name, True) else f"{part} (not essential)")
    return ", ".join(parts) or "no containers"


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
