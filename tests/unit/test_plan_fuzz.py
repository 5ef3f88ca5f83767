"""Generated and mutated plans: the loader returns a plan or a located PlanError, nothing else.

Plans are generated from the plan's own keys with values of every YAML type, dumped in
block or flow style, then mutated: snippets that once crashed the loader (tags, aliases,
merges, huge numbers, NUL characters, deep brackets...) are spliced in, ranges are cut
or repeated, and some plans are written as bytes that are not UTF-8. The default run
tries a few hundred; ``pytest -m slow`` also runs 10,000 with the memory each one takes.

Time is bounded by the loader's own limits (size, nesting, alias expansion), which
test_plan_limits.py shows firing; nothing here measures elapsed time.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecs_deploy_many.core.errors import PlanError
from ecs_deploy_many.plan import Plan, load_plan
from ecs_deploy_many.plan.schema import TARGET_FIELDS

ENVIRON = {"RELEASE": "1.2", "COUNT": "3", "BIG": "1" + "0" * 400, "ODD": "a\x00b: [c"}
MEMORY_LIMIT = 200 * 1024 * 1024

FILES = {
    "td.json": json.dumps(
        {"family": "web", "containerDefinitions": [{"name": "app", "image": "app:1"}]}
    ).encode(),
    "compose.json": json.dumps(
        {
            "family": "web",
            "containerDefinitions": [
                {"name": "app", "image": "app:1", "environment": {"A": "1"}, "secrets": "s"}
            ],
        }
    ).encode(),
    "binary.json": bytes(range(256)),
    "deep.json": b"[" * 5000,
    "null.json": b'{"family": "web", "placementConstraints": null, "containerDefinitions": '
    b'[{"name": "app", "image": "app:1", "logConfiguration": [1]}]}',
}

SNIPPETS = [
    "&a ", "*a", "<<: *a\n", "<<: ", "!!int ", "!!bool ", "!!timestamp ", "!!float ",
    "!!binary ", "!!set ", "!!omap ", "!!str ", "!!python/object:os.system ", "!custom ",
    "\x00", "\t", "\x85", "\u2028", "\ufeff", "\r", "[" * 40, "{" * 40, "]", "}", '"', "'",
    ": ", "- ", "\n", "\n  ", "? ", "${RELEASE}", "${", "$${", "${BIG}", "${ODD}", "${NOPE}",
    "1" + "0" * 400, "9" * 5000, "1e999", ".nan", "-.inf", "2024-13-45", "2024-01-15", "~",
    "---\n", "...\n", "%YAML 1.1\n---\n", "0x1F", "0o17", "1_000", "yes", "on", "null",
    "x-a: &a {a: 1, <<: *a}\n", "x-b: &b [*b]\n", "targets: 5\n",
    "waves: [{name: a, targets: 5}]\n",
    "task_definition_file: binary.json\n", "task_definition_file: deep.json\n",
    "task_definition_file: compose.json\n", "task_definition_file: null.json\n",
    "task_definition_file: /dev/zero\n", "region: eu west 1\n", "service: api v2\n",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["prod", "api", "app:1", "eu-west-1", "10%", "halt", "*", "td.json"]),
)
anything = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
names = st.sampled_from(["api", "web", "worker", "migrate", "prod/api", "prod/web"])
SENSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "name": names,
    "cluster": st.sampled_from(["prod", "staging"]),
    "service": st.sampled_from(["api", "web", "worker"]),
    "task_definition": st.sampled_from(["migrate", "batch:3"]),
    "image": st.sampled_from(["app:1", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:2"]),
    "containers": st.dictionaries(st.sampled_from(["app", "envoy"]), st.just("app:2")),
    "tag_only": st.sampled_from(["v2", "${RELEASE}"]),
    "desired_count": st.integers(0, 5) | st.just("${COUNT}"),
    "timeout": st.integers(1, 900) | st.floats(0.5, 900),
    "rollback": st.booleans(),
    "task_definition_file": st.sampled_from(sorted(FILES)),
    "max_definitions": st.integers(0, 5),
    "run_task": st.booleans() | st.just({"wait_for_success": True}),
    "region": st.sampled_from(["eu-west-1", "us-east-1", "eu west 1"]),
    "depends_on": st.lists(names, max_size=2),
}
targets = st.builds(
    lambda sensible, odd: {**sensible, **odd},
    st.fixed_dictionaries({}, optional=dict(SENSIBLE)),
    st.dictionaries(st.sampled_from(sorted(TARGET_FIELDS)), anything, max_size=2),
)
wild_plans = st.fixed_dictionaries(
    {"version": st.sampled_from([1, 1, 1, 2, "1"]), "targets": st.lists(targets, max_size=4)},
    optional={
        "defaults": targets,
        "waves": st.lists(
            st.fixed_dictionaries(
                {
                    "name": st.sampled_from(["canary", "rest"]) | anything,
                    "targets": st.lists(names | st.just("*"), max_size=3) | anything,
                }
            ),
            max_size=3,
        ),
        "concurrency": st.just({"max_parallel": 2}) | anything,
        "failure_budget": st.sampled_from([0, 2, "10%"]) | anything,
        "on_failure": st.sampled_from(["halt", "continue", "rollback_all"]) | anything,
        "rate_limits": anything,
        "polling": anything,
        "x-extra": anything,
    },
)


def _valid_targets(ids: list[int]) -> list[dict[str, Any]]:
    """Services s<i>, each after the one before it, plus a migration they may wait for."""
    listed: list[dict[str, Any]] = [
        {"name": "migrate", "cluster": "prod", "task_definition": "migrate", "run_task": True}
    ]
    for position, i in enumerate(ids):
        after = [f"prod/s{ids[position - 1]}"] if position else ["migrate"]
        listed.append({"cluster": "prod", "service": f"s{i}", "depends_on": after})
    return listed


valid_plans = st.fixed_dictionaries(
    {
        "version": st.just(1),
        "defaults": st.fixed_dictionaries(
            {"image": st.sampled_from(["app:1", "app:${RELEASE}"])},
            optional={
                "region": st.sampled_from(["eu-west-1", "us-east-1"]),
                "timeout": st.integers(1, 900),
                "max_definitions": st.integers(0, 5),
            },
        ),
        "targets": st.lists(st.integers(0, 99), unique=True, max_size=4).map(_valid_targets),
    },
    optional={
        "failure_budget": st.sampled_from([0, 2, "10%"]),
        "on_failure": st.sampled_from(["halt", "continue", "rollback_all"]),
        "concurrency": st.just({"max_parallel": 2, "per_cluster": 1}),
        "waves": st.just(
            [{"name": "first", "targets": ["migrate"]}, {"name": "rest", "targets": ["*"]}]
        ),
    },
)
plans = valid_plans | wild_plans


@st.composite
def plan_bytes(draw: st.DrawFn) -> bytes:
    """A valid or a wild plan dumped as YAML, often mutated a few times; sometimes not UTF-8."""
    text = yaml.safe_dump(
        draw(plans), default_flow_style=draw(st.sampled_from([False, None, True]))
    )
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 4]))):
        at = draw(st.integers(0, len(text)))
        end = draw(st.integers(at, min(len(text), at + 40)))
        kind = draw(st.sampled_from(["insert", "insert", "cut", "repeat"]))
        if kind == "insert":
            text = text[:at] + draw(st.sampled_from(SNIPPETS)) + text[at:]
        elif kind == "cut":
            text = text[:at] + text[end:]
        else:
            text = text[:end] + text[at:end] * draw(st.integers(1, 50)) + text[end:]
    data = text.encode()
    if draw(st.sampled_from([False] * 19 + [True])):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])) + data[at:]
    return data


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where each plan is written, beside the task-definition files it may name."""
    base = tmp_path_factory.mktemp("plans")
    for name, content in FILES.items():
        (base / name).write_bytes(content)
    return base


