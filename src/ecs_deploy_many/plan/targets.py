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
from ecs_deploy_many.core.images import resolve_image
from ecs_deploy_many.core.target import AwsScope, Target
from ecs_deploy_many.plan.checks import INVALID
from ecs_deploy_many.plan.issues import Issues, KeyPath
from ecs_deploy_many.plan.schema import SERVICE_ONLY, TARGET, TARGET_TIMEOUT, RunTask
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
_CHANGES = ("image", "containers", "tag_only", "task_definition_file", "force_new_deployment")


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
        is_service = t.given("service")
        has_family = t.given("task_definition") or family is not None
        self._check_shape(t, is_service, has_family=has_family)

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
        return Target(
            name=name,
            **{key: value for key, value in values.items() if value is not None},
            image=self._image(t, "image", t.ok("image")),
            containers={
                container: self._image(t, "containers", image, container)
                for container, image in (t.ok("containers") or {}).items()
            },
            task_definition_body=body,
            scope=AwsScope(t.ok("region"), t.ok("profile"), t.ok("assume_role")),
            depends_on=tuple(t.ok("depends_on") or ()),
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
        if is_service and not t.given("cluster"):
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
            add(t.path, f"nothing to deploy: give one of {', '.join(_CHANGES)}")
        if t.given("tag_only") and (t.given("image") or t.given("containers")):
            add(t.where("tag_only"), "tag_only retags every container; drop image and containers")
        if t.given("use_latest_task_def") and t.given("task_definition_file"):
            add(
                t.where("use_latest_task_def"),
                "cannot be combined with task_definition_file (both choose the base revision)",
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
