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
    behaviour:
      images:                       # first fnmatch match on a container image wins
        - {match: "*:broken*", outcome: fail_to_start}
        - {match: "*:crashy*", outcome: crash, after: 20}
        - {match: "*:sick*", outcome: unhealthy}
        - {match: "*migrate*", outcome: "exit:3", after: 30}

Outcomes: ``ok`` (the default), ``fail_to_start`` (CannotPullContainerError, never RUNNING),
``crash`` (RUNNING, then exit code 1), ``unhealthy`` (the container health check reports
UNHEALTHY), ``exit:<code>`` (exits with that code). ``after`` is seconds after RUNNING.
Services in a fleet start steady: tasks RUNNING and healthy, one COMPLETED deployment,
unless their image is not ``ok``, in which case they start rolling out like CreateService.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ecs_deploy_many.errors import FleetError
from ecs_deploy_many.sim.model import SimError
from ecs_deploy_many.sim.taskdefs import validate_registration

__all__ = [
    "CircuitBreaker",
    "ClusterSpec",
    "Fleet",
    "FleetError",
    "ImageRule",
    "Outcome",
    "ServiceSpec",
    "TaskDefinitionSpec",
    "Timings",
    "load_fleet",
]

OutcomeKind = Literal["ok", "fail_to_start", "crash", "unhealthy", "exit"]


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


class ServiceSpec(_Model):
    name: str
    task_definition: str
    desired_count: int = Field(default=1, ge=0)
    launch_type: Literal["FARGATE", "EC2", "EXTERNAL"] = "FARGATE"
    minimum_healthy_percent: int = Field(default=100, ge=0, le=100)
    maximum_percent: int = Field(default=200, ge=100)
    circuit_breaker: CircuitBreaker = CircuitBreaker()
    health_check: bool | None = None
    timings: dict[str, float] = Field(default_factory=dict)

    @field_validator("timings")
    @classmethod
    def _known_timings(cls, value: dict[str, float]) -> dict[str, float]:
        Timings(**value)  # same names and bounds as the fleet-wide timings
        return value


class ClusterSpec(_Model):
    name: str
    region: str | None = None
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


class Fleet(_Model):
    account_id: str = Field(default="123456789012", pattern=r"^\d{12}$")
    region: str = "us-east-1"
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
        """Task definitions register as ECS would take them; services name existing ones."""
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
        return self

    def outcome_of(self, image: str) -> Outcome:
        """The first matching rule's outcome; ``ok`` when none matches."""
        for rule in self.behaviour.images:
            if fnmatch.fnmatchcase(image, rule.match):
                return rule.outcome
        return OK

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
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise FleetError(file, "", f"cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise FleetError(file, "", f"not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FleetError(file, "", "the top level must be a mapping")
    try:
        return Fleet.model_validate(data)
    except FleetError as exc:  # a cross-reference check, raised as is by the model
        raise FleetError(file, exc.key, exc.message) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise FleetError(file, _key(first["loc"]), first["msg"]) from None
