"""Every key a plan may hold, with its check: the single place to read the plan's grammar."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any, Final

from ecs_deploy_many.core.ecs_api import task_size as ecs_task_size
from ecs_deploy_many.core.ecs_api import task_size_rule
from ecs_deploy_many.core.endpoints import region_problem
from ecs_deploy_many.core.errors import ImageError
from ecs_deploy_many.core.images import parse_image, with_tag
from ecs_deploy_many.core.ratelimit import ECS_BUCKETS
from ecs_deploy_many.plan import gates
from ecs_deploy_many.plan.checks import (
    INT32_MAX,
    INVALID,
    Check,
    Interpolated,
    boolean,
    describe,
    fields,
    integer,
    list_of,
    mapping_of,
    number,
    one_of,
    string,
)
from ecs_deploy_many.plan.issues import Issues, KeyPath
from ecs_deploy_many.plan.schedule import schedule

__all__ = [
    "CONTAINER_EDIT_FIELDS",
    "DEFAULTS",
    "EDIT_FIELDS",
    "PLAN",
    "SERVICE_ONLY",
    "TARGET",
    "TARGET_FIELDS",
    "TARGET_TIMEOUT",
    "WAVE",
    "RunTask",
]

TARGET_TIMEOUT: Final = 900.0
"""A plan target's time limit in seconds when none is given (single-service mode: 90)."""

LAUNCH_TYPES = ("EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES")
_GLOB_OR_SPACE = re.compile(r"[*?\[\]\s]")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ROLE_ARN = re.compile(r"arn:[a-z-]+:iam::[0-9]{12}:role/\S+")
# ECS names: "Up to 255 letters (uppercase and lowercase), numbers, underscores, and
# hyphens" (CreateCluster, CreateService, RegisterTaskDefinition). The API also takes ARNs.
_ECS_NAME = r"[A-Za-z0-9_-]{1,255}"
_NAME_RULE = "up to 255 letters, digits, hyphens and underscores"
_ECS_ARN = r"arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:"
_CLUSTER = re.compile(rf"{_ECS_NAME}|{_ECS_ARN}cluster/{_ECS_NAME}")
_SERVICE = re.compile(rf"{_ECS_NAME}|{_ECS_ARN}service/({_ECS_NAME}/)?{_ECS_NAME}")
_TASK_DEFINITION = re.compile(
    rf"{_ECS_NAME}(:[1-9][0-9]*)?|{_ECS_ARN}task-definition/{_ECS_NAME}:[1-9][0-9]*"
)


@dataclass(frozen=True)
class RunTask:
    """A target's ``run_task`` block: run the registered revision once, optionally wait."""

    wait_for_success: bool = False
    rerun_unchanged: bool = True
    """Run the task again when the revision is already registered unchanged."""
    launch_type: str | None = None
    platform_version: str | None = None
    network_configuration: dict[str, Any] | None = None


def _plain(value: Any) -> Any:
    """Drop the nulls a ``fields`` check keeps, recursively; INVALID if anything was."""
    if isinstance(value, dict):
        items = {k: _plain(v) for k, v in value.items() if v is not None}
        return INVALID if INVALID in items.values() else items
    if isinstance(value, list):
        listed = [_plain(v) for v in value]
        return INVALID if INVALID in listed else listed
    return value


def _refuse(message: str, path: KeyPath, issues: Issues) -> Any:
    issues.add(path, message)
    return INVALID


def image(value: Any, path: KeyPath, issues: Issues) -> Any:
    text = string(value, path, issues)
    if text is INVALID:
        return INVALID
    try:
        parse_image(text)
    except ImageError as exc:
        return _refuse(f"bad image {text!r}: {exc.reason}", path, issues)
    return text


