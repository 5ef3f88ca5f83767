"""``--shard K/N``: one runner's deterministic share of a plan.

Targets are split by group, never within one: a group is a scope (region, profile,
assumed role, endpoint) and a cluster, so an account's region's cluster is deployed by
one runner with its credentials, its slots and its API budget. Task-definition targets
without a cluster group by scope alone.

Groups are dealt out by balance rather than by hash: largest group first (ties by the
group's key), each to the shard with the fewest targets so far (ties to the lowest
shard). A hash of each group's key keeps a group on its shard when other groups come
and go, but with the few groups a plan usually has it often leaves one shard empty and
another with twice its share; the balanced deal gives every shard a share within one
group's size of the others. Both are computed from the plan alone, so every runner of
the same plan (after the same ``--only`` / ``--exclude``: selection comes first) gets
the same split without talking to the others.

A ``depends_on`` between targets of different shards is a plan error: no runner could
wait for the other's target. Waves keep their order within a shard; a wave left with no
target of the shard is dropped. A percentage failure budget is taken of every shard's
targets and applied as that count, so the shards share one budget (``--run-table``).
Each shard has a run lock of its own (the plan's ``lock:`` name, then ``-shard2of3``):
the shards of a run must not lock each other out, and as shards never share a group,
two runs of one plan still never change the same services at once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

from ecs_deploy_many.core.errors import PlanError, PlanIssue
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.plan.model import FailureBudget, Plan

__all__ = ["group_key", "shard", "shard_numbers", "shard_of_targets"]


def group_key(target: Target) -> str:
    """The group ``target`` is sharded with, as a stable string (it sorts the groups)."""
    scope = target.scope
    return json.dumps(
        [scope.region, scope.profile, scope.assume_role, scope.endpoint_url, target.cluster]
    )


def shard_of_targets(targets: Sequence[Target], count: int) -> dict[str, int]:
    """Each target's shard (1 to ``count``), by name: the balanced deal of the groups."""
    groups: dict[str, list[str]] = {}
    for target in targets:
        groups.setdefault(group_key(target), []).append(target.name)
    loads = [0] * count
    shards: dict[str, int] = {}
    for key in sorted(groups, key=lambda key: (-len(groups[key]), key)):
        lightest = loads.index(min(loads))
        loads[lightest] += len(groups[key])
        shards.update(dict.fromkeys(groups[key], lightest + 1))
    return shards


def shard(plan: Plan, index: int, count: int) -> Plan:
    """Shard ``index`` of ``count`` of ``plan`` (``1 <= index <= count``); PlanError when a
    target depends on one of another shard. A shard may be left with no target."""
    if not 1 <= index <= count:
        raise ValueError(f"shard {index}/{count}: K must be between 1 and N")
    shards = shard_of_targets(plan.targets, count)
    issues = [
        PlanIssue(
            str(plan.source),
            None,
            "--shard",
            f"{target.name!r} (shard {shards[target.name]}/{count}) depends on "
            f"{dependency!r} (shard {shards[dependency]}/{count}): a shard cannot wait for "
            "another's target; deploy the dependency first (--only), or use fewer shards",
        )
        for target in plan.targets
        for dependency in target.depends_on
        if shards[dependency] != shards[target.name]
    ]
    if issues:
        raise PlanError(issues)
    kept = {name for name, number in shards.items() if number == index}
    return replace(
        plan,
        targets=tuple(t for t in plan.targets if t.name in kept),
        waves=tuple(
            replace(wave, targets=members)
            for wave in plan.waves
            if (members := tuple(name for name in wave.targets if name in kept))
        ),
        failure_budget=FailureBudget(plan.max_failures),
        lock=plan.lock and replace(plan.lock, name=f"{plan.lock.name}-shard{index}of{count}"),
    )


def shard_numbers(part: str) -> tuple[int, int]:
    """``"2/3"`` (as ``--shard`` checked it) -> ``(2, 3)``."""
    index, _, count = part.partition("/")
    return int(index), int(count)
