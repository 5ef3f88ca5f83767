"""A target: one service (or task definition) to deploy, with every option it may carry.

Both front doors produce targets: `ecs-deploy` from its flags, `ecs-deploy-many` from a
plan. The pipeline and the engine consume them and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from ecs_deploy_many.core.scope import AwsScope

__all__ = [
    "AwsScope",
    "ContainerEdits",
    "Selector",
    "Target",
    "TargetKind",
    "TaskEdits",
    "target_as_data",
    "target_from_data",
]

TargetKind = Literal["service", "task_definition"]


@dataclass(frozen=True)
class ContainerEdits:
    """Changes to one container besides its image; None leaves a setting as it is.

    In ``environment``, ``secrets`` and ``docker_labels`` a None value removes the name.
    """

    environment: Mapping[str, str | None] = field(default_factory=dict)
    secrets: Mapping[str, str | None] = field(default_factory=dict)
    """Secret name -> ``valueFrom`` (a Secrets Manager or SSM Parameter Store ARN or name)."""
    command: tuple[str, ...] | None = None
    entry_point: tuple[str, ...] | None = None
    cpu: int | None = None
    memory: int | None = None
    memory_reservation: int | None = None
    docker_labels: Mapping[str, str | None] = field(default_factory=dict)
    ulimits: Mapping[str, tuple[int, int] | None] = field(default_factory=dict)
    """Ulimit name -> (soft limit, hard limit); None removes the ulimit."""

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) not in (None, {}) for f in fields(self))


@dataclass(frozen=True)
class TaskEdits:
    """Changes to a task definition besides its images (a plan's or ``ecs-deploy``'s)."""

    containers: Mapping[str, ContainerEdits] = field(default_factory=dict)
    """Edits by container name."""
    unnamed: ContainerEdits = field(default_factory=ContainerEdits)
    """Edits written without a container name (a target's own ``environment``): for the
    only container, or for the containers the target's ``image`` updates."""
    cpu: str | None = None
    memory: str | None = None
    task_role: str | None = None
    """A role ARN, or a role name of the task definition's own account."""
    execution_role: str | None = None
    exclusive_environment: bool = False
    """The environment given for a container becomes its whole environment."""
    exclusive_secrets: bool = False
    """The secrets given for a container become all of its secrets."""

    def __bool__(self) -> bool:
        return bool(
            any(self.containers.values())
            or self.unnamed
            or self.cpu
            or self.memory
            or self.task_role
            or self.execution_role
        )


@dataclass(frozen=True)
class Selector:
    """A plan target's ``select:``: the services it stands for are found when the plan runs."""

    name: str
    """The selector target's name; each match is named ``<name>/<cluster>/<service>``."""
    clusters: tuple[str, ...]
    """Cluster names or globs (``fnmatch``, case-sensitive)."""
    runs: tuple[str, ...] = ()
    """Repositories: a service matches when a container runs one of them (the rule
    ``image:`` retargets containers by). Empty: every active service of the clusters."""


@dataclass(frozen=True)
class Target:
    """Everything one deploy needs; defaults are the original ecs-deploy's."""

    name: str
    cluster: str | None = None
    service: str | None = None
    task_definition: str | None = None
    """Family (or family:revision) for a task-definition deploy."""

    image: str | None = None
    """The new image, its tag already resolved (``-e``, default ``latest``)."""
    containers: Mapping[str, str] = field(default_factory=dict)
    """Per-container images, by container name."""
    tag_only: str | None = None

    desired_count: int | None = None
    min_healthy_percent: int | None = None
    max_percent: int | None = None
    timeout: float = 90.0
    progress_deadline: float | None = None
    rollback: bool = False
    use_latest_task_def: bool = False
    force_new_deployment: bool = False
    skip_deployments_check: bool = False
    task_definition_body: Mapping[str, Any] | None = None
    """A task definition read from a file, used instead of the current revision."""
    max_definitions: int | None = None
    copy_task_definition_tags: bool = False
    skip_unchanged: bool = False
    """Leave a service alone when it already runs exactly the rendered definition.

    Plans do this; ``ecs-deploy`` does not, as the original always redeployed (so a
    moving tag such as ``latest`` is pulled again).
    """

    run_task: bool = False
    wait_for_success: bool = False
    rerun_unchanged: bool = True
    """With ``skip_unchanged``: run the task even when its revision is reused unchanged."""
    launch_type: str | None = None
    platform_version: str | None = None
    network_configuration: Mapping[str, Any] | None = None

    edits: TaskEdits = field(default_factory=TaskEdits)
    """Environment, secrets, command, sizes and roles the new revision changes."""

    scope: AwsScope = field(default_factory=AwsScope)

    depends_on: tuple[str, ...] = ()
    allow_failure: bool = False
    wave: str | None = None

    selector: Selector | None = None
    """The selector this target is, or (with ``service`` set) the one that found it."""

    @property
    def kind(self) -> TargetKind:
        return "service" if self.service or self.selector else "task_definition"

    @property
    def unexpanded(self) -> bool:
        """A selector target whose services are not found yet: never deployed as such."""
        return self.selector is not None and self.service is None


def target_as_data(target: Target) -> dict[str, Any]:
    """``target`` as JSON-ready data (a record of a run keeps it); ``target_from_data``
    gives back an equal target."""
    data = {f.name: _plain(getattr(target, f.name)) for f in fields(Target)}
    data["scope"] = asdict(target.scope)
    if target.edits:
        data["edits"] = _plain(asdict(target.edits))
    else:
        del data["edits"]
    # Absent rather than null when none: digests of listed targets stay what they were.
    del data["selector"]
    if target.selector is not None:
        data["selector"] = _plain(asdict(target.selector))
    return data


def target_from_data(data: Mapping[str, Any]) -> Target:
    """The target ``target_as_data`` made ``data`` of; TypeError names an unknown field."""
    known = {**data, "scope": AwsScope(**data.get("scope", {}))}
    known["depends_on"] = tuple(data.get("depends_on", ()))
    if "edits" in data:
        known["edits"] = _edits_from_data(data["edits"])
    if selector := data.get("selector"):
        known["selector"] = Selector(
            selector["name"], tuple(selector["clusters"]), tuple(selector.get("runs", ()))
        )
    return Target(**known)


def _edits_from_data(data: Mapping[str, Any]) -> TaskEdits:
    """Edits as ``target_as_data`` wrote them, or as a journal keeps them: with whatever
    it masked (secrets, a flag named after them) read as not given."""
    return TaskEdits(
        containers={
            name: _container_from_data(edits) for name, edits in data["containers"].items()
        },
        unnamed=_container_from_data(data["unnamed"]),
        cpu=data.get("cpu"),
        memory=data.get("memory"),
        task_role=data.get("task_role"),
        execution_role=data.get("execution_role"),
        exclusive_environment=data.get("exclusive_environment") is True,
        exclusive_secrets=data.get("exclusive_secrets") is True,
    )


def _container_from_data(data: Mapping[str, Any]) -> ContainerEdits:
    def words(key: str) -> tuple[str, ...] | None:
        return None if data.get(key) is None else tuple(data[key])

    def names(key: str) -> dict[str, Any]:
        given = data.get(key)
        return dict(given) if isinstance(given, Mapping) else {}

    return ContainerEdits(
        environment=names("environment"),
        secrets=names("secrets"),
        command=words("command"),
        entry_point=words("entry_point"),
        cpu=data.get("cpu"),
        memory=data.get("memory"),
        memory_reservation=data.get("memory_reservation"),
        docker_labels=names("docker_labels"),
        ulimits={
            name: None if limits is None else (limits[0], limits[1])
            for name, limits in names("ulimits").items()
        },
    )


def _plain(value: Any) -> Any:
    """Mappings as dicts and sequences as lists, all the way down."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