def tag(value: Any, path: KeyPath, issues: Issues) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        # YAML reads 1.10 as the number 1.1: refuse rather than deploy the wrong tag.
        return _refuse(f"expected a tag string, got {describe(value)}: quote it", path, issues)
    text = string(value, path, issues)
    if text is INVALID:
        return INVALID
    try:
        with_tag("tag-only", text)  # validates the tag the way every image tag is validated
    except ImageError as exc:
        return _refuse(f"bad tag: {exc.reason}", path, issues)
    return text


def target_name(value: Any, path: KeyPath, issues: Issues) -> Any:
    text = string(value, path, issues)
    if text is INVALID:
        return INVALID
    if _GLOB_OR_SPACE.search(text):
        return _refuse(
            f"a name cannot contain spaces or * ? [ ], got {describe(text)}", path, issues
        )
    return text


def ecs_name(what: str, pattern: re.Pattern[str], rule: str) -> Check:
    """A name ECS accepts for ``what``: refused at load rather than by ECS mid-run."""

    def check(value: Any, path: KeyPath, issues: Issues) -> Any:
        text = string(value, path, issues)
        if text is INVALID or pattern.fullmatch(text):
            return text
        return _refuse(f"{describe(text)} is not a valid {what}: {rule}", path, issues)

    return check


def _one_or_list(item: Check) -> Check:
    """One value or a non-empty list of them, as a list."""

    def check(value: Any, path: KeyPath, issues: Issues) -> Any:
        if isinstance(value, list) and not value:
            return _refuse("give at least one", path, issues)
        return list_of(item)(value if isinstance(value, list) else [value], path, issues)

    return check


_CLUSTER_GLOB = re.compile(r"[A-Za-z0-9_*?\[\]!-]{1,255}")


def cluster_glob(value: Any, path: KeyPath, issues: Issues) -> Any:
    text = string(value, path, issues)
    if text is INVALID or _CLUSTER_GLOB.fullmatch(text):
        return text
    return _refuse(
        f"{describe(text)} is not a cluster name or glob: {_NAME_RULE}, and * ? [ ]",
        path,
        issues,
    )


def repository(value: Any, path: KeyPath, issues: Issues) -> Any:
    """An image repository without tag or digest (``datadog/agent``)."""
    text = string(value, path, issues)
    if text is INVALID:
        return INVALID
    try:
        ref = parse_image(text)
    except ImageError as exc:
        return _refuse(f"bad repository {text!r}: {exc.reason}", path, issues)
    if ref.tag is not None or ref.digest is not None:
        return _refuse(
            f"runs names a repository, without tag or digest: write {ref.repository!r}",
            path,
            issues,
        )
    return text


SELECT = fields(
    {"clusters": _one_or_list(cluster_glob), "runs": _one_or_list(repository)},
    required=["clusters"],
)
"""A target's ``select:``: the services it stands for, found when the plan runs."""


def region(value: Any, path: KeyPath, issues: Issues) -> Any:
    text = string(value, path, issues)
    if text is INVALID:
        return INVALID
    problem = region_problem(text)
    return _refuse(problem, path, issues) if problem else text


def env_name(value: Any, path: KeyPath, issues: Issues) -> Any:
    if isinstance(value, str) and _ENV_NAME.fullmatch(value):
        return str(value)
    return _refuse(f"expected an environment variable name, got {describe(value)}", path, issues)


def role_arn(value: Any, path: KeyPath, issues: Issues) -> Any:
    if isinstance(value, str) and _ROLE_ARN.fullmatch(value):
        return str(value)
    return _refuse(
        f"expected a role ARN (arn:aws:iam::123456789012:role/name), got {describe(value)}",
        path,
        issues,
    )


# -- edits of the task definition besides its images ------------------------------------

ULIMIT_NAMES = (
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
)
_ROLE = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/\S+|[\w+=,.@/-]{1,512}")


def settings(name: Check, value: Check) -> Check:
    """A mapping of names to values where null means "remove this name"."""

    def check(given: Any, path: KeyPath, issues: Issues) -> Any:
        if not isinstance(given, dict):
            return _refuse(
                f"expected a mapping of names to values, got {describe(given)}", path, issues
            )
        checked = {
            name(key, (*path, key), issues): None
            if item is None
            else value(item, (*path, key), issues)
            for key, item in given.items()
        }
        return INVALID if INVALID in checked or INVALID in checked.values() else checked

    return check


