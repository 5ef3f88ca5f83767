"""The simulated world: accounts, task definitions, clusters, services, timings, image rules.

A fleet is built in code (``Fleet(clusters=[...])``) or read from YAML with
:func:`load_fleet`. Fleet keys are snake_case; task-definition bodies use ECS's own JSON
spelling, exactly what RegisterTaskDefinition takes, so a real definition can be pasted in.

.. code-block:: yaml

    account_id: "123456789012"      # default 123456789012
    region: us-east-1               # default region of clusters and task definitions
    timings:                        # simulated seconds; every key optional (see Timings)
      provisioning: 10
      pending: 20
    task_definitions:
      web:                          # family -> one RegisterTaskDefinition body (revision 1)
        networkMode: awsvpc
        requiresCompatibilities: [FARGATE]
        cpu: "256"
        memory: "512"
        containerDefinitions:
          - {name: web, image: "nginx:1.25"}
      worker:
        revisions:                  # or several bodies, registered as revisions 1, 2, ...
          - {containerDefinitions: [{name: w, image: "app:1", memory: 128}]}
          - {containerDefinitions: [{name: w, image: "app:2", memory: 128}]}
    clusters:
      - name: prod
        region: eu-west-1           # default: the fleet region
        services:
          - name: api
            task_definition: web    # family (latest revision) or family:revision
            desired_count: 2        # default 1
            launch_type: FARGATE    # default FARGATE
            minimum_healthy_percent: 100   # default 100
            maximum_percent: 200           # default 200
            circuit_breaker: {enable: true, rollback: true}   # default both false
            health_check: true      # default: whether a container defines healthCheck
            timings: {pending: 5}   # per-service overrides of the fleet timings
          - name: checkout
            task_definition: web
            deployment_controller: ECS     # ECS (default), CODE_DEPLOY or EXTERNAL
            strategy: CANARY        # ROLLING (default), BLUE_GREEN, LINEAR or CANARY
            bake_time_in_minutes: 5 # 0 to 1440; default 0 [unconfirmed]
            canary: {canary_percent: 5, canary_bake_time_in_minutes: 10}  # ECS's defaults
            # linear: {step_percent: 10, step_bake_time_in_minutes: 6}    # (LINEAR only)
            alarms: {alarm_names: [checkout-5xx], enable: true, rollback: true}
    behaviour:
      images:                       # first fnmatch match on a container image wins
        - {match: "*:broken*", outcome: fail_to_start}
        - {match: "*:crashy*", outcome: crash, after: 20}
        - {match: "*:sick*", outcome: unhealthy}
        - {match: "*migrate*", outcome: "exit:3", after: 30}
      alarms:                       # in ALARM while a RUNNING service task runs a match
        - {alarm: checkout-5xx, match: "*:bad-metrics*"}

Outcomes: ``ok`` (the default), ``fail_to_start`` (CannotPullContainerError, never RUNNING),
``crash`` (RUNNING, then exit code 1), ``unhealthy`` (the container health check reports
UNHEALTHY), ``exit:<code>`` (exits with that code). ``after`` is seconds after RUNNING.
Services in a fleet start steady: tasks RUNNING and healthy, one COMPLETED deployment,
unless their image is not ``ok``, in which case they start rolling out like CreateService.

``deployment_controller`` becomes CreateService's ``deploymentController``; ``strategy``,
``bake_time_in_minutes``, ``linear``, ``canary`` and ``alarms`` its deploymentConfiguration
(``strategy``, ``bakeTimeInMinutes``, ``linearConfiguration``, ``canaryConfiguration``,
``alarms``), with ECS's bounds: step percentages in multiples of 0.1 (LINEAR from 3 to
100, CANARY from 0.1 to 100), bakes from 0 to 1440 minutes; ``linear`` and ``canary`` only
with their strategy, and a strategy other than ROLLING only under the ECS controller.
``alarms.enable`` defaults to true and ``alarms.rollback`` to false. A ``behaviour.alarms``
rule keeps its alarm in ALARM while at least one RUNNING task of any service runs an image
matching its glob, and OK once none does; see ``sim.strategies`` for what the strategies do.

Names follow ECS's rules and a service wants at most 5,000 tasks (ECS's tasks-per-service
quota). A fleet file is read within bounds, each refused with a FleetError: at most
``MAX_FLEET_BYTES``, nested at most ``MAX_FLEET_NESTING`` deep, at most
``MAX_FLEET_NODES`` values once aliases are expanded, and at most ``MAX_FLEET_TASKS``
tasks in all, since the simulator holds every task in memory (about 2 KB each).
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ecs_deploy_many.core.errors import FleetError
from ecs_deploy_many.core.quotas import MAX_TASKS_PER_SERVICE
from ecs_deploy_many.sim.model import NAME, SimError
from ecs_deploy_many.sim.strategies import (
    CANARY_BAKE,
    CANARY_PERCENT,
    LINEAR_STEP_BAKE,
    LINEAR_STEP_PERCENT,
    MAX_BAKE_MINUTES,
    is_tenths,
)
from ecs_deploy_many.sim.taskdefs import validate_registration

__all__ = [
    "MAX_FLEET_BYTES",
    "MAX_FLEET_NESTING",
    "MAX_FLEET_NODES",
    "MAX_FLEET_TASKS",
    "REGION",
    "CircuitBreaker",
    "ClusterSpec",
    "Fleet",
    "FleetError",
    "ImageRule",
    "Outcome",
    "ServiceSpec",
    "TaskDefinitionSpec",
    "Timings",
    "fleet_problem",
    "load_fleet",
]

OutcomeKind = Literal["ok", "fail_to_start", "crash", "unhealthy", "exit"]

# Bounds on a fleet file, far above any fleet a person writes (a 2,000-service fleet is
# about 200 KB), so that no file, however made, hangs the loader or exhausts memory.
MAX_FLEET_BYTES = 4 * 1024 * 1024
MAX_FLEET_NESTING = 64
MAX_FLEET_NODES = 1_000_000
MAX_FLEET_TASKS = 100_000
# libyaml's safe loader when PyYAML was built with it: the same results, ten times faster.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
REGION = re.compile(r"[a-z]{2,}(-[a-z]+)+-\d{1,2}")


def _ecs_name(value: str) -> str:
    if not NAME.fullmatch(value):
        raise ValueError(
            f"{value[:80]!r} is not a valid ECS name: up to 255 letters, digits, "
            "hyphens and underscores"
        )
    return value


def _region_name(value: str) -> str:
    if not REGION.fullmatch(value):
        raise ValueError(f"{value[:80]!r} is not an AWS region name such as eu-west-1")
    return value


EcsName = Annotated[str, AfterValidator(_ecs_name)]
# CloudWatch alarm names: 1 to 255 characters (CloudWatch API reference, PutMetricAlarm).
EcsAlarmName = Annotated[str, Field(min_length=1, max_length=255)]
RegionName = Annotated[str, AfterValidator(_region_name)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Timings(_Model):
    """How long each step of a task takes, in simulated seconds (defaults close to Fargate)."""

    provisioning: float = Field(default=10.0, ge=0)  # PROVISIONING -> PENDING (ENI attached)
    pending: float = Field(default=20.0, ge=0)  # PENDING -> ACTIVATING (image pull)
    activating: float = Field(default=2.0, ge=0)  # ACTIVATING -> RUNNING
    health_grace: float = Field(default=40.0, ge=0)  # RUNNING -> healthy without a health check
    health_check: float = Field(default=30.0, ge=0)  # RUNNING -> HEALTHY/UNHEALTHY with one
    deactivating: float = Field(default=2.0, ge=0)  # DEACTIVATING -> STOPPING
    stopping: float = Field(default=10.0, ge=0)  # STOPPING -> DEPROVISIONING (SIGTERM, exit)
    deprovisioning: float = Field(default=10.0, ge=0)  # DEPROVISIONING -> STOPPED
    crash_after: float = Field(default=60.0, ge=0)  # RUNNING -> exit 1 for `crash` images
    run_duration: float = Field(default=30.0, ge=0)  # RUNNING -> exit for one-off tasks
    stopped_retention: float = Field(default=3600.0, ge=0)  # STOPPED tasks stay describable
    # Each blue/green lifecycle stage without a wait of its own (see sim.strategies).
    lifecycle_stage: float = Field(default=5.0, ge=0)


class Outcome(_Model):
    """What a container image does once started."""

    kind: OutcomeKind = "ok"
    exit_code: int | None = None  # for kind "exit"
    after: float | None = Field(
        default=None, ge=0
    )  # seconds after RUNNING; None: the timing default

    @classmethod
    def parse(cls, text: str, after: float | None = None) -> Outcome:
        """Read ``ok``, ``crash``, ``exit:3``...: the spelling used in fleet files."""
        kind, _, code = text.partition(":")
        if kind == "exit":
            try:
                return cls(kind="exit", exit_code=int(code), after=after)
            except ValueError:
                raise ValueError(f"exit outcome needs an integer code, got {text!r}") from None
        if code or kind not in ("ok", "fail_to_start", "crash", "unhealthy"):
            raise ValueError(
                f"unknown outcome {text!r}; expected ok, fail_to_start, crash, unhealthy "
                "or exit:<code>"
            )
        return cls(kind=kind, after=after)  # type: ignore[arg-type]


OK = Outcome()


class ImageRule(_Model):
    """Containers whose image matches ``match`` (fnmatch glob) behave as ``outcome``.

    Fleet files spell the outcome as text with an optional ``after`` beside it.
    """

    match: str
    outcome: Outcome = OK

    @model_validator(mode="before")
    @classmethod
    def _outcome_from_text(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("outcome", "ok"), str):
            rest = {k: v for k, v in data.items() if k not in ("outcome", "after")}
            return {**rest, "outcome": Outcome.parse(data.get("outcome", "ok"), data.get("after"))}
        return data


class CircuitBreaker(_Model):
    enable: bool = False
    rollback: bool = False


def _tenths(value: float) -> float:
    if not is_tenths(value):
        raise ValueError(f"{value} is not a multiple of 0.1")
    return value


Tenths = Annotated[float, AfterValidator(_tenths)]


class Linear(_Model):
    """linearConfiguration: ECS's bounds and defaults (API reference, LinearConfiguration)."""

    step_percent: Tenths = Field(default=LINEAR_STEP_PERCENT, ge=3.0, le=100.0)
    step_bake_time_in_minutes: int = Field(default=LINEAR_STEP_BAKE, ge=0, le=MAX_BAKE_MINUTES)


