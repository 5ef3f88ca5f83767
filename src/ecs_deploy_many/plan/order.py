"""The order of a run: which wave each target is in, and what it waits for.

Wave membership rules:

- No ``waves`` key: every target is in one wave called ``all``.
- A target named exactly in a wave's ``targets`` belongs to that wave; naming it exactly
  in two waves is an error.
- Otherwise it belongs to the first wave with a glob (``fnmatch``, case-sensitive) that
  matches its name, so a last wave ``targets: ["*"]`` catches the rest.
- A target in no wave is an error: a plan with waves states the whole order. So is an
  exact name that is no target, a glob that matches no target, and a wave left empty.

``depends_on`` names targets; unknown names and cycles are errors, and so is depending
on a target of a later wave (it would never have run). Within a wave the engine starts
a target only after everything it depends on has succeeded.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from ecs_deploy_many.core.target import Target
from ecs_deploy_many.plan.checks import INVALID, did_you_mean
from ecs_deploy_many.plan.gates import alarm_gate, approval_gate
from ecs_deploy_many.plan.issues import Issues
from ecs_deploy_many.plan.model import Wave

__all__ = ["IMPLICIT_WAVE", "assign_waves", "check_dependencies", "is_glob"]

IMPLICIT_WAVE = "all"


def is_glob(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


def check_dependencies(targets: Mapping[int, Target], issues: Issues) -> None:
    """Unknown names, duplicates and cycles in ``depends_on``."""
    index = {target.name: i for i, target in targets.items()}
    for i, target in targets.items():
        seen: set[str] = set()
        for j, name in enumerate(target.depends_on):
            where = ("targets", i, "depends_on", j)
            if name not in index:
                issues.add(where, f"unknown target {name!r}{did_you_mean(name, index)}")
            elif name in seen:
                issues.add(where, f"{name!r} is listed twice")
            seen.add(name)
    graph = {t.name: tuple(d for d in t.depends_on if d in index) for t in targets.values()}
    for cycle in _cycles(graph):
        first = min(cycle, key=index.__getitem__)
        at = cycle.index(first)
        ordered = cycle[at:] + cycle[:at]
        j = targets[index[first]].depends_on.index(ordered[1 % len(ordered)])
        issues.add(
            ("targets", index[first], "depends_on", j),
            f"dependency cycle: {' -> '.join([*ordered, first])}",
        )


def _cycles(graph: Mapping[str, tuple[str, ...]]) -> list[list[str]]:
    """One cycle per back edge found by a depth-first walk (iterative: plans can be long)."""
    state: dict[str, str] = {}
    cycles: list[list[str]] = []
    for start in graph:
        if start in state:
            continue
        state[start] = "open"
        stack = [(start, iter(graph[start]))]
        while stack:
            node, edges = stack[-1]
            nxt = next(edges, None)
            if nxt is None:
                state[node] = "done"
                stack.pop()
            elif nxt not in state:
                state[nxt] = "open"
                stack.append((nxt, iter(graph[nxt])))
            elif state[nxt] == "open":
                trail = [name for name, _ in stack]
                cycles.append(trail[trail.index(nxt) :])
    return cycles


def assign_waves(
    targets: Mapping[int, Target], waves: Any, issues: Issues
) -> tuple[tuple[Wave, ...], dict[str, str]]:
    """The waves with their targets in plan order, and each target's wave by name."""
    names = [t.name for t in targets.values()]
    if waves is None:
        return (Wave(IMPLICIT_WAVE, tuple(names)),), dict.fromkeys(names, IMPLICIT_WAVE)
    if waves is INVALID or any(INVALID in (wave["name"], wave["targets"]) for wave in waves):
        return (), {}  # the problems are recorded; a partial order would only add noise
    exact = _exact_members(waves, names, issues)
    wave_of: dict[str, str] = {}
    for i, target in targets.items():
        wave = exact.get(target.name) or next(
            (
                wave["name"]
                for wave in waves
                if any(is_glob(p) and fnmatchcase(target.name, p) for p in wave["targets"])
            ),
            None,
        )
        if wave is None:
            issues.add(
                ("targets", i),
                f"{target.name!r} is in no wave; name it in one, or end with a wave"
                " whose targets are ['*']",
            )
        else:
            wave_of[target.name] = wave
    result = []
    by_name = {t.name: t for t in targets.values()}
    for k, wave in enumerate(waves):
        members = tuple(name for name in names if wave_of.get(name) == wave["name"])
        if not members and wave_of:
            issues.add(
                ("waves", k), f"wave {wave['name']!r} has no targets left (earlier waves took them)"
            )
        gated = [by_name[name] for name in members]
        result.append(
            Wave(
                wave["name"],
                members,
                wave.get("bake") or 0.0,
                alarm_gate(wave.get("alarms"), gated, ("waves", k, "alarms"), issues),
                approval_gate(wave.get("approval")),
            )
        )
    _check_wave_order(targets, wave_of, [w["name"] for w in waves], issues)
    return tuple(result), wave_of


def _exact_members(waves: list[dict[str, Any]], names: list[str], issues: Issues) -> dict[str, str]:
    """Targets named exactly by a wave, and every problem with the wave entries."""
    exact: dict[str, str] = {}
    seen_waves: set[str] = set()
    for k, wave in enumerate(waves):
        if wave["name"] in seen_waves:
            issues.add(("waves", k, "name"), f"duplicate wave name {wave['name']!r}")
        seen_waves.add(wave["name"])
        for m, pattern in enumerate(wave["targets"]):
            where = ("waves", k, "targets", m)
            if is_glob(pattern):
                if not any(fnmatchcase(name, pattern) for name in names):
                    issues.add(where, f"{pattern!r} matches no target")
            elif pattern not in names:
                issues.add(where, f"unknown target {pattern!r}{did_you_mean(pattern, names)}")
            elif pattern in exact:
                issues.add(where, f"{pattern!r} is already in wave {exact[pattern]!r}")
            else:
                exact[pattern] = wave["name"]
    return exact


def _check_wave_order(
    targets: Mapping[int, Target], wave_of: Mapping[str, str], order: list[str], issues: Issues
) -> None:
    """A dependency must be deployed in the same wave or an earlier one."""
    position = {name: k for k, name in reversed(list(enumerate(order)))}
    for i, target in targets.items():
        if target.name not in wave_of:
            continue
        mine = position[wave_of[target.name]]
        for j, dep in enumerate(target.depends_on):
            if dep in wave_of and position[wave_of[dep]] > mine:
                issues.add(
                    ("targets", i, "depends_on", j),
                    f"{dep!r} is in wave {wave_of[dep]!r}, after this target's wave"
                    f" {wave_of[target.name]!r}",
                )