def env_value(value: Any, path: KeyPath, issues: Issues) -> Any:
    """Text; a whole number is taken as its digits, other numbers and booleans refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, bool | float):
        return _refuse(
            f"expected a string, got {describe(value)}: quote it, e.g. '{describe(value)}' "
            "(YAML reads 1.10 as 1.1 and yes as true)",
            path,
            issues,
        )
    return string(value, path, issues)


def label_name(value: Any, path: KeyPath, issues: Issues) -> Any:
    if isinstance(value, str) and value:
        return value
    return _refuse(f"expected a name, got {describe(value)}", path, issues)


def command(value: Any, path: KeyPath, issues: Issues) -> Any:
    """A list of words, or one string split as a shell would (``python -m app serve``)."""
    if isinstance(value, str):
        try:
            words = shlex.split(value)
        except ValueError as error:
            return _refuse(f"cannot split {describe(value)} into words: {error}", path, issues)
        return tuple(words) if words else _refuse("must not be empty", path, issues)
    words = list_of(string)(value, path, issues)
    return INVALID if words is INVALID else tuple(words)


def ulimit(value: Any, path: KeyPath, issues: Issues) -> Any:
    """One number (soft and hard limit alike) or ``{soft: N, hard: N}``."""
    limit = integer(0)
    if not isinstance(value, dict):
        single = limit(value, path, issues)
        return INVALID if single is INVALID else (single, single)
    given = _plain(
        fields({"soft": limit, "hard": limit}, required=["soft", "hard"])(value, path, issues)
    )
    if given is INVALID or INVALID in given.values():
        return INVALID
    if given["soft"] > given["hard"]:
        return _refuse("soft must not be above hard", path, issues)
    return (given["soft"], given["hard"])


def task_size(kind: str) -> Check:
    """The task's ``cpu`` or ``memory``: a number, or text ECS takes ("1 vCPU", "2 GB"),
    as the digits ECS gives back, so a second run finds the revision unchanged."""

    def check(value: Any, path: KeyPath, issues: Issues) -> Any:
        text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
        size = ecs_task_size(text, kind)
        if size is not None:
            return size
        return _refuse(f"expected {task_size_rule(kind)}, got {describe(value)}", path, issues)

    return check


def role(value: Any, path: KeyPath, issues: Issues) -> Any:
    if isinstance(value, str) and _ROLE.fullmatch(value):
        return str(value)
    return _refuse(
        "expected a role ARN (arn:aws:iam::123456789012:role/name) or a role name, "
        f"got {describe(value)}",
        path,
        issues,
    )


CONTAINER_EDIT_FIELDS: Final[dict[str, Check]] = {
    "environment": settings(env_name, env_value),
    "secrets": settings(env_name, string),
    "command": command,
    "entry_point": command,
    "docker_labels": settings(label_name, env_value),
    "ulimits": settings(one_of(*ULIMIT_NAMES), ulimit),
}
"""Container settings a target may also give without a container name."""

_CONTAINER_SIZES: Final[dict[str, Check]] = {
    "cpu": integer(0),
    "memory": integer(6),
    "memory_reservation": integer(6),
}
_CONTAINER = fields({"image": image, **CONTAINER_EDIT_FIELDS, **_CONTAINER_SIZES})


def container(value: Any, path: KeyPath, issues: Issues) -> Any:
    """A container's new image (a string), or a mapping of its image and settings."""
    if not isinstance(value, dict):
        return image(value, path, issues)
    given = _CONTAINER(value, path, issues)
    if given is INVALID:
        return INVALID
    memory, reserved = given.get("memory"), given.get("memory_reservation")
    if isinstance(memory, int) and isinstance(reserved, int) and reserved > memory:
        issues.add((*path, "memory_reservation"), f"must not be above memory ({memory})")
    return given


