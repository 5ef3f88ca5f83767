"""--shard K/N: every target in exactly one shard, groups whole, the same split each time."""

from __future__ import annotations

import textwrap
from dataclasses import replace

import pytest

from ecs_deploy_many.core.errors import PlanError
from ecs_deploy_many.plan import FailureBudget, Plan, parse_plan, select, shard
from ecs_deploy_many.plan.shard import group_key, shard_of_targets

FLEET = """\
version: 1
defaults: {image: app:1, region: eu-west-1}
failure_budget: 20%
targets:
  - {cluster: eu, service: api}
  - {cluster: eu, service: web}
  - {cluster: eu, service: worker}
  - {cluster: us, service: api, region: us-east-1}
  - {cluster: us, service: web, region: us-east-1}
  - {cluster: eu, service: api, name: prod-eu/api, profile: prod}
  - {cluster: eu, service: api, name: prod-role/api,
     assume_role: "arn:aws:iam::123456789012:role/deploy"}
  - {task_definition: migrate}
  - {task_definition: report}
  - {task_definition: cron, region: us-east-1}
waves:
  - {name: first, targets: [eu/api, us/api, migrate]}
  - {name: rest, targets: ["*"]}
"""


def load(text: str = FLEET) -> Plan:
    return parse_plan(textwrap.dedent(text), source="plan.yaml", environ={})


def names(plan: Plan) -> list[str]:
    return [target.name for target in plan.targets]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 12])
def test_every_target_is_in_exactly_one_shard_and_groups_stay_whole(count: int) -> None:
    plan = load()
    shards = [shard(plan, index, count) for index in range(1, count + 1)]
    seen = [name for part in shards for name in names(part)]
    assert sorted(seen) == sorted(names(plan))
    assert len(seen) == len(set(seen))
    for part in shards:  # a group never spans two shards
        groups = {group_key(target) for target in part.targets}
        for other in shards:
            if other is not part:
                assert groups.isdisjoint(group_key(target) for target in other.targets)
        assert names(part) == [n for n in names(plan) if n in set(names(part))]  # plan order


def test_groups_are_scope_region_and_cluster() -> None:
    plan = load()
    groups: dict[str, list[str]] = {}
    for target in plan.targets:
        groups.setdefault(group_key(target), []).append(target.name)
    assert sorted(groups.values()) == sorted(
        [
            ["eu/api", "eu/web", "eu/worker"],
            ["us/api", "us/web"],  # same cluster name, another region
            ["prod-eu/api"],  # same cluster and region, another profile
            ["prod-role/api"],  # another role
            ["migrate", "report"],  # no cluster: scope and region
            ["cron"],
        ]
    )


@pytest.mark.parametrize(
    ("count", "split"),
    [
        (1, [10]),
        (2, [5, 5]),  # 3+1+1 | 2+2+1
        (3, [4, 3, 3]),  # 3+1 | 2+1 | 2+1
        (6, [3, 2, 2, 1, 1, 1]),
        (8, [3, 2, 2, 1, 1, 1, 0, 0]),  # more shards than groups: some have nothing
    ],
)
def test_the_deal_is_balanced_and_the_same_every_time(count: int, split: list[int]) -> None:
    plan = load()
    first = shard_of_targets(plan.targets, count)
    assert [list(first.values()).count(k) for k in range(1, count + 1)] == split
    reordered = tuple(reversed(plan.targets))  # the deal depends on the groups, not order
    assert shard_of_targets(reordered, count) == first
    assert shard_of_targets(plan.targets, count) == first


def test_waves_keep_their_order_and_empty_ones_are_dropped() -> None:
    plan = load()
    shards = shard_of_targets(plan.targets, 2)
    index = shards["eu/api"]
    part = shard(plan, index, 2)
    for wave in part.waves:
        assert wave.targets
        assert all(shards[name] == index for name in wave.targets)
    assert [wave.name for wave in part.waves] == ["first", "rest"]
    only_rest = select(plan, exclude=["eu/api", "us/api", "migrate"])
    other = shard(only_rest, 1, 2)
    assert [wave.name for wave in other.waves] == ["rest"]


def test_a_percentage_budget_is_taken_of_every_shard_s_targets() -> None:
    plan = load()  # 20% of 10 targets: 2
    assert plan.max_failures == 2
    for index in (1, 2, 3):
        part = shard(plan, index, 3)
        assert part.failure_budget == FailureBudget(2)
        assert part.max_failures == 2


def test_selection_comes_first() -> None:
    plan = select(load(), only=["eu/*", "us/*"])
    parts = [shard(plan, index, 2) for index in (1, 2)]
    assert sorted(n for part in parts for n in names(part)) == sorted(names(plan))
    assert {len(part.targets) for part in parts} == {3, 2}


def test_a_dependency_across_shards_is_a_plan_error_naming_both() -> None:
    text = FLEET.replace("{cluster: us, service: web, region: us-east-1}", "{cluster: us, "
                         "service: web, region: us-east-1, depends_on: [eu/web]}")  # fmt: skip
    plan = load(text)
    shards = shard_of_targets(plan.targets, 2)
    assert shards["us/web"] != shards["eu/web"]
    for index in (1, 2):  # every shard refuses, the same way
        with pytest.raises(PlanError) as caught:
            shard(plan, index, 2)
        assert [str(issue) for issue in caught.value.issues] == [
            f"plan.yaml: --shard: 'us/web' (shard {shards['us/web']}/2) depends on 'eu/web' "
            f"(shard {shards['eu/web']}/2): a shard cannot wait for another's target; deploy "
            "the dependency first (--only), or use fewer shards"
        ]
    assert names(shard(plan, 1, 1)) == names(plan)  # one shard: nothing crosses


def test_a_dependency_within_a_group_is_kept() -> None:
    text = FLEET.replace("{cluster: eu, service: worker}", "{cluster: eu, service: worker, "
                         "depends_on: [eu/api]}")  # fmt: skip
    plan = load(text)
    part = next(p for p in (shard(plan, k, 3) for k in (1, 2, 3)) if "eu/worker" in names(p))
    assert part.target("eu/worker").depends_on == ("eu/api",)


def test_k_must_be_within_n() -> None:
    plan = load()
    for index, count in ((0, 2), (3, 2)):
        with pytest.raises(ValueError, match="K must be between 1 and N"):
            shard(plan, index, count)


def test_an_empty_plan_shard_keeps_its_policies() -> None:
    plan = load()
    part = shard(plan, 8, 8)
    assert part.targets == ()
    assert part.waves == ()
    restored = replace(
        part, targets=plan.targets, waves=plan.waves, failure_budget=plan.failure_budget
    )
    assert restored == plan


def test_each_shard_has_a_run_lock_of_its_own() -> None:
    plan = load(FLEET + "lock: {name: release, table: locks}\n")
    assert [shard(plan, k, 2).lock.name for k in (1, 2)] == [
        "release-shard1of2",
        "release-shard2of2",
    ]
    assert shard(plan, 1, 2).lock.table == "locks"
    assert shard(load(), 1, 2).lock is None
