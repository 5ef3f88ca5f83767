"""``--only`` / ``--exclude``: run part of a plan without editing it.

A target runs when its name matches some ``only`` glob (or ``only`` is empty) and no
``exclude`` glob. Waves keep their order and bake; a wave left with no target is
dropped. A pattern that matches no target of the plan is an error: a typo in
``--exclude`` would otherwise deploy what it meant to protect. So is a selection that
leaves no target.

A selected target may depend on one left out. What happens is the caller's choice,
never a silent one:

- ``"refuse"`` (the default): a PlanError names each such dependency, and the choices.
- ``"include"``: the dependencies come along, and theirs, unless ``--exclude`` names them.
- ``"skip"``: the dependencies are taken as already deployed and dropped from the run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from fnmatch import fnmatchcase
from typing import Literal

from ecs_deploy_many.core.errors import PlanError, PlanIssue
from ecs_deploy_many.plan.model import Plan

__all__ = ["DependencyChoice", "select"]

DependencyChoice = Literal["refuse", "include", "skip"]
"""What to do with a dependency the selection leaves out (see the module's docstring)."""

_SKIP = "or pass --skip-dependencies if it is already deployed"


def select(
    plan: Plan,
    only: Sequence[str] = (),
    exclude: Sequence[str] = (),
    *,
    dependencies: DependencyChoice = "refuse",
) -> Plan:
    """The plan restricted to the selected targets; PlanError for what cannot be selected."""
    names = [target.name for target in plan.targets]
    unmatched = [
        PlanIssue(str(plan.source), None, option, f"{pattern!r} matches no target")
        for option, patterns in (("--only", only), ("--exclude", exclude))
        for pattern in patterns
        if not any(fnmatchcase(name, pattern) for name in names)
    ]
    if unmatched:
        raise PlanError(unmatched)

    def excluded(name: str) -> bool:
        return any(fnmatchcase(name, p) for p in exclude)

    kept = {
        name
        for name in names
        if (not only or any(fnmatchcase(name, p) for p in only)) and not excluded(name)
    }
    if not kept:
        raise PlanError(
            [PlanIssue(str(plan.source), None, "--exclude", "no target is left to run")]
        )
    if dependencies == "include":
        kept = _with_dependencies(plan, kept, excluded)
    elif dependencies == "refuse":
        _refuse_missing(plan, kept, excluded)
    return replace(
        plan,
        targets=tuple(
            replace(t, depends_on=tuple(d for d in t.depends_on if d in kept))
            for t in plan.targets
            if t.name in kept
        ),
        waves=tuple(
            replace(wave, targets=members)
            for wave in plan.waves
            if (members := tuple(name for name in wave.targets if name in kept))
        ),
    )


def _with_dependencies(plan: Plan, kept: set[str], excluded: Callable[[str], bool]) -> set[str]:
    """``kept`` and everything it depends on, directly or not, that is not excluded."""
    depends_on = {target.name: target.depends_on for target in plan.targets}
    result, pending = set(kept), list(kept)
    while pending:
        for dependency in depends_on[pending.pop()]:
            if dependency not in result and not excluded(dependency):
                result.add(dependency)
                pending.append(dependency)
    _refuse_missing(plan, result, excluded)
    return result


def _refuse_missing(plan: Plan, kept: set[str], excluded: Callable[[str], bool]) -> None:
    """A PlanError naming every dependency of a selected target that is left out."""
    issues = [
        PlanIssue(
            str(plan.source),
            None,
            "--exclude" if excluded(dependency) else "--only",
            f"{target.name!r} depends on {dependency!r}, which "
            + (
                f"--exclude leaves out: stop excluding it, {_SKIP}"
                if excluded(dependency)
                else f"--only leaves out: select it too, pass --with-dependencies, {_SKIP}"
            ),
        )
        for target in plan.targets
        if target.name in kept
        for dependency in target.depends_on
        if dependency not in kept
    ]
    if issues:
        raise PlanError(issues)
