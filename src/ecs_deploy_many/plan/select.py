"""``--only`` / ``--exclude``: run part of a plan without editing it.

A target runs when its name matches some ``only`` glob (or ``only`` is empty) and no
``exclude`` glob. A dependency on a target left out of the run counts as satisfied,
"not in this run": the dependency is dropped rather than failing the run, because the
usual reason to select is that the rest is already deployed. Waves keep their order
and bake; a wave left with no target is dropped. A pattern that matches no target of
the plan is an error: a typo in ``--exclude`` would otherwise deploy what it meant to
protect. So is a selection that leaves no target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from fnmatch import fnmatchcase

from ecs_deploy_many.errors import PlanError, PlanIssue
from ecs_deploy_many.plan.model import Plan

__all__ = ["select"]


def select(plan: Plan, only: Sequence[str] = (), exclude: Sequence[str] = ()) -> Plan:
    """The plan restricted to the selected targets; PlanError for patterns matching nothing."""
    names = [target.name for target in plan.targets]
    unmatched = [
        PlanIssue(str(plan.source), None, option, f"{pattern!r} matches no target")
        for option, patterns in (("--only", only), ("--exclude", exclude))
        for pattern in patterns
        if not any(fnmatchcase(name, pattern) for name in names)
    ]
    if unmatched:
        raise PlanError(unmatched)

    def chosen(name: str) -> bool:
        wanted = not only or any(fnmatchcase(name, p) for p in only)
        return wanted and not any(fnmatchcase(name, p) for p in exclude)

    kept = {name for name in names if chosen(name)}
    if not kept:
        raise PlanError(
            [PlanIssue(str(plan.source), None, "--exclude", "no target is left to run")]
        )
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
