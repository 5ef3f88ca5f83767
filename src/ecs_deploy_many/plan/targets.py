"""Turn each ``targets`` entry, layered over ``defaults``, into one ``Target``.

Layering: a key written in the target wins; a key the target does not mention comes from
``defaults``; a key the target sets to ``null`` is unset, as if neither gave it (so it
falls back to the built-in default). ``NOT_GIVEN`` tells "not mentioned" from null.

Defaults apply where they fit: a default that only makes sense for services (say
``rollback``) is ignored by a task-definition target, and a default ``run_task`` is
ignored by a service target. Written in the target itself, either is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ecs_deploy_many.core.errors import ImageError, TaskDefinitionError
from ecs_deploy_many.core.images import parse_image, resolve_image, same_repository
from ecs_deploy_many.core.target import AwsScope, ContainerEdits, Selector, Target, TaskEdits
from ecs_deploy_many.plan.checks import INVALID
from ecs_deploy_many.plan.issues import Issues, KeyPath
from ecs_deploy_many.plan.schema import (
    CONTAINER_EDIT_FIELDS,
    SERVICE_ONLY,
    TARGET,
    TARGET_TIMEOUT,
    RunTask,
)
from ecs_deploy_many.plan.taskdef_file import read_task_definition_file

__all__ = ["NOT_GIVEN", "build_targets"]


class _NotGiven:
    """The key was not mentioned at all (unlike ``null``, which unsets it)."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = _NotGiven()

_COPIED = (
    "cluster",
    "service",
    "task_definition",
    "tag_only",
    "desired_count",
    "min_healthy_percent",
    "max_percent",
    "timeout",
    "progress_deadline",
    "rollback",
    "use_latest_task_def",
    "force_new_deployment",
    "skip_deployments_check",
    "max_definitions",
    "copy_task_definition_tags",
    "allow_failure",
)
_CHANGES = (
    "image",
    "containers",
    "tag_only",
    "task_definition_file",
    "force_new_deployment",
    "desired_count",
    *CONTAINER_EDIT_FIELDS,
    "task_cpu",
    "task_memory",
    "task_role",
    "execution_role",
)
_MERGED = ("environment", "secrets", "docker_labels", "ulimits")
"""Edits whose names merge over ``defaults`` name by name rather than replace them."""


@dataclass
class _Layered:
    """One target's keys over the defaults, remembering which were written in the target."""

    own: dict[str, Any]
    defaults: Mapping[str, Any]
    path: KeyPath

    def get(self, key: str) -> Any:
        """The effective value: None when unset, INVALID when given but rejected."""
        value = self.own.get(key, NOT_GIVEN)
        if value is NOT_GIVEN:
            value = self.defaults.get(key, NOT_GIVEN)
        return None if value is NOT_GIVEN else value

    def given(self, key: str) -> bool:
        value = self.get(key)
        return value is not None and value is not False and value != {}

    def written(self, key: str) -> bool:
        """Whether the target itself gave ``key`` a value (null does not count)."""
        return self.own.get(key) is not None

    def merged(self, key: str) -> dict[str, Any]:
        """A mapping of names given in defaults and in the target, the target's winning;
        null for the whole key in the target drops the defaults' too."""
        own = self.own.get(key, NOT_GIVEN)
        if own is None:
            return {}
        inherited = self.defaults.get(key)
        layers = [inherited, None if own is NOT_GIVEN else own]
        if any(layer is INVALID for layer in layers):
            return {}
        return {name: value for layer in layers if layer for name, value in layer.items()}

    def where(self, key: str) -> KeyPath:
        return (*self.path, key)

    def ok(self, key: str) -> Any:
        """The effective value, or None when it is unset or was rejected."""
        value = self.get(key)
        return None if value is INVALID else value