class Canary(_Model):
    """canaryConfiguration: ECS's bounds and defaults (API reference, CanaryConfiguration)."""

    canary_percent: Tenths = Field(default=CANARY_PERCENT, ge=0.1, le=100.0)
    canary_bake_time_in_minutes: int = Field(default=CANARY_BAKE, ge=0, le=MAX_BAKE_MINUTES)


class DeploymentAlarms(_Model):
    """deploymentConfiguration.alarms; fleet files may leave out ``enable`` (true)."""

    alarm_names: list[EcsAlarmName] = Field(min_length=1)
    enable: bool = True
    rollback: bool = False


class AlarmRule(_Model):
    """The alarm ``alarm`` is in ALARM while a RUNNING task runs an image matching ``match``."""

    alarm: EcsAlarmName
    match: str


class ServiceSpec(_Model):
    name: EcsName
    task_definition: str
    desired_count: int = Field(default=1, ge=0, le=MAX_TASKS_PER_SERVICE)
    launch_type: Literal["FARGATE", "EC2", "EXTERNAL"] = "FARGATE"
    minimum_healthy_percent: int = Field(default=100, ge=0, le=100)
    maximum_percent: int = Field(default=200, ge=100)
    circuit_breaker: CircuitBreaker = CircuitBreaker()
    health_check: bool | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    deployment_controller: Literal["ECS", "CODE_DEPLOY", "EXTERNAL"] = "ECS"
    strategy: Literal["ROLLING", "BLUE_GREEN", "LINEAR", "CANARY"] = "ROLLING"
    bake_time_in_minutes: int | None = Field(default=None, ge=0, le=MAX_BAKE_MINUTES)
    linear: Linear | None = None
    canary: Canary | None = None
    alarms: DeploymentAlarms | None = None

    @model_validator(mode="after")
    def _strategy_settings_fit(self) -> ServiceSpec:
        """linear and canary belong to their strategy; strategies to the ECS controller."""
        if self.linear is not None and self.strategy != "LINEAR":
            raise ValueError("linear is only valid with strategy LINEAR")
        if self.canary is not None and self.strategy != "CANARY":
            raise ValueError("canary is only valid with strategy CANARY")
        if self.strategy != "ROLLING" and self.deployment_controller != "ECS":
            raise ValueError(
                f"strategy {self.strategy} needs deployment_controller ECS, "
                f"not {self.deployment_controller}"
            )
        return self

    def deployment_configuration(self) -> dict[str, Any]:
        """The deploymentConfiguration CreateService would be given for this service."""
        config: dict[str, Any] = {
            "minimumHealthyPercent": self.minimum_healthy_percent,
            "maximumPercent": self.maximum_percent,
            "deploymentCircuitBreaker": self.circuit_breaker.model_dump(),
            "strategy": self.strategy,
        }
        if self.bake_time_in_minutes is not None:
            config["bakeTimeInMinutes"] = self.bake_time_in_minutes
        if self.linear is not None:
            config["linearConfiguration"] = {
                "stepPercent": self.linear.step_percent,
                "stepBakeTimeInMinutes": self.linear.step_bake_time_in_minutes,
            }
        if self.canary is not None:
            config["canaryConfiguration"] = {
                "canaryPercent": self.canary.canary_percent,
                "canaryBakeTimeInMinutes": self.canary.canary_bake_time_in_minutes,
            }
        if self.alarms is not None:
            config["alarms"] = {
                "alarmNames": list(self.alarms.alarm_names),
                "enable": self.alarms.enable,
                "rollback": self.alarms.rollback,
            }
        return config

    @field_validator("timings")
    @classmethod
    def _known_timings(cls, value: dict[str, float]) -> dict[str, float]:
        Timings(**value)  # same names and bounds as the fleet-wide timings
        return value


