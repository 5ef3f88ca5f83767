"""Rehearsals: a simulated fleet holding everything a plan deploys to, one release behind.

``ecs-deploy-many PLAN --simulate`` runs the plan against a simulator loaded with
:func:`fleet_for_plan`. Every cluster a target names exists in the target's region (else
the fleet's). Every service exists, steady, on revision 1 of a task-definition family of
its own whose containers run the plan's repositories at an older tag (``previous``), so
each deploy registers a real change, replaces tasks, and can fail and roll back the way
it would in ECS. A task-definition target finds its family registered, up to the
revision it names, so ``family:3`` resolves.

The family is the service's name; where two services of the plan share a name it is
``<cluster>-<service>``, and where that is shared too ``<region>-<cluster>-<service>``.

What a rehearsal cannot show is the account as it really is: no task definition or
service is read from AWS. Their shape is guessed from the plan: one container per image
the plan sets (named after the repository's last path component, or as ``containers:``
names it), a placeholder ``example/<service>`` container for ``tag_only``, the file's body
for ``task_definition_file``, a 256 CPU / 512 MiB Fargate task (not awsvpc when a one-off
task runs without a network configuration). Edits (environment, secrets, command, sizes,
roles) are made to those guessed definitions, and a container only edits name is added
to them; a service a target only scales starts one task above the target's count. So a
deploy that only works with the real
definitions (a sidecar the plan does not mention, a repository the service does not run)
is not caught, nor are IAM, capacity, load balancers or autoscaling. Services run 2 tasks
unless the plan sets a desired count, with the circuit breaker off so a failure shows the
plan's own rollback, and every image starts unless the fleet's behaviour rules say
otherwise. A fleet file passed as ``base`` wins wherever it says something: its timings,
behaviour, account, region, task definitions and services replace the guesses.

A ``select:`` target gets nothing generated: it selects among the services of the fleet
file given as ``base`` (``--fleet``), so without one it finds nothing (``cli.discovery``
says so).

What ECS would refuse, the rehearsal refuses first with a FleetError naming the plan file
and the target: a cluster or service name ECS does not allow (``api v2``), a desired count
above ECS's tasks-per-service quota, a task definition file ECS would not register.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from pydantic import ValidationError

from ecs_deploy_many.core.errors import FleetError
from ecs_deploy_many.core.images import parse_image, same_repository, with_tag
from ecs_deploy_many.core.quotas import MAX_TASKS_PER_SERVICE
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.plan.model import Plan
from ecs_deploy_many.sim.fleet import (
    REGION,
    ClusterSpec,
    Fleet,
    ServiceSpec,
    TaskDefinitionSpec,
    fleet_problem,
)
from ecs_deploy_many.sim.model import NAME, SimError
from ecs_deploy_many.sim.taskdefs import validate_registration

__all__ = ["DEFAULT_DESIRED_COUNT", "MAX_REVISION", "PREVIOUS_TAG", "fleet_for_plan"]

PREVIOUS_TAG = "previous"
"""The tag a generated container runs before the plan's deploy."""
_OLDER_TAG = "older"
"""Used instead when the plan deploys the tag ``previous`` itself, so something changes."""
DEFAULT_DESIRED_COUNT = 2
"""Tasks of a service whose target sets no desired count: enough to show a rolling update."""

MAX_REVISION = 1_000
"""The highest revision a task-definition target may name: each one up to it is registered."""
# A family made of region, cluster and service names leaves room for a "-N" suffix.
_MAX_FAMILY_STEM = 240

_TASK_SIZE = {"cpu": "256", "memory": "512"}
_FARGATE = {"networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"]}
_NOT_IN_CONTAINER_NAMES = re.compile(r"[^A-Za-z0-9_-]")


class _ServiceKey(NamedTuple):
    region: str
    cluster: str
    service: str


def fleet_for_plan(plan: Plan, base: Fleet | None = None) -> Fleet:
    """The fleet a rehearsal of ``plan`` runs against, ``base``'s content winning.

    Clusters merge by (region, name) and services by name within them; a service ``base``
    already has gets nothing generated. Raises FleetError, naming the plan file and the
    target, for what ECS would refuse.
    """
    file = str(plan.source)
    for target in plan.targets:
        _check_target(target, file)
    try:
        return _fleet_for_plan(plan, base or Fleet())
    except FleetError as exc:  # the generated fleet as a whole (every target was checked)
        raise FleetError(file, f"rehearsal fleet {exc.key}".strip(), exc.message) from None
    except ValidationError as exc:
        key, message = fleet_problem(exc)
        raise FleetError(file, f"rehearsal fleet {key}".strip(), message) from None