def load_or_fail_located(data: bytes, folder: Path) -> None:
    """The property: a Plan, or a PlanError whose every issue names this file and a line."""
    path = folder / "plan.yaml"
    path.write_bytes(data)
    try:
        loaded: Plan | PlanError = load_plan(path, environ=ENVIRON)
    except PlanError as error:
        loaded = error
    if isinstance(loaded, PlanError):
        assert loaded.issues
        for issue in loaded.issues:
            assert issue.file == str(path), issue
            assert issue.line is not None, issue
    else:
        assert isinstance(loaded, Plan)


UNHURRIED = [HealthCheck.too_slow, HealthCheck.data_too_large]


@settings(max_examples=200, deadline=None, suppress_health_check=UNHURRIED)
@given(data=plan_bytes())
def test_generated_and_mutated_plans_load_or_fail_located(data: bytes, folder: Path) -> None:
    load_or_fail_located(data, folder)


@pytest.mark.slow
def test_ten_thousand_plans_within_memory(request: pytest.FixtureRequest, folder: Path) -> None:
    markers = request.config.option.markexpr or ""
    if "slow" not in markers or "not slow" in markers:
        pytest.skip("10,000 plans take minutes: run with -m slow")

    @settings(max_examples=10_000, deadline=None, suppress_health_check=UNHURRIED)
    @given(data=plan_bytes())
    def each(data: bytes) -> None:
        before, _ = tracemalloc.get_traced_memory()  # what the test run itself holds
        tracemalloc.reset_peak()
        load_or_fail_located(data, folder)
        assert tracemalloc.get_traced_memory()[1] - before < MEMORY_LIMIT

    tracemalloc.start()
    try:
        each()
    finally:
        tracemalloc.stop()
