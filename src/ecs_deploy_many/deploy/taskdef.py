"""Task definitions: what may be registered again, rendering a new revision, comparing two.

Everything here is pure: it takes plain dicts as DescribeTaskDefinition returns them (or as
a file holds them) and returns new dicts, never touching its input.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ecs_deploy_many.core.ecs_api import registration_input
from ecs_deploy_many.core.errors import TaskDefinitionError
from ecs_deploy_many.core.images import parse_image, same_repository, with_tag
from ecs_deploy_many.core.target import ContainerEdits, TaskEdits

__all__ = [
    "ContainerChange",
    "RenderedTaskDefinition",
    "apply_edits",
    "diff_task_definitions",
    "fingerprint",
    "render_task_definition",
    "same_content",
]


@dataclass(frozen=True)
class ContainerChange:
    """One container whose image the rendering changed."""

    name: str
    old_image: str | None
    new_image: str


@dataclass(frozen=True)
class RenderedTaskDefinition:
    """A registration input ready for RegisterTaskDefinition, and what changed in it."""

    definition: dict[str, Any]
    changes: tuple[ContainerChange, ...]
    """Containers whose image actually differs, in task-definition order."""
    images: tuple[str, ...] = ()
    """Every image the rendering set, changed or not, once each in container order."""


def _family(definition: Mapping[str, Any]) -> str:
    return str(definition.get("family", "?"))


def _containers_by_name(definition: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    containers = definition.get("containerDefinitions")
    if not isinstance(containers, list) or not containers:
        raise TaskDefinitionError(
            f"task definition {_family(definition)!r} has no containerDefinitions"
        )
    by_name: dict[str, dict[str, Any]] = {}
    for container in containers:
        if not isinstance(container, dict) or not isinstance(container.get("name"), str):
            raise TaskDefinitionError(
                f"task definition {_family(definition)!r} has a container without a name"
            )
        by_name[container["name"]] = container
    return by_name


def _current_image(definition: Mapping[str, Any], name: str, container: Mapping[str, Any]) -> str:
    image = container.get("image")
    if not isinstance(image, str):
        raise TaskDefinitionError(
            f"container {name!r} of task definition {_family(definition)!r} has no image"
        )
    return image


def _images_list(by_name: Mapping[str, Mapping[str, Any]]) -> str:
    return ", ".join(f"{name}={container.get('image')}" for name, container in by_name.items())


def _matching(
    definition: Mapping[str, Any], by_name: Mapping[str, Mapping[str, Any]], image: str
) -> dict[str, str]:
    """Every container running the new image's repository, whatever its tag or digest."""
    matched = {
        name: image
        for name, container in by_name.items()
        if isinstance(container.get("image"), str) and same_repository(container["image"], image)
    }
    if not matched:
        raise TaskDefinitionError(
            f"no container of task definition {_family(definition)!r} runs repository "
            f"{parse_image(image).repository!r}; its images: {_images_list(by_name)}"
        )
    return matched


def _refuse_unknown(
    definition: Mapping[str, Any], by_name: Mapping[str, Any], names: Iterable[str]
) -> None:
    """A TaskDefinitionError naming the containers of ``names`` the definition lacks."""
    unknown = sorted(set(names) - set(by_name))
    if unknown:
        raise TaskDefinitionError(
            f"task definition {_family(definition)!r} has no container named "
            f"{', '.join(unknown)}; its containers: {', '.join(by_name)}"
        )


def _named(
    definition: Mapping[str, Any],
    by_name: Mapping[str, Mapping[str, Any]],
    containers: Mapping[str, str],
) -> dict[str, str]:
    _refuse_unknown(definition, by_name, containers)
    for image in containers.values():
        parse_image(image)
    return dict(containers)


