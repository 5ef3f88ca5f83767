"""Waves, depends_on and --only/--exclude selection."""

from __future__ import annotations

import textwrap

import pytest

from ecs_deploy_many.core.errors import PlanError
from ecs_deploy_many.plan import Plan, Wave, parse_plan, select

FLEET = """\
version: 1
defaults: {image: app:1}
targets:
  - {name: canary, cluster: eu, service: api-canary}
  - {cluster: eu, service: api}
  - {cluster: eu, service: web}
  - {cluster: us, service: api}
  - {cluster: us, service: web}
"""


def load(text: str) -> Plan:
    return parse_plan(textwrap.dedent(text), source="plan.yaml", environ={})


def errors(text: str) -> list[str]:
    with pytest.raises(PlanError) as caught:
        load(text)
    return [str(issue) for issue in caught.value.issues]


def with_waves(waves: str) -> str:
    return FLEET + "waves:\n" + textwrap.indent(textwrap.dedent(waves), "  ")


def test_without_waves_everything_is_one_wave() -> None:
    plan = load(FLEET)
    assert plan.waves == (Wave("all", ("canary", "eu/api", "eu/web", "us/api", "us/web")),)
    assert {t.wave for t in plan.targets} == {"all"}


def test_waves_take_globs_in_order_and_exact_names_win() -> None:
    plan = load(
        with_waves(
            """\
            - {name: canary, targets: [canary], bake: 120}
            - {name: europe, targets: ["eu/*", us/web], bake: 30}
            - {name: rest, targets: ["*"]}
            """
        )
    )
    assert plan.waves == (
        Wave("canary", ("canary",), 120.0),
        Wave("europe", ("eu/api", "eu/web", "us/web"), 30.0),
        Wave("rest", ("us/api",), 0.0),
    )
    assert plan.target("us/web").wave == "europe"


def test_an_exact_name_beats_an_earlier_glob() -> None:
    plan = load(with_waves("- {name: all-eu, targets: ['*']}\n- {name: last, targets: [eu/web]}\n"))
    assert [w.targets for w in plan.waves] == [
        ("canary", "eu/api", "us/api", "us/web"),
        ("eu/web",),
    ]


@pytest.mark.parametrize(
    ("waves", "expected"),
    [
        pytest.param(
            "- {name: eu, targets: ['eu/*', canary]}\n",
            [
                "plan.yaml:7: targets[3]: 'us/api' is in no wave; name it in one, or end with a"
                " wave whose targets are ['*']",
                "plan.yaml:8: targets[4]: 'us/web' is in no wave; name it in one, or end with a"
                " wave whose targets are ['*']",
            ],
            id="target-in-no-wave",
        ),
        pytest.param(
            "- {name: a, targets: [canary]}\n- {name: b, targets: [canary, '*']}\n",
            ["plan.yaml:11: waves[1].targets[0]: 'canary' is already in wave 'a'"],
            id="exact-name-in-two-waves",
        ),
        pytest.param(
            "- {name: a, targets: [canry, '*']}\n",
            ["plan.yaml:10: waves[0].targets[0]: unknown target 'canry'; did you mean 'canary'?"],
            id="unknown-name-in-wave",
        ),
        pytest.param(
            "- {name: a, targets: ['ap/*', '*']}\n",
            ["plan.yaml:10: waves[0].targets[0]: 'ap/*' matches no target"],
            id="glob-matching-nothing",
        ),
        pytest.param(
            "- {name: a, targets: ['*']}\n- {name: b, targets: ['eu/*']}\n",
            ["plan.yaml:11: waves[1]: wave 'b' has no targets left (earlier waves took them)"],
            id="empty-wave",
        ),
        pytest.param(
            "- {name: a, targets: [canary]}\n- {name: a, targets: ['*']}\n",
            ["plan.yaml:11: waves[1].name: duplicate wave name 'a'"],
            id="duplicate-wave-name",
        ),
        pytest.param(
            "- {name: a, targets: ['*'], bake: -1}\n",
            ["plan.yaml:10: waves[0].bake: expected a number of seconds >= 0, got -1"],
            id="negative-bake",
        ),
        pytest.param(
            "- {targets: ['*']}\n",
            ["plan.yaml:10: waves[0].name: required"],
            id="wave-without-name",
        ),
    ],
)
def test_wave_errors(waves: str, expected: list[str]) -> None:
    assert errors(with_waves(waves)) == expected


DEPS = """\
version: 1
defaults: {image: app:1, cluster: c}
targets:
  - {name: migrate, task_definition: migrate, run_task: true}
  - {name: api, service: api, depends_on: [migrate]}
  - {name: web, service: web, depends_on: [api, migrate]}
"""