EDIT_FIELDS: Final[dict[str, Check]] = {
    **CONTAINER_EDIT_FIELDS,
    "exclusive_environment": boolean,
    "exclusive_secrets": boolean,
    "task_cpu": task_size("cpu"),
    "task_memory": task_size("memory"),
    "task_role": role,
    "execution_role": role,
}
"""A target's edits of its task definition, besides ``containers:``."""


_NETWORK = fields(
    {
        "awsvpcConfiguration": fields(
            {
                "subnets": list_of(string),
                "securityGroups": list_of(string),
                "assignPublicIp": one_of("ENABLED", "DISABLED"),
            },
            required=["subnets"],
        )
    },
    required=["awsvpcConfiguration"],
)
_RUN_TASK = fields(
    {
        "wait_for_success": boolean,
        "rerun_unchanged": boolean,
        "launch_type": one_of(*LAUNCH_TYPES),
        "platform_version": string,
        "network_configuration": lambda value, path, issues: _plain(_NETWORK(value, path, issues)),
    }
)


def run_task(value: Any, path: KeyPath, issues: Issues) -> Any:
    """``true``, ``false``, or a mapping of run options; False means no run task."""
    if isinstance(value, Interpolated) and value.as_boolean() is not None:
        value = value.as_boolean()
    if isinstance(value, bool):
        return RunTask() if value else False
    given = _plain(_RUN_TASK(value, path, issues))
    return INVALID if given is INVALID else RunTask(**given)


def _run_task_hint(key: str) -> str:
    return f"{key} is a run_task option: write run_task: {{{key}: ...}}"


TARGET_FIELDS: Final[dict[str, Check]] = {
    "name": target_name,
    "cluster": ecs_name("cluster", _CLUSTER, f"a name of {_NAME_RULE}, or a cluster ARN"),
    "service": ecs_name("service", _SERVICE, f"a name of {_NAME_RULE}, or a service ARN"),
    "task_definition": ecs_name(
        "task definition",
        _TASK_DEFINITION,
        f"a family of {_NAME_RULE}, optionally with :revision, or a task-definition ARN",
    ),
    "image": image,
    "containers": mapping_of(container),
    "tag_only": tag,
    "tag_env_var": env_name,
    "desired_count": integer(0),
    "min_healthy_percent": integer(0, 100),
    "max_percent": integer(0),
    "timeout": number(unit="seconds"),
    "progress_deadline": number(unit="seconds"),
    "rollback": boolean,
    "use_latest_task_def": boolean,
    "force_new_deployment": boolean,
    "skip_deployments_check": boolean,
    "task_definition_file": string,
    "max_definitions": integer(0),
    "copy_task_definition_tags": boolean,
    "run_task": run_task,
    "region": region,
    "profile": string,
    "assume_role": role_arn,
    "depends_on": list_of(string),
    "allow_failure": boolean,
    **EDIT_FIELDS,
    "select": lambda value, path, issues: _plain(SELECT(value, path, issues)),
}

SERVICE_ONLY: Final = (
    "desired_count",
    "min_healthy_percent",
    "max_percent",
    "rollback",
    "force_new_deployment",
    "skip_deployments_check",
)
"""Options that mean nothing for a task-definition target."""

_RUN_TASK_HINTS = {
    key: _run_task_hint(key)
    for key in (
        "wait_for_success",
        "rerun_unchanged",
        "launch_type",
        "platform_version",
        "network_configuration",
    )
}
_PER_TARGET = ("name", "service", "task_definition", "depends_on", "select")

TARGET = fields(TARGET_FIELDS, hints=_RUN_TASK_HINTS)
DEFAULTS = fields(
    {k: v for k, v in TARGET_FIELDS.items() if k not in _PER_TARGET},
    hints={
        **_RUN_TASK_HINTS,
        **{k: f"{k} belongs to each target, not defaults" for k in _PER_TARGET},
    },
)


