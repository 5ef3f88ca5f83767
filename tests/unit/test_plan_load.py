"""Loading valid plans: interpolation, defaults, names, images, files and run policies."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import ecs_deploy_many.plan as plan_package
from ecs_deploy_many.core.errors import PlanError
from ecs_deploy_many.core.ratelimit import ECS_BUCKETS, BucketSpec
from ecs_deploy_many.core.target import AwsScope
from ecs_deploy_many.plan import FailureBudget, Plan, Polling, interpolate, load_plan, parse_plan


def load(text: str, environ: dict[str, str] | None = None, base_dir: Path | None = None) -> Plan:
    return parse_plan(
        textwrap.dedent(text),
        source="plan.yaml",
        environ={"RELEASE": "1.4.2"} if environ is None else environ,
        base_dir=base_dir,
    )


def test_public_names() -> None:
    assert sorted(plan_package.__all__) == sorted(
        ["DependencyChoice", "FailureBudget", "InterpolationError", "OnFailure", "Plan",
         "Polling", "Wave", "interpolate", "load_plan", "parse_plan", "select", "shard"]
    )  # fmt: skip
    for name in plan_package.__all__:
        assert hasattr(plan_package, name)


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        ("app:${RELEASE}", {"RELEASE": "1.2"}, "app:1.2"),
        ("${A}-${B}", {"A": "x", "B": "y"}, "x-y"),
        ("app:${TAG:-latest}", {}, "app:latest"),
        ("app:${TAG:-latest}", {"TAG": ""}, "app:latest"),
        ("app:${TAG:-latest}", {"TAG": "v2"}, "app:v2"),
        ("${EMPTY}", {"EMPTY": ""}, ""),
        ("$${RELEASE}", {"RELEASE": "1"}, "${RELEASE}"),
        ("$$${RELEASE}", {"RELEASE": "1"}, "$${RELEASE}"),
        ("$HOME and $(id) and a$b", {}, "$HOME and $(id) and a$b"),
        ("${X:-a b:c}", {}, "a b:c"),
        ("${V}", {"V": "$(rm -rf /)"}, "$(rm -rf /)"),
    ],
)
def test_interpolate(text: str, environ: dict[str, str], expected: str) -> None:
    assert interpolate(text, environ) == expected


BAD_REFERENCE = "use ${NAME} or ${NAME:-default} (write $${ for a literal ${)"


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ("${NOPE}", ("variable NOPE is not set and ${NOPE} has no default",)),
        (
            "${A}${B}",
            (
                "variable A is not set and ${A} has no default",
                "variable B is not set and ${B} has no default",
            ),
        ),
        (
            "${1X}",
            (f"bad variable reference '${{1X}}': {BAD_REFERENCE}",),
        ),
        (
            "${OPEN",
            (f"bad variable reference '${{OPEN...': {BAD_REFERENCE}",),
        ),
    ],
)
def test_interpolate_errors(text: str, problems: tuple[str, ...]) -> None:
    with pytest.raises(plan_package.InterpolationError) as caught:
        interpolate(text, {})
    assert caught.value.problems == problems


def test_interpolated_values_are_typed_where_numbers_or_booleans_are_expected() -> None:
    plan = load(
        """\
        version: 1
        targets:
          - cluster: prod
            service: api
            image: app:${RELEASE}
            desired_count: ${COUNT}
            timeout: ${TIMEOUT:-120.5}
            rollback: ${ROLLBACK:-true}
            tag_env_var: ${TAG_VAR:-RELEASE}
        """,
        environ={"RELEASE": "1.10", "COUNT": "3"},
    )
    target = plan.targets[0]
    assert target.image == "app:1.10"  # a version string is never turned into 1.1
    assert (target.desired_count, target.timeout, target.rollback) == (3, 120.5, True)
    assert type(target.cluster) is str


def test_interpolation_never_touches_keys() -> None:
    with pytest.raises(PlanError, match=r"plan.yaml:3: targets\[0\]\['\$\{K\}'\]: unknown key"):
        load(
            "version: 1\ntargets:\n  - {'${K}': x, cluster: c, service: s, image: app}\n",
            {"K": "image"},
        )


def test_defaults_are_layered_under_targets_and_null_unsets() -> None:
    plan = load(
        """\
        version: 1
        defaults:
          cluster: prod
          region: eu-west-1
          image: app:${RELEASE}
          desired_count: 2
          progress_deadline: 300
          timeout: 600
        targets:
          - service: api
          - service: web
            desired_count: 5
            region: us-east-1
          - service: jobs
            desired_count: null
            progress_deadline: null
            timeout: null
        """
    )
    api, web, jobs = plan.targets
    assert (api.cluster, api.image, api.desired_count, api.timeout) == ("prod", "app:1.4.2", 2, 600)
    assert api.scope == AwsScope(region="eu-west-1")
    assert (web.desired_count, web.scope.region) == (5, "us-east-1")
    # null unsets: the key behaves as if neither the target nor defaults gave it
    assert (jobs.desired_count, jobs.progress_deadline, jobs.timeout) == (None, None, 900.0)


def test_plan_targets_default_to_a_900_second_timeout() -> None:
    plan = load("version: 1\ntargets:\n  - {cluster: c, service: s, image: app}\n")
    assert plan.targets[0].timeout == 900.0


def test_service_only_defaults_are_ignored_by_task_definition_targets() -> None:
    plan = load(
        """\
        version: 1
        defaults:
          cluster: prod
          image: app:1
          rollback: true
          desired_count: 3
          run_task: {wait_for_success: true}
        targets:
          - task_definition: migrate
          - service: api
        """
    )
    migrate, api = plan.targets
    assert (migrate.rollback, migrate.desired_count, migrate.run_task) == (False, None, True)
    assert migrate.wait_for_success
    assert (api.rollback, api.desired_count, api.run_task, api.wait_for_success) == (
        True, 3, False, False,
    )  # fmt: skip


def test_names_are_derived_from_cluster_and_service_or_task_definition() -> None:
    plan = load(
        """\
        version: 1
        targets:
          - {cluster: prod, service: api, image: app}
          - {task_definition: "migrate:7", image: app}
          - {cluster: prod, task_definition: migrate, image: app, run_task: true}
          - {name: custom, cluster: prod, service: web, image: app}
        """
    )
    assert [t.name for t in plan.targets] == ["prod/api", "migrate:7", "prod/migrate", "custom"]


def test_ecs_accepts_names_and_arns_and_so_does_the_plan() -> None:
    cluster = "arn:aws:ecs:eu-west-1:123456789012:cluster/prod"
    plan = load(
        f"""\
        version: 1
        defaults: {{image: app, region: us-gov-west-1}}
        targets:
          - {{cluster: {cluster}, service: "arn:aws:ecs:eu-west-1:123456789012:service/prod/api"}}
          - {{cluster: Prod_2, service: API-v2}}
          - {{task_definition: "arn:aws:ecs:eu-west-1:123456789012:task-definition/m:3"}}
        """
    )
    assert [t.cluster for t in plan.targets] == [cluster, "Prod_2", None]
    assert plan.targets[0].scope.region == "us-gov-west-1"


def test_max_definitions_zero_keeps_every_revision() -> None:
    plan = load("version: 1\ntargets: [{cluster: c, service: s, image: a, max_definitions: 0}]\n")
    assert plan.targets[0].max_definitions is None  # no cleanup


def test_images_are_resolved_with_tag_env_var() -> None:
    plan = load(
        """\
        version: 1
        defaults: {cluster: prod, tag_env_var: RELEASE}
        targets:
          - {service: a, image: registry.example.com:5000/team/app}
          - {service: b, image: app:pinned}
          - {service: c, image: app, tag_env_var: null}
          - {service: d, containers: {web: web, log: fluent-bit:2}}
        """
    )
    assert [t.image for t in plan.targets[:3]] == [
        "registry.example.com:5000/team/app:1.4.2",
        "app:pinned",
        "app:latest",
    ]
    assert plan.targets[3].containers == {"web": "web:1.4.2", "log": "fluent-bit:2"}


def test_run_task_block_fills_the_run_options() -> None:
    plan = load(
        """\
        version: 1
        targets:
          - cluster: prod
            task_definition: migrate
            image: app:1
            run_task:
              wait_for_success: true
              launch_type: FARGATE
              platform_version: "1.4.0"
              network_configuration:
                awsvpcConfiguration: {subnets: [subnet-1], assignPublicIp: DISABLED}
        """
    )
    target = plan.targets[0]
    assert (target.kind, target.run_task, target.wait_for_success) == (
        "task_definition",
        True,
        True,
    )
    assert (target.launch_type, target.platform_version) == ("FARGATE", "1.4.0")
    assert target.network_configuration == {
        "awsvpcConfiguration": {"subnets": ["subnet-1"], "assignPublicIp": "DISABLED"}
    }


def test_task_definition_file_is_read_relative_to_the_plan(tmp_path: Path) -> None:
    (tmp_path / "defs").mkdir()
    body = {"family": "worker", "containerDefinitions": [{"name": "w", "image": "w:1"}]}
    (tmp_path / "defs" / "worker.json").write_text(json.dumps({"taskDefinition": body}))
    (tmp_path / "plan.yaml").write_text(
        "version: 1\ntargets:\n"
        "  - {cluster: c, service: s, task_definition_file: defs/worker.json}\n"
        "  - {task_definition_file: defs/worker.json}\n"
    )
    plan = load_plan(tmp_path / "plan.yaml", environ={})
    service, family_only = plan.targets
    assert service.task_definition_body is not None
    assert service.task_definition_body["family"] == "worker"
    # with no service and no task_definition, the file's family names the target
    assert (family_only.task_definition, family_only.name) == ("worker", "worker")


def test_task_definition_file_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(PlanError) as caught:
        load(
            "version: 1\ntargets:\n  - {cluster: c, service: s, task_definition_file: bad.json}\n",
            base_dir=tmp_path,
        )
    assert [str(i) for i in caught.value.issues] == [
        "plan.yaml:3: targets[0].task_definition_file: bad.json: not valid JSON: Expecting"
        " property name enclosed in double quotes at line 1 column 2"
    ]


def test_run_policies_and_their_defaults() -> None:
    minimal = load("version: 1\ntargets:\n  - {cluster: c, service: s, image: app}\n")
    assert (minimal.max_parallel, minimal.per_cluster, minimal.on_failure) == (25, None, "halt")
    assert minimal.failure_budget == FailureBudget(0)
    assert minimal.rate_limits == ECS_BUCKETS
    assert minimal.polling == Polling(2.0, 10.0)

    tuned = load(
        """\
        version: 1
        concurrency: {max_parallel: 50, per_cluster: 4}
        failure_budget: "12.5%"
        on_failure: rollback_all
        rate_limits:
          service_modify: {burst: 100, refill_per_s: 10}
          service_read: {refill_per_s: 40}
        polling: {initial_interval: 60}
        x-anything: {ignored: true}
        targets:
          - {cluster: c, service: s, image: app}
        """
    )
    assert (tuned.max_parallel, tuned.per_cluster, tuned.on_failure) == (50, 4, "rollback_all")
    assert tuned.failure_budget == FailureBudget(12.5, percent=True)
    assert tuned.rate_limits["service_modify"] == BucketSpec(100, 10)
    assert tuned.rate_limits["service_read"] == BucketSpec(100, 40)
    assert tuned.rate_limits["cluster_read"] == ECS_BUCKETS["cluster_read"]
    assert tuned.polling == Polling(60.0, 60.0)  # the maximum rises with the initial interval


@pytest.mark.parametrize(
    ("budget", "total", "limit"),
    [
        (FailureBudget(0), 10, 0),
        (FailureBudget(3), 10, 3),
        (FailureBudget(3), 1, 3),
        (FailureBudget(10, percent=True), 9, 0),
        (FailureBudget(10, percent=True), 10, 1),
        (FailureBudget(10, percent=True), 25, 2),
        (FailureBudget(12.5, percent=True), 8, 1),
        (FailureBudget(100, percent=True), 7, 7),
        (FailureBudget(10, percent=True), 0, 0),
    ],
)
def test_failure_budget_resolution(budget: FailureBudget, total: int, limit: int) -> None:
    assert budget.limit(total) == limit
    assert budget.allows(limit, total)
    assert not budget.allows(limit + 1, total)


def test_failure_budget_follows_the_number_of_targets() -> None:
    plan = load(
        """\
        version: 1
        failure_budget: 50%
        defaults: {cluster: c, image: app}
        targets: [{service: a}, {service: b}, {service: c}, {service: d}]
        """
    )
    assert (plan.max_failures, str(plan.failure_budget)) == (2, "50%")