def test_depends_on_is_kept_on_targets() -> None:
    plan = load(DEPS)
    assert plan.target("web").depends_on == ("api", "migrate")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            DEPS + "  - {name: a, service: a, depends_on: [b]}\n"
            "  - {name: b, service: b, depends_on: [c]}\n"
            "  - {name: c, service: c, depends_on: [a]}\n",
            ["plan.yaml:7: targets[3].depends_on[0]: dependency cycle: a -> b -> c -> a"],
            id="three-cycle",
        ),
        pytest.param(
            DEPS + "  - {name: a, service: a, depends_on: [api, a]}\n",
            ["plan.yaml:7: targets[3].depends_on[1]: dependency cycle: a -> a"],
            id="self-dependency",
        ),
        pytest.param(
            DEPS + "  - {name: a, service: a, depends_on: [b]}\n"
            "  - {name: b, service: b, depends_on: [a]}\n"
            "  - {name: x, service: x, depends_on: [y]}\n"
            "  - {name: y, service: y, depends_on: [x]}\n",
            [
                "plan.yaml:7: targets[3].depends_on[0]: dependency cycle: a -> b -> a",
                "plan.yaml:9: targets[5].depends_on[0]: dependency cycle: x -> y -> x",
            ],
            id="two-cycles",
        ),
        pytest.param(
            DEPS + "  - {name: a, service: a, depends_on: [api, api]}\n",
            ["plan.yaml:7: targets[3].depends_on[1]: 'api' is listed twice"],
            id="listed-twice",
        ),
        pytest.param(
            DEPS + "waves:\n  - {name: first, targets: [api, migrate]}\n"
            "  - {name: second, targets: ['*']}\n",
            [],
            id="dependency-in-earlier-wave",
        ),
        pytest.param(
            DEPS
            + "waves:\n  - {name: first, targets: [api]}\n  - {name: second, targets: ['*']}\n",
            [
                "plan.yaml:5: targets[1].depends_on[0]: 'migrate' is in wave 'second', after"
                " this target's wave 'first'"
            ],
            id="dependency-in-later-wave",
        ),
    ],
)
def test_dependency_errors(text: str, expected: list[str]) -> None:
    if expected:
        assert errors(text) == expected
    else:
        load(text)


WAVED = DEPS + "waves:\n  - {name: first, targets: [migrate]}\n  - {name: second, targets: ['*']}\n"


def test_select_filters_by_glob_and_skips_dependencies_when_asked() -> None:
    plan = load(WAVED)
    only_web = select(plan, only=["w*"], dependencies="skip")
    assert [t.name for t in only_web.targets] == ["web"]
    assert only_web.target("web").depends_on == ()  # "already deployed" counts as satisfied
    assert only_web.waves == (Wave("second", ("web",)),)

    without_migrate = select(plan, only=[], exclude=["migrate"], dependencies="skip")
    assert [t.name for t in without_migrate.targets] == ["api", "web"]
    assert without_migrate.target("web").depends_on == ("api",)
    chosen = select(plan, only=["api", "web"], exclude=["api"], dependencies="skip")
    assert chosen.target("web").depends_on == ()


def test_select_keeps_a_selection_that_has_its_dependencies() -> None:
    plan = load(WAVED)
    assert [t.name for t in select(plan, only=["migrate", "api"]).targets] == ["migrate", "api"]


def test_select_refuses_to_leave_out_a_dependency() -> None:
    with pytest.raises(PlanError) as caught:
        select(load(WAVED), only=["api", "web"])
    assert [str(issue) for issue in caught.value.issues] == [
        "plan.yaml: --only: 'api' depends on 'migrate', which --only leaves out: select it"
        " too, pass --with-dependencies, or pass --skip-dependencies if it is already deployed",
        "plan.yaml: --only: 'web' depends on 'migrate', which --only leaves out: select it"
        " too, pass --with-dependencies, or pass --skip-dependencies if it is already deployed",
    ]
    with pytest.raises(PlanError) as caught:
        select(load(WAVED), exclude=["migrate"])
    assert str(caught.value.issues[0]) == (
        "plan.yaml: --exclude: 'api' depends on 'migrate', which --exclude leaves out: stop"
        " excluding it, or pass --skip-dependencies if it is already deployed"
    )


def test_select_brings_dependencies_along_when_asked() -> None:
    plan = load(WAVED)
    with_dependencies = select(plan, only=["web"], dependencies="include")
    assert [t.name for t in with_dependencies.targets] == ["migrate", "api", "web"]
    assert with_dependencies.target("web").depends_on == ("api", "migrate")
    assert with_dependencies.waves == plan.waves
    with pytest.raises(PlanError, match="'api' depends on 'migrate', which --exclude"):
        select(plan, only=["web"], exclude=["migrate"], dependencies="include")


def test_select_recomputes_the_failure_budget() -> None:
    plan = load(FLEET.replace("version: 1\n", "version: 1\nfailure_budget: 50%\n"))
    assert plan.max_failures == 2
    assert select(plan, only=["eu/*"]).max_failures == 1


@pytest.mark.parametrize(
    ("only", "exclude", "expected"),
    [
        (["ap/*"], [], ["plan.yaml: --only: 'ap/*' matches no target"]),
        ([], ["eu/ap"], ["plan.yaml: --exclude: 'eu/ap' matches no target"]),
        (["eu/*"], ["eu/*"], ["plan.yaml: --exclude: no target is left to run"]),
    ],
)
def test_select_errors(only: list[str], exclude: list[str], expected: list[str]) -> None:
    with pytest.raises(PlanError) as caught:
        select(load(FLEET), only=only, exclude=exclude)
    assert [str(issue) for issue in caught.value.issues] == expected
