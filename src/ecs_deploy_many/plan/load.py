"""Loading a plan is one pipeline: read, interpolate, check keys, layer defaults over
targets, resolve images and files relative to the plan, order, and build the ``Plan``.

Every stage records problems instead of raising, so one ``PlanError`` lists all of them.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ecs_deploy_many.core.errors import PlanError, PlanIssue
from ecs_deploy_many.core.ratelimit import ECS_BUCKETS, BucketSpec
from ecs_deploy_many.plan.checks import INVALID
from ecs_deploy_many.plan.document import MAX_PLAN_BYTES, line_at, read_document, size_problem
from ecs_deploy_many.plan.issues import Issues
from ecs_deploy_many.plan.model import (
    FailureBudget,
    Images,
    LockSpec,
    Notification,
    Plan,
    Polling,
)
from ecs_deploy_many.plan.order import assign_waves, check_dependencies
from ecs_deploy_many.plan.schema import PLAN
from ecs_deploy_many.plan.targets import build_targets

__all__ = ["load_plan", "parse_plan"]

_EXTENSION_PREFIX = "x-"
"""Top-level keys starting with this are ignored: a place for YAML anchors."""


def load_plan(path: str | os.PathLike[str], *, environ: Mapping[str, str]) -> Plan:
    """Read and validate the plan at ``path``; ``environ`` feeds ``${VAR}`` and ``tag_env_var``.

    Raises PlanError listing every problem found.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_PLAN_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise PlanError(
            [PlanIssue(str(path), None, "", f"cannot read the plan: {reason}")]
        ) from None
    too_large = size_problem(len(data))
    if too_large:
        raise PlanError([PlanIssue(str(path), None, "", too_large)])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Cut at the bad byte, so its line is counted in the text before it.
        before = data[: exc.start].decode("utf-8")
        line = line_at(before, len(before))
        issue = PlanIssue(
            str(path),
            line,
            "",
            f"cannot read the plan: byte 0x{data[exc.start]:02x} is not UTF-8 text;"
            " save the file as UTF-8",
        )
        raise PlanError([issue]) from None
    return parse_plan(text, source=path, environ=environ)


def parse_plan(
    text: str,
    *,
    source: str | os.PathLike[str] = "<plan>",
    environ: Mapping[str, str],
    base_dir: str | os.PathLike[str] | None = None,
) -> Plan:
    """Validate plan text; relative files resolve against ``base_dir`` (the plan's folder)."""
    source = Path(source)
    issues = Issues(str(source))
    document = read_document(text, environ, issues)
    if document is None:
        issues.fail()
    if document.data is None:
        issues.add((), "the plan is empty", line=1)
    if document.data is None or document.data is INVALID:
        issues.fail()
    data = document.data
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if not k.startswith(_EXTENSION_PREFIX)}
    top = PLAN(data, (), issues)
    if top is INVALID:
        issues.fail()
    defaults = top.get("defaults") if isinstance(top.get("defaults"), dict) else {}
    entries = top["targets"] if isinstance(top["targets"], list) else []
    targets = build_targets(
        entries,
        defaults,
        issues,
        environ=environ,
        base_dir=Path(base_dir) if base_dir is not None else source.parent,
    )
    check_dependencies(targets, issues)
    waves, wave_of = assign_waves(targets, top.get("waves"), issues)
    concurrency = _mapping(top.get("concurrency"))
    budget = top.get("failure_budget")
    plan = Plan(
        source=source,
        targets=tuple(replace(t, wave=wave_of.get(t.name)) for t in targets.values()),
        waves=waves,
        max_parallel=concurrency.get("max_parallel") or 25,
        per_cluster=concurrency.get("per_cluster"),
        failure_budget=FailureBudget(*budget) if isinstance(budget, tuple) else FailureBudget(),
        on_failure=_value(top.get("on_failure"), "halt"),
        rate_limits=_rate_limits(_mapping(top.get("rate_limits"))),
        polling=_polling(_mapping(top.get("polling")), issues),
        lock=_lock(top.get("lock"), source),
        schedule=_value(top.get("schedule"), None),
        images=Images(**_mapping(top.get("images"))),
        notifications=_notifications(top.get("notifications")),
    )
    issues.raise_if_any()
    return plan


def _mapping(value: Any) -> dict[str, Any]:
    """A checked block, or nothing when it is absent, null or rejected."""
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if v is not None and v is not INVALID}


def _value(value: Any, default: Any) -> Any:
    return default if value is None or value is INVALID else value


def _rate_limits(overrides: Mapping[str, Any]) -> dict[str, BucketSpec]:
    """ECS's documented buckets, with the plan's ``burst`` / ``refill_per_s`` applied."""
    limits = dict(ECS_BUCKETS)
    for category, given in overrides.items():
        default = ECS_BUCKETS[category]
        limits[category] = BucketSpec(
            given.get("burst", default.burst), given.get("refill_per_s", default.refill_per_s)
        )
    return limits


def _notifications(given: Any) -> tuple[Notification, ...]:
    """The webhooks, each ``on`` its events (start and finish when not given)."""
    if not isinstance(given, list):
        return ()
    return tuple(
        Notification(**{**entry, "on": frozenset(entry["on"])} if "on" in entry else entry)
        for entry in map(_mapping, given)
        if "url" in entry  # else refused already
    )


def _lock(given: Any, source: Path) -> LockSpec | None:
    """The run lock, its name derived from the plan when none is given."""
    if not isinstance(given, dict):
        return None
    name = given.get("name")
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", source.stem)[:100] or "plan"
    if name is None and given.get("table"):
        name = stem
    elif name is None:
        where = str(source.resolve())
        name = f"{stem}-{hashlib.sha256(where.encode()).hexdigest()[:12]}"
    return LockSpec(
        name=name,
        table=given.get("table"),
        region=given.get("region"),
        lease=given.get("lease", LockSpec.lease),
    )


def _polling(given: Mapping[str, Any], issues: Issues) -> Polling:
    """Intervals; a larger ``initial_interval`` alone raises the default maximum with it."""
    initial = given.get("initial_interval", Polling.initial_interval)
    maximum = given.get("max_interval", max(Polling.max_interval, initial))
    if initial > maximum:
        issues.add(("polling", "max_interval"), f"must be at least initial_interval ({initial:g})")
    return Polling(initial, maximum)
