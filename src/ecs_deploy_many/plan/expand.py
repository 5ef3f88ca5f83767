"""A plan's selector targets replaced by the services they found: one target per match.

Finding the services needs AWS (``deploy.discover``); replacing is this pure step, shared
by a run (services just found) and a resume (the services the run journaled).

- A match is named ``<selector name>/<cluster>/<service>`` and carries every setting of
  its selector target (image, timeout, rollback ...), in the selector's place in plan
  order, in the selector's wave.
- A wave naming the selector takes all its matches; so does a ``depends_on`` naming it,
  and a selector's own ``depends_on`` holds for each match.
- A service a listed target (``service:``) deploys is left to that target: the plan said
  what to do with it by name. Two selectors finding the same service is an error: which
  image wins would be an accident of order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ecs_deploy_many.core.errors import PlanError, PlanIssue
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.plan.model import Plan

__all__ = ["Expansion", "ServiceKey", "expand_selectors", "has_selectors", "match_name"]

ServiceKey = tuple[str, str]
"""A found service: (cluster name, service name)."""


@dataclass(frozen=True)
class Expansion:
    """The expanded plan, and what each selector became."""

    plan: Plan
    matches: Mapping[str, tuple[str, ...]]
    """Each selector's name -> the names of its match targets, in plan order."""
    left_to_listed: Mapping[str, tuple[str, ...]]
    """Each selector's name -> services it found that a listed target deploys."""


def has_selectors(plan: Plan) -> bool:
    return any(target.unexpanded for target in plan.targets)


def match_name(selector: str, cluster: str, service: str) -> str:
    return f"{selector}/{cluster}/{service}"


def _cluster_name(cluster: str) -> str:
    """A cluster's name, also from its ARN."""
    return cluster.rsplit("/", 1)[-1]


def _service_name(service: str) -> str:
    return service.rsplit("/", 1)[-1]


def expand_selectors(plan: Plan, found: Mapping[str, Sequence[ServiceKey]]) -> Expansion:
    """``plan`` with each selector target replaced by one target per service ``found``
    for it (by selector name); PlanError when two selectors found the same service or
    a match's name is taken."""
    listed = {
        (t.scope, _cluster_name(t.cluster), _service_name(t.service)): t.name
        for t in plan.targets
        if t.service and t.cluster and not t.unexpanded
    }
    taken = {t.name for t in plan.targets}
    problems: list[str] = []
    owner: dict[tuple[object, str, str], str] = {}
    matches: dict[str, tuple[Target, ...]] = {}
    left: dict[str, tuple[str, ...]] = {}
    for target in plan.targets:
        if not target.unexpanded:
            continue
        mine: list[Target] = []
        skipped: list[str] = []
        for cluster, service in sorted(set(found.get(target.name, ()))):
            key = (target.scope, cluster, service)
            name = match_name(target.name, cluster, service)
            if key in listed:
                skipped.append(f"{cluster}/{service} (target {listed[key]})")
            elif key in owner:
                problems.append(
                    f"{target.name!r} and {owner[key]!r} both select {cluster}/{service}: "
                    "narrow one of them, or list the service as a target of its own"
                )
            elif name in taken:
                problems.append(f"{name!r} is found by {target.name!r} and is a listed target")
            else:
                owner[key] = target.name
                mine.append(replace(target, name=name, cluster=cluster, service=service))
        matches[target.name] = tuple(mine)
        left[target.name] = tuple(skipped)
    if problems:
        raise PlanError([PlanIssue(str(plan.source), None, "select", p) for p in problems])
    names = {selector: tuple(t.name for t in found) for selector, found in matches.items()}

    def expanded(members: Sequence[str]) -> tuple[str, ...]:
        return tuple(name for member in members for name in names.get(member, (member,)))

    targets = tuple(
        replace(match, depends_on=expanded(match.depends_on))
        for target in plan.targets
        for match in matches.get(target.name, (target,))
    )
    waves = tuple(replace(wave, targets=expanded(wave.targets)) for wave in plan.waves)
    expanded_plan = replace(plan, targets=targets, waves=tuple(w for w in waves if w.targets))
    return Expansion(expanded_plan, names, left)