class _Builder:
    """Builds targets, caching task-definition files shared by several of them."""

    def __init__(self, issues: Issues, environ: Mapping[str, str], base_dir: Path) -> None:
        self.issues = issues
        self.environ = environ
        self.base_dir = base_dir
        self._files: dict[Path, dict[str, Any] | TaskDefinitionError] = {}

    def target(self, t: _Layered) -> Target | None:
        """The target, with every problem recorded; None when it has no usable name."""
        body = self._task_definition_body(t)
        family = body.get("family") if body else None
        service, task_definition = t.ok("service"), t.ok("task_definition") or family
        selects = t.written("select")
        is_service = t.given("service") or selects
        has_family = t.given("task_definition") or family is not None
        self._check_shape(t, is_service, has_family=has_family)
        if selects:
            self._check_selector(t)

        values = {key: t.ok(key) for key in _COPIED}
        values["task_definition"] = task_definition
        values["timeout"] = values["timeout"] or TARGET_TIMEOUT
        # 0 keeps every revision, as in the original ecs-deploy: no cleanup at all.
        values["max_definitions"] = values["max_definitions"] or None
        if not is_service:
            values.update(dict.fromkeys(SERVICE_ONLY))
        run = None if is_service else t.ok("run_task")
        if isinstance(run, RunTask):
            values.update(vars(run), run_task=True)
        name = t.ok("name") or _derived_name(t.ok("cluster"), service, task_definition)
        if name is None:
            return None
        selector = _selector(name, t.ok("select")) if selects else None
        if selector is not None:
            values["cluster"] = None  # a default cluster: the selector names its own
        return Target(
            name=name,
            **{key: value for key, value in values.items() if value is not None},
            image=self._image(t, "image", t.ok("image")),
            containers={
                name: self._image(t, "containers", image, name)
                for name, image in _container_images(t.ok("containers")).items()
            },
            edits=_edits(t),
            task_definition_body=body,
            scope=AwsScope(t.ok("region"), t.ok("profile"), t.ok("assume_role")),
            depends_on=tuple(t.ok("depends_on") or ()),
            selector=selector,
            # A plan converges: a service already on the rendered definition is left
            # alone (force_new_deployment redeploys it anyway).
            skip_unchanged=True,
        )

    def _check_shape(self, t: _Layered, is_service: bool, *, has_family: bool) -> None:
        """The combinations the original tool rejects, and a few it should have."""
        add = self.issues.add
        if is_service and t.given("task_definition"):
            add(
                t.where("task_definition"),
                "a target deploys a service or a task definition, not both",
            )
        if not is_service and not has_family and not t.given("task_definition_file"):
            add(t.path, "a target needs service (with cluster) or task_definition")
        if is_service and not t.given("cluster") and not t.written("select"):
            add(t.where("cluster"), "required for a service target")
        if is_service and t.written("run_task") and t.given("run_task"):
            add(t.where("run_task"), "run_task needs a task_definition target, not a service")
        if not is_service and t.given("run_task") and not t.given("cluster"):
            add(t.where("cluster"), "required to run a task")
        if not is_service:
            for key in SERVICE_ONLY:
                if t.written(key):
                    add(t.where(key), f"{key} only applies to a service target")
        if not any(t.given(key) for key in _CHANGES):
            add(
                t.path,
                "nothing to deploy: give image, containers, tag_only or task_definition_file, "
                "an edit (environment, secrets, task_memory, ...), desired_count, "
                "or force_new_deployment",
            )
        if t.given("tag_only") and (t.given("image") or t.given("containers")):
            add(t.where("tag_only"), "tag_only retags every container; drop image and containers")
        if t.given("use_latest_task_def") and t.given("task_definition_file"):
            add(
                t.where("use_latest_task_def"),
                "cannot be combined with task_definition_file (both choose the base revision)",
            )

    def _check_selector(self, t: _Layered) -> None:
        """What a ``select:`` target cannot also say, and images it would misapply."""
        add = self.issues.add
        for key in ("service", "cluster", "task_definition_file"):
            if t.written(key):
                add(t.where(key), f"select finds the services: drop {key}")
        if not t.written("name"):
            add(t.path, "a select target needs a name (its matches are <name>/<cluster>/<service>)")
        given = t.ok("select") or {}
        runs = given.get("runs") or []
        if runs and t.given("tag_only"):
            add(
                t.where("tag_only"),
                "tag_only retags every container of each selected service, not only those "
                f"running {runs[0]}: write image: {runs[0]}:TAG instead",
            )
        image = t.ok("image")
        if image is None or image is INVALID:
            return
        if not runs:
            add(
                t.where("select"),
                f"with image, say which services run it: runs: {parse_image(image).path}",
            )
        elif not any(same_repository(repository, image) for repository in runs):
            add(
                t.where("image"),
                f"{image} is no image of the repositories select runs ({', '.join(runs)}):"
                " it would change no container of the services found",
            )

    def _image(self, t: _Layered, key: str, image: Any, container: str = "") -> Any:
        if image is None or image is INVALID:
            return None
        try:
            return resolve_image(image, tag_env_var=t.ok("tag_env_var"), environ=self.environ)
        except ImageError as exc:
            path = (*t.where(key), container) if container else t.where(key)
            self.issues.add(path, f"bad image {exc.image!r}: {exc.reason}")
            return None

    def _task_definition_body(self, t: _Layered) -> dict[str, Any] | None:
        relative = t.ok("task_definition_file")
        if relative is None:
            return None
        path = self.base_dir / relative
        if path not in self._files:
            try:
                self._files[path] = read_task_definition_file(path, relative, environ=self.environ)
            except TaskDefinitionError as exc:
                self._files[path] = exc
        found = self._files[path]
        if isinstance(found, TaskDefinitionError):
            self.issues.add(t.where("task_definition_file"), str(found))
            return None
        return found


