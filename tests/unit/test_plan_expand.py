"""Selector targets replaced by their matches: names, waves, dependencies, overlaps."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecs_deploy_many.core.errors import PlanError
from ecs_deploy_many.core.target import Selector, Target, target_as_data, target_from_data
from ecs_deploy_many.journal.records import target_digest
from ecs_deploy_many.plan import load_plan, parse_plan
from ecs_deploy_many.plan.expand import expand_selectors

PLAN = """\
version: 1
defaults: {region: eu-west-1, cluster: prod-eu, timeout: 120}
waves:
  - {name: first, targets: [prod-eu/web]}
  - {name: agents, targets: [agents]}
  - {name: rest, targets: ["*"]}
targets:
  - {service: web, image: "example/web:2"}
  - name: agents
    select: {clusters: ["prod-*"], runs: datadog/agent}
    image: datadog/agent:7.60
    depends_on: [prod-eu/web]
  - {service: after, image: "example/after:2", depends_on: [agents]}
"""


def test_each_match_is_a_target_in_the_selectors_place_wave_and_dependencies() -> None:
    plan = parse_plan(PLAN, environ={})
    selector = plan.target("agents")
    assert selector.unexpanded
    assert selector.cluster is None  # the default cluster is not the selector's
    assert selector.selector == Selector("agents", ("prod-*",), ("datadog/agent",))
    expanded = expand_selectors(plan, {"agents": [("prod-us", "api"), ("prod-eu", "api")]})
    names = [t.name for t in expanded.plan.targets]
    assert names == ["prod-eu/web", "agents/prod-eu/api", "agents/prod-us/api", "prod-eu/after"]
    match = expanded.plan.target("agents/prod-us/api")
    assert (match.cluster, match.service, match.timeout) == ("prod-us", "api", 120)
    assert match.wave == "agents"
    assert match.depends_on == ("prod-eu/web",)
    assert expanded.plan.target("prod-eu/after").depends_on == (
        "agents/prod-eu/api",
        "agents/prod-us/api",
    )
    assert [w.targets for w in expanded.plan.waves] == [
        ("prod-eu/web",),
        ("agents/prod-eu/api", "agents/prod-us/api"),
        ("prod-eu/after",),
    ]


def test_a_listed_service_is_left_to_its_target_and_nothing_found_drops_the_wave() -> None:
    plan = parse_plan(PLAN, environ={})
    expanded = expand_selectors(plan, {"agents": [("prod-eu", "web")]})
    assert [t.name for t in expanded.plan.targets] == ["prod-eu/web", "prod-eu/after"]
    assert expanded.left_to_listed == {"agents": ("prod-eu/web (target prod-eu/web)",)}
    assert expanded.plan.target("prod-eu/after").depends_on == ()
    assert [w.name for w in expanded.plan.waves] == ["first", "rest"]


def test_two_selectors_finding_one_service_is_an_error() -> None:
    text = PLAN + (
        "  - name: more\n"
        "    select: {clusters: [prod-us]}\n"
        "    tag_only: '3'\n"
    )  # fmt: skip
    plan = parse_plan(text, environ={})
    with pytest.raises(PlanError, match="'more' and 'agents' both select prod-us/api"):
        expand_selectors(plan, {"agents": [("prod-us", "api")], "more": [("prod-us", "api")]})


def test_a_match_keeps_its_selector_through_the_journal_and_listed_digests_stay() -> None:
    match = Target(
        "agents/prod/api",
        cluster="prod",
        service="api",
        selector=Selector("agents", ("prod-*",), ("datadog/agent",)),
    )
    assert target_from_data(target_as_data(match)) == match
    listed = Target("prod/api", cluster="prod", service="api")
    assert "selector" not in target_as_data(listed)
    assert target_digest(match) != target_digest(
        Target(**{**vars(match), "selector": Selector("agents", ("prod-*",), ("x/y",))})
    )


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("select: {clusters: []}\n    tag_only: '2'", "give at least one"),
        ("select: {clusters: ['prod eu']}\n    tag_only: '2'", "is not a cluster name or glob"),
        ("select: {runs: x/y}\n    tag_only: '2'", "clusters"),
        ("select: {clusters: [p]}\n    image: a/b:2", "with image, say which services run it"),
        (
            "select: {clusters: [p], runs: datadog/agent}\n    image: other/agent:2",
            "is no image of the repositories select runs",
        ),
        ("select: {clusters: [p]}\n    tag_only: '2'\n    cluster: p", "drop cluster"),
    ],
)
def test_selector_grammar_errors(target: str, problem: str) -> None:
    text = f"version: 1\ntargets:\n  - name: s\n    {target}\n"
    with pytest.raises(PlanError, match=problem):
        parse_plan(text, environ={})


def test_select_belongs_to_each_target_not_defaults() -> None:
    text = (
        "version: 1\n"
        "defaults: {select: {clusters: [p]}}\n"
        "targets: [{service: a, cluster: b, tag_only: '1'}]\n"
    )
    with pytest.raises(PlanError, match="select belongs to each target"):
        parse_plan(text, environ={})


def test_tag_only_with_runs_and_service_with_select_are_plan_errors(
    tmp_path: Path,
) -> None:
    plan = tmp_path / "bad.yaml"
    plan.write_text(
        "version: 1\n"
        "targets:\n"
        "  - name: agents\n"
        "    select: {clusters: [prod], runs: datadog/agent}\n"
        "    tag_only: '7.60'\n"
        "  - name: both\n"
        "    service: api\n"
        "    select: {clusters: [prod]}\n"
        "    tag_only: '2'\n"
        "  - select: {clusters: [prod], runs: 'datadog/agent:7'}\n"
        "    image: datadog/agent:7.60\n"
    )
    with pytest.raises(PlanError) as raised:
        load_plan(plan, environ={})
    problems = [str(issue) for issue in raised.value.issues]
    assert any(":5: targets[0].tag_only: tag_only retags every container" in p for p in problems)
    assert any(":7: targets[1].service: select finds the services" in p for p in problems)
    assert any(":10: targets[2]: a select target needs a name" in p for p in problems)
    assert any("runs names a repository, without tag or digest" in p for p in problems)