def render_task_definition(
    base: Mapping[str, Any],
    *,
    image: str | None = None,
    containers: Mapping[str, str] | None = None,
    tag_only: str | None = None,
    tags: Sequence[Mapping[str, str]] | None = None,
    pins: Mapping[str, str] | None = None,
    edits: TaskEdits | None = None,
) -> RenderedTaskDefinition:
    """The registration input for a new revision of ``base`` with new images and ``edits``.

    ``image`` goes to every container running its repository; ``containers`` sets images
    by container name and wins over ``image`` where both apply; ``tag_only`` retags every
    container and combines with neither. With none of them the definition is registered
    as it is (a task definition file, say). ``tags`` replace the registration's tags.
    ``pins`` maps an image the rendering sets to the image it becomes instead (the same
    image by digest). ``edits`` change the rest (``apply_edits``); edits given without a
    container name go to the containers ``image`` and ``containers`` set images of, or to
    the only container.
    """
    if tag_only is not None and (image is not None or containers):
        raise ValueError("tag_only cannot be combined with image or containers")
    definition = registration_input(base)
    by_name = _containers_by_name(definition)
    new_images: dict[str, str] = {}
    if tag_only is not None:
        new_images = {
            name: with_tag(_current_image(definition, name, container), tag_only)
            for name, container in by_name.items()
        }
    if image is not None:
        new_images |= _matching(definition, by_name, image)
    if containers:
        new_images |= _named(definition, by_name, containers)
    if pins:
        new_images = {name: pins.get(image, image) for name, image in new_images.items()}
    if edits:
        imaged = {**(_matching(definition, by_name, image) if image else {}), **(containers or {})}
        apply_edits(definition, edits, account_arn=base.get("taskDefinitionArn"), imaged=imaged)

    changes: list[ContainerChange] = []
    for name, container in by_name.items():
        old_image = container.get("image")
        if name in new_images and new_images[name] != old_image:
            container["image"] = new_images[name]
            changes.append(ContainerChange(name, old_image, new_images[name]))
    if tags is not None:
        definition["tags"] = [dict(tag) for tag in tags]
    return RenderedTaskDefinition(
        definition, tuple(changes), tuple(dict.fromkeys(new_images.values()))
    )


def apply_edits(
    definition: dict[str, Any],
    edits: TaskEdits,
    *,
    account_arn: str | None = None,
    imaged: Iterable[str] = (),
) -> None:
    """Change ``definition`` (a registration input) in place as ``edits`` say.

    ``account_arn`` is any ARN of the definition's account (its ``taskDefinitionArn``):
    a role given by name becomes a role ARN of that account. ``imaged`` names the
    containers the target's image updates, which take the edits given without a name.
    """
    by_name = _containers_by_name(definition)
    per_container = dict(edits.containers)
    if edits.unnamed:
        for name in _unnamed_targets(definition, by_name, list(imaged)):
            per_container[name] = _merged(edits.unnamed, per_container.get(name))
    _refuse_unknown(definition, by_name, per_container)
    for name, container_edits in per_container.items():
        _edit_container(by_name[name], container_edits, edits)
    if edits.cpu is not None:
        definition["cpu"] = edits.cpu
    if edits.memory is not None:
        definition["memory"] = edits.memory
    for key, role in (("taskRoleArn", edits.task_role), ("executionRoleArn", edits.execution_role)):
        if role is not None:
            definition[key] = _role_arn(role, account_arn, definition)


def _unnamed_targets(
    definition: Mapping[str, Any], by_name: Mapping[str, Any], imaged: list[str]
) -> list[str]:
    """The containers that take edits written without a container name."""
    if imaged:
        return imaged
    if len(by_name) == 1:
        return list(by_name)
    raise TaskDefinitionError(
        f"task definition {_family(definition)!r} has {len(by_name)} containers "
        f"({', '.join(by_name)}) and the target sets the image of none of them: say which "
        "container the environment, secrets or other container settings are for, under "
        f"containers: (for example containers: {{{next(iter(by_name))}: {{environment: ...}}}})"
    )


def _merged(unnamed: ContainerEdits, named: ContainerEdits | None) -> ContainerEdits:
    """Edits given without a name under those given for the container itself."""
    if named is None:
        return unnamed
    merged: dict[str, Any] = {}
    for key in vars(unnamed):
        mine, theirs = getattr(named, key), getattr(unnamed, key)
        if isinstance(theirs, Mapping):
            merged[key] = {**theirs, **mine}
        else:
            merged[key] = theirs if mine is None else mine
    return ContainerEdits(**merged)


_ROLE_NAME = re.compile(r"[\w+=,.@/-]{1,512}")
_ACCOUNT_ARN = re.compile(r"arn:(aws[a-z-]*):[a-z-]+:[a-z0-9-]*:([0-9]{12}):")


def _role_arn(role: str, account_arn: str | None, definition: Mapping[str, Any]) -> str:
    """``role`` as an ARN: as given when it is one, else a role of ``account_arn``'s account."""
    if role.startswith("arn:"):
        return role
    account = _ACCOUNT_ARN.match(account_arn or "")
    if account is None or not _ROLE_NAME.fullmatch(role):
        raise TaskDefinitionError(
            f"role {role!r} of task definition {_family(definition)!r}: give the role's ARN "
            "(arn:aws:iam::123456789012:role/name); a bare role name works only when the "
            "task definition's account is known (not from a task definition file)"
        )
    return f"arn:{account[1]}:iam::{account[2]}:role/{role}"