def _container_images(containers: Mapping[str, Any] | None) -> dict[str, Any]:
    """The images of ``containers:``, whose values are images or mappings with one."""
    images = {}
    for name, given in (containers or {}).items():
        image = given.get("image") if isinstance(given, dict) else given
        if image is not None:
            images[name] = image
    return images


def _container_edits(given: Mapping[str, Any], merged: Mapping[str, Any]) -> ContainerEdits:
    """A container's edits from its checked keys (``merged`` for the named ones)."""
    return ContainerEdits(
        environment=merged.get("environment") or {},
        secrets=merged.get("secrets") or {},
        command=given.get("command"),
        entry_point=given.get("entry_point"),
        cpu=given.get("cpu"),
        memory=given.get("memory"),
        memory_reservation=given.get("memory_reservation"),
        docker_labels=merged.get("docker_labels") or {},
        ulimits=merged.get("ulimits") or {},
    )


def _edits(t: _Layered) -> TaskEdits:
    """The target's edits of its task definition, layered over the defaults'."""
    containers = {
        name: _container_edits(given, given)
        for name, given in (t.ok("containers") or {}).items()
        if isinstance(given, dict)
    }
    unnamed = {key: t.ok(key) for key in CONTAINER_EDIT_FIELDS}
    return TaskEdits(
        containers=containers,
        unnamed=_container_edits(unnamed, {key: t.merged(key) for key in _MERGED}),
        cpu=t.ok("task_cpu"),
        memory=t.ok("task_memory"),
        task_role=t.ok("task_role"),
        execution_role=t.ok("execution_role"),
        exclusive_environment=bool(t.ok("exclusive_environment")),
        exclusive_secrets=bool(t.ok("exclusive_secrets")),
    )


def _selector(name: str, given: Any) -> Selector | None:
    if not isinstance(given, dict) or not isinstance(given.get("clusters"), list):
        return None  # refused already
    return Selector(name, tuple(given["clusters"]), tuple(given.get("runs") or ()))


def _derived_name(
    cluster: str | None, service: str | None, task_definition: str | None
) -> str | None:
    """``cluster/service``, ``cluster/family`` or ``family``."""
    what = service or task_definition
    if what is None:
        return None
    return f"{cluster}/{what}" if cluster else what


def build_targets(
    entries: list[Any],
    defaults: Mapping[str, Any],
    issues: Issues,
    *,
    environ: Mapping[str, str],
    base_dir: Path,
) -> dict[int, Target]:
    """Targets by their index in the plan; names are unique among the ones returned."""
    builder = _Builder(issues, environ, base_dir)
    built: dict[int, Target] = {}
    first: dict[str, int] = {}
    for index, entry in enumerate(entries):
        own = INVALID if entry is INVALID else TARGET(entry, ("targets", index), issues)
        if own is INVALID:
            continue
        target = builder.target(_Layered(own, defaults, ("targets", index)))
        if target is None:
            continue
        if target.name in first:
            where = ("targets", index, "name") if own.get("name") else ("targets", index)
            issues.add(
                where,
                f"duplicate target name {target.name!r} (also targets[{first[target.name]}]);"
                " give one of them a distinct name",
            )
            continue
        first[target.name] = index
        built[index] = target
    return built