class ClusterSpec(_Model):
    name: EcsName
    region: RegionName | None = None
    services: list[ServiceSpec] = Field(default_factory=list)


class TaskDefinitionSpec(_Model):
    """RegisterTaskDefinition bodies (without ``family``), registered in order from 1."""

    revisions: list[dict[str, Any]] = Field(min_length=1)

    @field_validator("revisions")
    @classmethod
    def _have_containers(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for number, body in enumerate(value, 1):
            containers = body.get("containerDefinitions")
            if not isinstance(containers, list) or not containers:
                raise ValueError(f"revision {number}: containerDefinitions must be a list")
            for container in containers:
                if not isinstance(container, dict) or not {"name", "image"} <= container.keys():
                    raise ValueError(f"revision {number}: each container needs name and image")
        return value


class Behaviour(_Model):
    images: list[ImageRule] = Field(default_factory=list)
    alarms: list[AlarmRule] = Field(default_factory=list)


class Fleet(_Model):
    account_id: str = Field(default="123456789012", pattern=r"^\d{12}$")
    region: RegionName = "us-east-1"
    timings: Timings = Timings()
    task_definitions: dict[str, TaskDefinitionSpec] = Field(default_factory=dict)
    clusters: list[ClusterSpec] = Field(default_factory=list)
    behaviour: Behaviour = Behaviour()

    @field_validator("task_definitions", mode="before")
    @classmethod
    def _single_body_is_one_revision(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        return {
            family: body
            if not isinstance(body, Mapping) or "revisions" in body
            else {"revisions": [body]}
            for family, body in value.items()
        }

    @model_validator(mode="after")
    def _references_resolve(self) -> Fleet:
        """Task definitions register as ECS would take them; services name existing ones,
        once per cluster, and want no more tasks in all than the simulator holds."""
        for family, spec in self.task_definitions.items():
            for number, body in enumerate(spec.revisions):
                try:
                    validate_registration({**body, "family": family})
                except SimError as exc:
                    key = f"task_definitions.{family}.revisions[{number}]"
                    raise FleetError("fleet", key, exc.message) from exc
        for index, cluster in enumerate(self.clusters):
            for number, service in enumerate(cluster.services):
                family, _, revision = service.task_definition.partition(":")
                known = self.task_definitions.get(family)
                count = len(known.revisions) if known is not None else 0
                if not count or (
                    revision and not (revision.isdigit() and 1 <= int(revision) <= count)
                ):
                    raise FleetError(
                        "fleet",
                        f"clusters[{index}].services[{number}].task_definition",
                        f"no task definition {service.task_definition!r} in task_definitions",
                    )
        self._services_are_unique()
        wanted = sum(s.desired_count for c in self.clusters for s in c.services)
        if wanted > MAX_FLEET_TASKS:
            raise FleetError(
                "fleet",
                "clusters",
                f"the services want {wanted} tasks in all; the simulator holds at most "
                f"{MAX_FLEET_TASKS} (lower some desired_count)",
            )
        return self

    def _services_are_unique(self) -> None:
        """Clusters of one name in one region are one cluster: its services are one set."""
        seen: dict[tuple[str, str, str], str] = {}
        for index, cluster in enumerate(self.clusters):
            for number, service in enumerate(cluster.services):
                where = (cluster.region or self.region, cluster.name, service.name)
                key = f"clusters[{index}].services[{number}].name"
                if (first := seen.setdefault(where, key)) != key:
                    raise FleetError(
                        "fleet",
                        key,
                        f"service {service.name!r} is already in cluster {cluster.name!r} "
                        f"(at {first})",
                    )

    def outcome_of(self, image: str) -> Outcome:
        """The first matching rule's outcome; ``ok`` when none matches."""
        for rule in self.behaviour.images:
            if fnmatch.fnmatchcase(image, rule.match):
                return rule.outcome
        return OK

    def alarms_of(self, images: list[str]) -> tuple[str, ...]:
        """The alarms a task running these images keeps in ALARM while it runs."""
        return tuple(
            dict.fromkeys(
                rule.alarm
                for rule in self.behaviour.alarms
                if any(fnmatch.fnmatchcase(image, rule.match) for image in images)
            )
        )

    def timings_for(self, service: ServiceSpec | None) -> Timings:
        """The fleet timings with a service's overrides applied."""
        if service is None or not service.timings:
            return self.timings
        return self.timings.model_copy(update=service.timings)


def _key(location: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in location:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(f".{item}" if parts else item)
    return "".join(parts)


def load_fleet(path: str | os.PathLike[str]) -> Fleet:
    """Read and validate a fleet file; every problem raises FleetError naming file and key."""
    file = str(path)
    data = _read_yaml(file)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FleetError(file, "", "the top level must be a mapping")
    try:
        return Fleet.model_validate(data)
    except FleetError as exc:  # a cross-reference check, raised as is by the model
        raise FleetError(file, exc.key, exc.message) from None
    except ValidationError as exc:
        raise FleetError(file, *fleet_problem(exc)) from None


def fleet_problem(error: ValidationError) -> tuple[str, str]:
    """The key and message of the first problem pydantic found in a fleet."""
    first = error.errors()[0]
    return _key(first["loc"]), first["msg"].removeprefix("Value error, ")


def _read_yaml(file: str) -> Any:
    """A fleet file's YAML as plain data, within the bounds in the module's docstring."""
    try:
        with open(file, "rb") as stream:
            raw = stream.read(MAX_FLEET_BYTES + 1)
    except OSError as exc:
        raise FleetError(file, "", f"cannot read: {exc.strerror or exc}") from exc
    if len(raw) > MAX_FLEET_BYTES:
        raise FleetError(file, "", f"larger than {MAX_FLEET_BYTES} bytes; is it a fleet file?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FleetError(file, "", f"not UTF-8 text (byte {exc.start})") from None
    try:
        _check_shape(text, file)
        return yaml.load(text, Loader=_LOADER)  # a safe loader, as yaml.safe_load
    except yaml.YAMLError as exc:
        raise FleetError(file, "", f"not valid YAML: {exc}") from exc
    except _UNBUILDABLE:
        raise FleetError(file, "", _unbuildable(text)) from None


# What PyYAML's constructors raise for a scalar they cannot build (``!!int abc``,
# ``!!bool maybe``, ``!!timestamp nope``, an integer of 5,000 digits).
_UNBUILDABLE = (ValueError, TypeError, KeyError, AttributeError, OverflowError)


def _unbuildable(text: str) -> str:
    """Which scalar PyYAML could not build, and where: found again one scalar at a time."""
    loader = _LOADER(text)
    try:
        nodes = [loader.get_single_node()]
        while nodes:
            node = nodes.pop()
            if isinstance(node, yaml.ScalarNode):
                try:
                    loader.construct_object(node)
                except _UNBUILDABLE:
                    line = node.start_mark.line + 1 if node.start_mark else 0
                    tag = node.tag.rsplit(":", 1)[-1]
                    shown = repr(node.value[:80]) + ("..." if len(node.value) > 80 else "")
                    return f"line {line}: cannot read {shown} as {tag}"
            elif isinstance(node, yaml.SequenceNode):
                nodes.extend(node.value)
            elif isinstance(node, yaml.MappingNode):
                nodes.extend(item for pair in node.value for item in pair)
    finally:
        loader.dispose()
    return "cannot read a value"


def _check_shape(text: str, file: str) -> None:
    """Refuse deep nesting and alias expansion past their bounds, from the event stream.

    PyYAML builds nested values recursively (deep nesting ends in a RecursionError) and
    shares aliased values, which validation then walks once per reference (a few hundred
    bytes of aliases to aliases make billions of values). Counting on events costs one
    pass and no recursion: each collection's expanded size is known when it ends.
    """
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, values so far) per collection
    sizes: dict[str, int] = {}  # anchor -> values it expands to
    for event in yaml.parse(text, Loader=_LOADER):
        line = event.start_mark.line + 1 if event.start_mark else 0
        if isinstance(event, yaml.CollectionStartEvent):
            if len(open_nodes) >= MAX_FLEET_NESTING:
                raise FleetError(file, "", f"line {line}: nested deeper than {MAX_FLEET_NESTING}")
            open_nodes.append((event.anchor, 1))
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            anchor, size = open_nodes.pop()
        elif isinstance(event, yaml.AliasEvent):
            if any(event.anchor == name for name, _ in open_nodes):
                raise FleetError(file, "", f"line {line}: an alias refers to a value holding it")
            anchor, size = None, sizes.get(event.anchor or "", 1)
        elif isinstance(event, yaml.ScalarEvent):
            anchor, size = event.anchor, 1
        else:
            continue
        if anchor is not None:
            sizes[anchor] = size
        if open_nodes:
            parent, held = open_nodes[-1]
            if held + size > MAX_FLEET_NODES:
                raise FleetError(
                    file,
                    "",
                    f"line {line}: more than {MAX_FLEET_NODES} values, counting each alias "
                    "as the values it repeats",
                )
            open_nodes[-1] = (parent, held + size)
