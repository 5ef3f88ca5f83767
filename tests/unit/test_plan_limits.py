"""Malformed and oversized plans: each is one located PlanError, and every limit fires.

The inputs are the ones fuzzing and hostile files once turned into tracebacks, hangs or
gigabytes: values PyYAML cannot construct, huge numbers, self-merging anchors, deep
nesting, alias bombs, NUL characters, bytes that are not UTF-8, plans too large.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ecs_deploy_many.core.errors import PlanError
from ecs_deploy_many.plan import load_plan, parse_plan
from ecs_deploy_many.plan.document import (
    MAX_ALIAS_VALUES,
    MAX_NESTING,
    MAX_PLAN_BYTES,
    MAX_VALUES,
)

SOURCE = "plans/prod.yaml"
SVC = "  - cluster: prod\n    service: api\n    image: app:1\n"
"""A valid service target on lines 3-5 of a plan starting ``version: 1\\ntargets:``."""


def errors(text: str) -> list[str]:
    with pytest.raises(PlanError) as caught:
        parse_plan(text, source=SOURCE, environ={})
    return [str(issue) for issue in caught.value.issues]


def with_target_key(line: str) -> str:
    """A plan whose only target gets ``line`` as its line 6."""
    return "version: 1\ntargets:\n" + SVC + f"    {line}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            with_target_key("timeout: 1" + "0" * 400),
            "plans/prod.yaml:6: targets[0].timeout: expected a number of seconds > 0, got"
            " 1000000000000000000000000000000000000000... (401 characters)",
            id="integer-too-large-for-a-float",
        ),
        pytest.param(
            with_target_key("desired_count: 99999999999999999999"),
            "plans/prod.yaml:6: targets[0].desired_count: expected an integer from 0 to"
            " 2147483647, got 99999999999999999999",
            id="integer-beyond-ecs",
        ),
        pytest.param(
            "version: 1\nfailure_budget: " + "9" * 5000 + "\ntargets:\n" + SVC,
            "plans/prod.yaml:2: failure_budget: cannot read '999999999999999999999999999999'..."
            " (5,000 characters) as !!int: quote it if it is text",
            id="5000-digit-integer",
        ),
        pytest.param(
            "version: 1\nfailure_budget: 1" + "0" * 400 + "\ntargets:\n" + SVC,
            "plans/prod.yaml:2: failure_budget: expected a count (2) or a percentage ('10%'),"
            " got 1000000000000000000000000000000000000000... (401 characters)",
            id="huge-failure-budget",
        ),
        pytest.param(
            with_target_key("region: 2024-13-45"),
            "plans/prod.yaml:6: targets[0].region: cannot read '2024-13-45' as !!timestamp:"
            " quote it if it is text",
            id="impossible-date",
        ),
        pytest.param(
            with_target_key("desired_count: !!int abc"),
            "plans/prod.yaml:6: targets[0].desired_count: cannot read 'abc' as !!int:"
            " quote it if it is text",
            id="tagged-int",
        ),
        pytest.param(
            with_target_key("rollback: !!bool maybe"),
            "plans/prod.yaml:6: targets[0].rollback: cannot read 'maybe' as !!bool:"
            " quote it if it is text",
            id="tagged-bool",
        ),
        pytest.param(
            with_target_key("region: !!timestamp nope"),
            "plans/prod.yaml:6: targets[0].region: cannot read 'nope' as !!timestamp:"
            " quote it if it is text",
            id="tagged-timestamp",
        ),
        pytest.param(
            "version: 1\nwaves: [{name: a, targets: 5}]\ntargets:\n" + SVC,
            "plans/prod.yaml:2: waves[0].targets: expected a list, got 5",
            id="wave-targets-not-a-list",
        ),
        pytest.param(
            "version: 1\nx-loop: &m {a: 1, <<: *m}\ntargets:\n" + SVC,
            "plans/prod.yaml:2: x-loop: a mapping merges itself",
            id="self-merge",
        ),
        pytest.param(
            'version: 1\nx: "\\UFFFFFFFF"\ntargets:\n' + SVC,
            "plans/prod.yaml:2: invalid YAML: Python int too large to convert to C int",
            id="escape-beyond-unicode",
        ),
        pytest.param(
            "version: 1\ntargets:\n" + SVC + "    region: eu\x00west-1\n",
            "plans/prod.yaml:6: invalid YAML: character #x0000 is not allowed in a plan:"
            " special characters are not allowed",
            id="nul-character",
        ),
        pytest.param(
            "",
            "plans/prod.yaml:1: the plan is empty",
            id="empty",
        ),
    ],
)
def test_input_that_once_escaped_the_loader_is_located(text: str, expected: str) -> None:
    assert errors(text) == [expected]


def test_deep_nesting_stops_at_the_limit() -> None:
    deep = "version: 1\nx: " + "[" * 1200 + "]" * 1200 + "\n"
    assert errors(deep) == [
        f"plans/prod.yaml:2: nested more than {MAX_NESTING} levels deep, the limit for a plan:"
        " flatten it"
    ]


def test_nesting_up_to_the_limit_is_read() -> None:
    nested = "[" * (MAX_NESTING - 2) + "]" * (MAX_NESTING - 2)
    parse_plan(f"version: 1\nx-deep: {nested}\ntargets:\n" + SVC, source=SOURCE, environ={})


def test_an_alias_bomb_stops_at_the_limit() -> None:
    """The 425-byte "billion laughs": nine levels of nine aliases each."""
    bomb = "version: 1\nx-a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        bomb += f"x-{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
    bomb += "targets:\n" + SVC
    assert len(bomb) < 500
    assert errors(bomb) == [
        f"plans/prod.yaml:7: x-f: aliases expand to more than {MAX_ALIAS_VALUES:,} values,"
        " the limit for a plan: use defaults, or fewer nested aliases"
    ]


def test_merging_defaults_into_many_targets_is_not_a_bomb() -> None:
    plan = "version: 1\nx-common: &common {cluster: prod, image: 'app:1'}\ntargets:\n"
    plan += "".join(f"  - {{<<: *common, service: s{i}}}\n" for i in range(2000))
    assert len(parse_plan(plan, source=SOURCE, environ={}).targets) == 2000


def test_an_unterminated_list_stops_at_the_value_limit() -> None:
    text = "version: 1\ntargets: [" + "a, " * (MAX_VALUES + 10)
    assert len(text) < MAX_PLAN_BYTES
    assert errors(text) == [
        f"plans/prod.yaml:2: more than {MAX_VALUES:,} values (keys count too), the limit for"
        " a plan: split it into several plans"
    ]


def test_a_plan_over_the_size_limit_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"version: 1\n" + b"#" * MAX_PLAN_BYTES)
    with pytest.raises(PlanError) as caught:
        load_plan(path, environ={})
    assert str(caught.value) == (
        f"{path}: the plan is larger than 1 MiB, the limit for a plan: split it into several plans"
    )
    assert errors("#" * (MAX_PLAN_BYTES + 1)) == [
        "plans/prod.yaml: the plan is larger than 1 MiB, the limit for a plan: split it into"
        " several plans"
    ]


def test_bytes_that_are_not_utf8_are_located(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: 1\ntargets:\n  - cluster: prod\n    service: caf\xe9\n")
    with pytest.raises(PlanError) as caught:
        load_plan(path, environ={})
    assert str(caught.value) == (
        f"{path}:4: cannot read the plan: byte 0xe9 is not UTF-8 text; save the file as UTF-8"
    )