def _edit_container(container: dict[str, Any], edits: ContainerEdits, task: TaskEdits) -> None:
    _edit_pairs(
        container, "environment", "value", edits.environment, exclusive=task.exclusive_environment
    )
    _edit_pairs(container, "secrets", "valueFrom", edits.secrets, exclusive=task.exclusive_secrets)
    for key, words in (("command", edits.command), ("entryPoint", edits.entry_point)):
        if words is not None:
            container[key] = list(words)
    for key, size in (
        ("cpu", edits.cpu),
        ("memory", edits.memory),
        ("memoryReservation", edits.memory_reservation),
    ):
        if size is not None:
            container[key] = size
    if edits.docker_labels:
        labels = {**(container.get("dockerLabels") or {}), **edits.docker_labels}
        container["dockerLabels"] = {k: v for k, v in labels.items() if v is not None}
    if edits.ulimits:
        ulimits = {u.get("name"): u for u in container.get("ulimits") or []}
        for name, limits in edits.ulimits.items():
            if limits is None:
                ulimits.pop(name, None)
            else:
                ulimits[name] = {"name": name, "softLimit": limits[0], "hardLimit": limits[1]}
        container["ulimits"] = list(ulimits.values())


def _edit_pairs(
    container: dict[str, Any],
    key: str,
    value_key: str,
    given: Mapping[str, str | None],
    *,
    exclusive: bool,
) -> None:
    """Set and remove name/value pairs, keeping the order of those that stay.

    ``exclusive``: names not given are removed too (only when some are given: a
    container without edits of this kind keeps what it has).
    """
    if not given:
        return
    pairs = {p.get("name"): p for p in container.get(key) or [] if isinstance(p, dict)}
    if exclusive:
        pairs = {name: pair for name, pair in pairs.items() if name in given}
    for name, value in given.items():
        if value is None:
            pairs.pop(name, None)
        else:
            pairs[name] = {"name": name, value_key: value}
    container[key] = list(pairs.values())


def fingerprint(definition: Mapping[str, Any]) -> str:
    """A hash of a registration input, equal for equal inputs whatever their key order.

    Targets whose rendered definitions share a fingerprint can share one registration.
    """
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


# What ECS fills in when a key is left out, and so means the same as leaving it out.
# Beyond these, None and empty lists or objects (portMappings, environment, mountPoints,
# volumesFrom, systemControls, volumes, placementConstraints, ...) count as absent.
_TASK_DEFAULTS: Mapping[str, object] = {"networkMode": "bridge"}
_CONTAINER_DEFAULTS: Mapping[str, object] = {
    "essential": True,
    "cpu": 0,
    "versionConsistency": "enabled",
}
# Port mappings: protocol "tcp"; hostPort 0 (a dynamic port); and in awsvpc or host mode
# a hostPort equal to containerPort, which ECS writes in when it was left out.
_HOST_PORT_IS_CONTAINER_PORT = frozenset({"awsvpc", "host"})


def _prune(value: Any) -> Any:
    """Drop None and empty lists and objects from every object, at any depth."""
    if isinstance(value, dict):
        pruned = {key: _prune(item) for key, item in value.items()}
        return {
            key: item for key, item in pruned.items() if item is not None and item not in ([], {})
        }
    if isinstance(value, list):
        return [_prune(item) for item in value]
    return value


def _without_defaults(obj: Mapping[str, Any], defaults: Mapping[str, object]) -> dict[str, Any]:
    return {
        key: value for key, value in obj.items() if key not in defaults or defaults[key] != value
    }


def _normalise_port(mapping: Any, network_mode: object) -> Any:
    if not isinstance(mapping, dict):
        return mapping
    result = _without_defaults(mapping, {"protocol": "tcp", "hostPort": 0})
    host_port = result.get("hostPort")
    if network_mode in _HOST_PORT_IS_CONTAINER_PORT and host_port == result.get("containerPort"):
        result.pop("hostPort", None)
    return result


def _normalise_container(container: Any, network_mode: object) -> Any:
    if not isinstance(container, dict):
        return container
    result = _without_defaults(container, _CONTAINER_DEFAULTS)
    if isinstance(result.get("portMappings"), list):
        result["portMappings"] = [_normalise_port(m, network_mode) for m in result["portMappings"]]
    return result