def webhook_url(value: Any, path: KeyPath, issues: Issues) -> Any:
    """An http(s) URL; a wrong one is never quoted back, as the URL is a secret."""
    if isinstance(value, str) and re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
        return str(value)
    return _refuse(
        "expected an http:// or https:// URL (not shown: a webhook URL is a secret); "
        "write it as ${VARIABLE} and set it in the environment",
        path,
        issues,
    )


_NOTIFICATION = fields(
    {
        "url": webhook_url,
        "format": one_of("slack", "json"),
        "on": list_of(one_of("start", "finish", "target_failed")),
    },
    required=["url"],
)


def version(value: Any, path: KeyPath, issues: Issues) -> Any:
    if value == 1 and not isinstance(value, bool):
        return 1
    return _refuse(
        f"unsupported version {describe(value)}: this tool reads version 1", path, issues
    )


def failure_budget(value: Any, path: KeyPath, issues: Issues) -> Any:
    """A count (``2``) or a percentage of the run (``"10%"``)."""
    if isinstance(value, Interpolated) and isinstance(value.as_number(), int):
        value = value.as_number()
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT32_MAX:
        return (float(value), False)
    if isinstance(value, str) and value.endswith("%"):
        try:
            percent = float(value[:-1])
        except ValueError:
            percent = -1.0
        if 0 <= percent <= 100:
            return (percent, True)
    return _refuse(
        f"expected a count (2) or a percentage ('10%'), got {describe(value)}", path, issues
    )


def target_list(value: Any, path: KeyPath, issues: Issues) -> Any:
    """The list itself; each target is checked on its own, once defaults are known."""
    if not isinstance(value, list):
        return _refuse(f"expected a list of targets, got {describe(value)}", path, issues)
    return value if value else _refuse("a plan needs at least one target", path, issues)


_LOCK_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
_LOCK = fields(
    {
        "name": ecs_name("lock name", _LOCK_NAME, "up to 128 letters, digits, '.', '-' and '_'"),
        "table": string,
        "region": region,
        "lease": number(5, inclusive=True, unit="seconds"),
    }
)


def lock(value: Any, path: KeyPath, issues: Issues) -> Any:
    """``true`` or ``{}`` (a local file lock), ``false`` (none), or the lock's keys."""
    if isinstance(value, Interpolated) and value.as_boolean() is not None:
        value = value.as_boolean()
    if isinstance(value, bool):
        return {} if value else False
    given = _plain(_LOCK(value, path, issues))
    if given is not INVALID and "table" in given and not given["table"]:
        return _refuse("table: name a DynamoDB table, or leave table out", path, issues)
    return given


_BUCKET = fields({"burst": number(1, inclusive=True), "refill_per_s": number()})


def _bucket(value: Any, path: KeyPath, issues: Issues) -> Any:
    return _plain(_BUCKET(value, path, issues))


WAVE = fields(
    {
        "name": target_name,
        "targets": list_of(string),
        "bake": number(inclusive=True, unit="seconds"),
        "alarms": gates.alarms,
        "approval": gates.approval,
    },
    required=["name", "targets"],
)

PLAN: Final = fields(
    {
        "version": version,
        "defaults": DEFAULTS,
        "targets": target_list,
        "waves": list_of(WAVE),
        "concurrency": fields({"max_parallel": integer(1), "per_cluster": integer(1)}),
        "failure_budget": failure_budget,
        "on_failure": one_of("halt", "continue", "rollback_all"),
        "rate_limits": fields(dict.fromkeys(ECS_BUCKETS, _bucket)),
        "polling": fields(
            {"initial_interval": number(unit="seconds"), "max_interval": number(unit="seconds")}
        ),
        "lock": lock,
        "schedule": schedule,
        "images": fields({"pin_digests": boolean}),
        "notifications": list_of(_NOTIFICATION),
    },
    required=["version", "targets"],
)