def _check_target(target: Target, file: str) -> None:
    """What the fleet takes from one target, checked as ECS would check it."""
    where = f"target {target.name}"
    names = {"cluster": target.cluster, "service": target.service}
    if target.task_definition:
        names["task_definition"] = _family_and_revision(target.task_definition)[0]
    for key, name in names.items():
        if name is not None and not NAME.fullmatch(name):
            raise FleetError(
                file,
                f"{where}: {key}",
                f"{name[:80]!r} is not a name ECS accepts: up to 255 letters, digits, "
                "hyphens and underscores",
            )
    region = target.scope.region
    if region is not None and not REGION.fullmatch(region):
        raise FleetError(
            file, f"{where}: region", f"{region[:80]!r} is not an AWS region name such as eu-west-1"
        )
    if target.desired_count is not None and not (
        0 <= target.desired_count <= MAX_TASKS_PER_SERVICE
    ):
        raise FleetError(
            file,
            f"{where}: desired_count",
            f"must be between 0 and {MAX_TASKS_PER_SERVICE} (ECS's tasks per service quota)",
        )
    if target.task_definition and _family_and_revision(target.task_definition)[1] > MAX_REVISION:
        raise FleetError(
            file,
            f"{where}: task_definition",
            f"a rehearsal registers every revision up to the one named; at most {MAX_REVISION}",
        )
    if target.task_definition_body is not None:
        body = {k: v for k, v in target.task_definition_body.items() if k != "family"}
        try:
            TaskDefinitionSpec(revisions=[body])
            validate_registration({**body, "family": "rehearsal"})
        except ValidationError as exc:
            raise FleetError(
                file, f"{where}: task_definition_file", fleet_problem(exc)[1]
            ) from None
        except SimError as exc:
            raise FleetError(file, f"{where}: task_definition_file", exc.message) from None


def _family_and_revision(reference: str) -> tuple[str, int]:
    """``family``, ``family:revision`` or the ARN of either; revision 1 when none is named.

    A revision past 32 bits (ECS's own bound) reads as 2**31 without converting its digits.
    """
    family, _, revision = reference.rsplit("/", 1)[-1].partition(":")
    if not (revision.isascii() and revision.isdigit()):
        return family, 1
    return family, 2**31 if len(revision.lstrip("0")) > 10 else int(revision)


def _fleet_for_plan(plan: Plan, base: Fleet) -> Fleet:
    given = {
        _ServiceKey(cluster.region or base.region, cluster.name, service.name)
        for cluster in base.clusters
        for service in cluster.services
    }
    clusters: dict[tuple[str, str], list[ServiceSpec]] = {}
    services: dict[_ServiceKey, list[Target]] = {}
    for target in plan.targets:
        if target.cluster is None:
            continue
        region = target.scope.region or base.region
        clusters.setdefault((region, target.cluster), [])
        if target.service is not None:
            key = _ServiceKey(region, target.cluster, target.service)
            if key not in given:
                services.setdefault(key, []).append(target)

    task_definitions = _task_definition_targets(plan)
    families = _family_names(services, reserved=task_definitions.keys())
    for key, targets in services.items():
        body = _body(targets, key.service, awsvpc=True)
        task_definitions[families[key]] = TaskDefinitionSpec(revisions=[body])
        clusters[key.region, key.cluster].append(
            _service(key.service, families[key], targets, body)
        )

    merged: list[ClusterSpec] = []
    for cluster in base.clusters:
        extra = clusters.pop((cluster.region or base.region, cluster.name), [])
        merged.append(cluster.model_copy(update={"services": [*cluster.services, *extra]}))
    merged += [
        ClusterSpec(name=name, region=region, services=specs)
        for (region, name), specs in clusters.items()
    ]
    return Fleet.model_validate(
        {
            **dict(base),
            "task_definitions": {**task_definitions, **base.task_definitions},
            "clusters": merged,
        }
    )


def _task_definition_targets(plan: Plan) -> dict[str, TaskDefinitionSpec]:
    """A family per task-definition target, with as many revisions as the target names."""
    targets: dict[str, list[Target]] = {}
    revisions: Counter[str] = Counter()
    for target in plan.targets:
        if target.kind != "task_definition" or not target.task_definition:
            continue
        family, revision = _family_and_revision(target.task_definition)
        targets.setdefault(family, []).append(target)
        revisions[family] = max(revisions[family], revision)
    return {
        family: TaskDefinitionSpec(
            revisions=[_body(group, family, awsvpc=_awsvpc_runs(group))] * revisions[family]
        )
        for family, group in targets.items()
    }