def _normalise(definition: Mapping[str, Any]) -> dict[str, Any]:
    """A definition's registerable content with everything ECS would fill in removed."""
    result = _without_defaults(registration_input(definition), _TASK_DEFAULTS)
    network_mode = definition.get("networkMode", _TASK_DEFAULTS["networkMode"])
    if isinstance(result.get("containerDefinitions"), list):
        result["containerDefinitions"] = [
            _normalise_container(c, network_mode) for c in result["containerDefinitions"]
        ]
    pruned: dict[str, Any] = _prune(result)
    return pruned


def same_content(described: Mapping[str, Any], rendered: Mapping[str, Any]) -> bool:
    """Whether the revision ECS describes already holds exactly the rendered definition.

    ECS's filled-in defaults and read-only keys are ignored, and so are tags: they can be
    changed on a revision in place, so they never make a new revision necessary.
    """
    old, new = _normalise(described), _normalise(rendered)
    old.pop("tags", None)
    new.pop("tags", None)
    return old == new


# Lists of name/value pairs, diffed by name. Secret ones never show their values.
_PAIR_LISTS: Mapping[str, tuple[str, str, bool]] = {
    "environment": ("name", "value", True),
    "secrets": ("name", "valueFrom", True),
    "secretOptions": ("name", "valueFrom", True),
    "tags": ("key", "value", False),
}


class _Absent:
    """A key missing on one side of a diff; falsy, so it reads as an empty object."""

    def __bool__(self) -> bool:
        return False


_ABSENT = _Absent()


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def _pairs(items: Any, name_key: str, value_key: str) -> dict[str, Any] | None:
    """A list of pairs as a dict, or None when it is not one."""
    if not isinstance(items, list):
        return None
    pairs: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get(name_key), str):
            return None
        pairs[item[name_key]] = item.get(value_key)
    return pairs


def _diff_pairs(path: str, field: str, old: Any, new: Any) -> Iterator[tuple[str, str]]:
    name_key, value_key, secret = _PAIR_LISTS[field]
    before = _pairs([] if old is _ABSENT else old, name_key, value_key)
    after = _pairs([] if new is _ABSENT else new, name_key, value_key)
    if before is None or after is None:
        yield path, "changed" if secret else f"{_show(old)} -> {_show(new)}"
        return
    for name in [*before, *(name for name in after if name not in before)]:
        old_value, new_value = before.get(name, _ABSENT), after.get(name, _ABSENT)
        if old_value == new_value:
            continue
        if not secret:
            yield f"{path} {name}", f"{_show(old_value)} -> {_show(new_value)}"
        elif old_value is _ABSENT:
            yield f"{path} {name}", "added"
        elif new_value is _ABSENT:
            yield f"{path} {name}", "removed"
        else:
            yield f"{path} {name}", "changed"


def _diff(path: str, old: Any, new: Any) -> Iterator[tuple[str, str]]:
    """(path, what changed) for every difference between two values, at any depth."""
    if old == new:
        return
    field = path.rpartition(".")[2]
    if field in _PAIR_LISTS:
        yield from _diff_pairs(path, field, old, new)
    elif isinstance(old, dict | _Absent) and isinstance(new, dict | _Absent):
        # An object that appears or disappears is walked too, so nothing secret in it shows.
        old, new = old or {}, new or {}
        # A container's image first: it is what a deploy is about.
        for key in sorted(old.keys() | new.keys(), key=lambda k: (k != "image", k)):
            sub = f"{path}.{key}" if path else key
            yield from _diff(sub, old.get(key, _ABSENT), new.get(key, _ABSENT))
    else:
        yield path, f"{_show(old)} -> {_show(new)}"


def diff_task_definitions(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Readable lines saying what a new revision changes, for a dry run.

    Containers are compared by name, the rest key by key (``cpu: 256 -> 512``). ECS's
    defaults and read-only keys are ignored. Environment and secret values are never
    shown, only which names were added, removed or changed.
    """
    before, after = _normalise(old), _normalise(new)
    old_containers, new_containers = _containers_by_name(before), _containers_by_name(after)
    lines: list[str] = []
    for name in [*old_containers, *(n for n in new_containers if n not in old_containers)]:
        if name not in new_containers:
            lines.append(f"container {name}: removed")
        elif name not in old_containers:
            lines.append(f"container {name}: added, image {new_containers[name].get('image')}")
        else:
            lines.extend(
                f"container {name}: {path} {change}"
                for path, change in _diff("", old_containers[name], new_containers[name])
            )
    before.pop("containerDefinitions", None)
    after.pop("containerDefinitions", None)
    lines.extend(f"{path}: {change}" for path, change in _diff("", before, after))
    return lines