def _awsvpc_runs(targets: Iterable[Target]) -> bool:
    """Whether every one-off task can start on an awsvpc definition (it needs a network)."""
    return all(t.network_configuration is not None for t in targets if t.run_task)


def _family_names(
    services: Iterable[_ServiceKey], *, reserved: Iterable[str]
) -> dict[_ServiceKey, str]:
    """A distinct family per service: task definitions are registered in every region."""
    keys = list(services)
    by_name = Counter(key.service for key in keys)
    by_cluster = Counter((key.cluster, key.service) for key in keys)
    taken = set(reserved)
    names: dict[_ServiceKey, str] = {}
    for key in keys:
        if by_name[key.service] == 1:
            name = key.service
        elif by_cluster[key.cluster, key.service] == 1:
            name = f"{key.cluster}-{key.service}"
        else:
            name = f"{key.region}-{key.cluster}-{key.service}"
        names[key] = _unused(name[:_MAX_FAMILY_STEM], taken)
        taken.add(names[key])
    return names


def _unused(name: str, taken: Iterable[str]) -> str:
    """``name``, or ``name-2``, ``name-3``... whichever is not ``taken`` yet."""
    taken = set(taken)
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}-{number}", number + 1
    return candidate


def _body(targets: Sequence[Target], placeholder: str, *, awsvpc: bool) -> dict[str, Any]:
    """Revision 1 for ``targets``: a task definition file's, or one each deploy changes."""
    for target in targets:
        if target.task_definition_body is not None:
            return {
                key: copy.deepcopy(value)
                for key, value in target.task_definition_body.items()
                if key != "family"
            }
    return {
        **(_FARGATE if awsvpc else {}),
        **_TASK_SIZE,
        "containerDefinitions": [
            {"name": name, "image": image, "essential": True}
            for name, image in _previous_containers(targets, placeholder).items()
        ],
    }


def _previous_containers(targets: Sequence[Target], placeholder: str) -> dict[str, str]:
    """Container name -> an image every target's deploy will replace.

    ``containers:`` are kept by name; ``image`` needs a container running its repository
    (named after it); ``tag_only`` and a bare forced redeployment need any container.
    """
    images: dict[str, str] = {}
    for target in targets:
        for name, image in target.containers.items():
            images.setdefault(name, _previous(image))
        for name in target.edits.containers:  # edited, its image left alone
            images.setdefault(name, f"example/{_container_name(name)}:{PREVIOUS_TAG}")
        if target.image is not None and not any(
            same_repository(current, target.image) for current in images.values()
        ):
            images[_unused(_container_name(target.image), images)] = _previous(target.image)
    if not images:
        retag = next((t.tag_only for t in targets if t.tag_only is not None), None)
        images[placeholder] = f"example/{placeholder}:{_previous_tag(retag)}"
    return images


def _previous_tag(new_tag: str | None) -> str:
    return _OLDER_TAG if new_tag == PREVIOUS_TAG else PREVIOUS_TAG


def _previous(image: str) -> str:
    """``image`` one release back: same registry and repository, another tag."""
    return with_tag(image, _previous_tag(parse_image(image).tag))


def _container_name(image: str) -> str:
    """The repository's last path component, in the characters ECS allows in a name."""
    return _NOT_IN_CONTAINER_NAMES.sub("-", parse_image(image).path.rsplit("/", 1)[-1])


def _scales_only(target: Target) -> bool:
    """A target that changes a service's desired count and nothing else."""
    return not (
        target.image
        or target.containers
        or target.tag_only
        or target.edits
        or target.task_definition_body is not None
        or target.force_new_deployment
    )


def _service(
    name: str, family: str, targets: Sequence[Target], body: Mapping[str, Any]
) -> ServiceSpec:
    desired = next((t.desired_count for t in targets if t.desired_count is not None), None)
    if desired is not None and all(_scales_only(t) for t in targets):
        # a scale change to rehearse, not a service already at its count
        desired = desired + 1 if desired < MAX_TASKS_PER_SERVICE else desired - 1
    fargate = "FARGATE" in body.get("requiresCompatibilities", [])
    return ServiceSpec(
        name=name,
        task_definition=family,
        desired_count=DEFAULT_DESIRED_COUNT if desired is None else desired,
        launch_type="FARGATE" if fargate else "EC2",
    )
