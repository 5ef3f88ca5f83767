"""Every kind of plan error, located as ``file:line: key: message``, and all at once."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from ecs_deploy_many.core.errors import PlanError
from ecs_deploy_many.plan import load_plan, parse_plan

SOURCE = "plans/prod.yaml"
ENVIRON = {"RELEASE": "1.4.2"}


def errors(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(PlanError) as caught:
        parse_plan(textwrap.dedent(text), source=SOURCE, environ=environ or ENVIRON)
    return [str(issue) for issue in caught.value.issues]


def targets(*lines: str) -> str:
    """A plan whose targets start at line 3."""
    return "version: 1\ntargets:\n" + "".join(line + "\n" for line in lines)


SVC = "  - cluster: prod\n    service: api\n    image: app:1"
"""A valid service target on lines 3-5 when it comes first; its next key is on line 6."""

CASES = [
    pytest.param(
        "version: 1\ntargets: [\n",
        "plans/prod.yaml:3: invalid YAML: expected the node content, but found '<stream end>'",
        id="yaml-syntax",
    ),
    pytest.param("", "plans/prod.yaml:1: the plan is empty", id="empty"),
    pytest.param(
        "- a\n- b\n", "plans/prod.yaml:1: expected a mapping, got a list", id="not-a-mapping"
    ),
    pytest.param(
        "targets:\n" + SVC + "\n", "plans/prod.yaml:1: version: required", id="missing-version"
    ),
    pytest.param(
        "version: 2\ntargets:\n" + SVC + "\n",
        "plans/prod.yaml:1: version: unsupported version 2: this tool reads version 1",
        id="bad-version",
    ),
    pytest.param(
        "version: 1\ntargets: []\n",
        "plans/prod.yaml:2: targets: a plan needs at least one target",
        id="no-targets",
    ),
    pytest.param(
        "version: 1\ntarget: []\n",
        [
            "plans/prod.yaml:1: targets: required",
            "plans/prod.yaml:2: target: unknown key; did you mean 'targets'?",
        ],
        id="unknown-top-level-key",
    ),
    pytest.param(
        targets("  - cluster: prod", "    service: api", "    image: app:1", "    desired_cont: 3"),
        "plans/prod.yaml:6: targets[0].desired_cont: unknown key; did you mean 'desired_count'?",
        id="unknown-key-suggestion",
    ),
    pytest.param(
        targets(
            "  - cluster: prod", "    service: api", "    image: app:1", "    desired_count: three"
        ),
        "plans/prod.yaml:6: targets[0].desired_count: expected an integer >= 0, got 'three'",
        id="wrong-type-integer",
    ),
    pytest.param(
        targets(SVC, "    rollback: yes please"),
        "plans/prod.yaml:6: targets[0].rollback: expected true or false, got 'yes please'",
        id="wrong-type-boolean",
    ),
    pytest.param(
        targets(SVC, "    min_healthy_percent: 150"),
        "plans/prod.yaml:6: targets[0].min_healthy_percent: expected an integer from 0 to 100,"
        " got 150",
        id="out-of-range",
    ),
    pytest.param(
        targets(SVC, "    timeout: 0"),
        "plans/prod.yaml:6: targets[0].timeout: expected a number of seconds > 0, got 0",
        id="timeout-zero",
    ),
    pytest.param(
        targets("  - cluster: prod", "    service: api", "    tag_only: 1.10"),
        "plans/prod.yaml:5: targets[0].tag_only: expected a tag string, got 1.1: quote it",
        id="tag-as-number",
    ),
    pytest.param(
        targets("  - {cluster: prod, service: api, image: 'Team/App:1'}"),
        "plans/prod.yaml:3: targets[0].image: bad image 'Team/App:1': repository path"
        " 'Team/App' must be lowercase",
        id="bad-image",
    ),
    pytest.param(
        targets("  - cluster: prod", "    service: api", "    containers: {web: ':1'}"),
        "plans/prod.yaml:5: targets[0].containers.web: bad image ':1': repository path"
        " component '' must be letters and digits joined by '.', '_', '__' or '-'"
        " (it cannot start or end with one)",
        id="bad-container-image",
    ),
    pytest.param(
        targets("  - {cluster: prod, image: app:1}"),
        "plans/prod.yaml:3: targets[0]: a target needs service (with cluster) or task_definition",
        id="no-service-or-task-definition",
    ),
    pytest.param(
        targets("  - {cluster: prod, service: api, task_definition: api, image: app:1}"),
        "plans/prod.yaml:3: targets[0].task_definition: a target deploys a service or a task"
        " definition, not both",
        id="service-and-task-definition",
    ),
    pytest.param(
        targets("  - {service: api, image: app:1}"),
        "plans/prod.yaml:3: targets[0].cluster: required for a service target",
        id="service-without-cluster",
    ),
    pytest.param(
        targets("  - {cluster: prod, service: api}"),
        "plans/prod.yaml:3: targets[0]: nothing to deploy: give image, containers, tag_only"
        " or task_definition_file, an edit (environment, secrets, task_memory, ...),"
        " desired_count, or force_new_deployment",
        id="nothing-to-deploy",
    ),
    pytest.param(
        targets(SVC, "    run_task: true"),
        "plans/prod.yaml:6: targets[0].run_task: run_task needs a task_definition target,"
        " not a service",
        id="run-task-on-service",
    ),
    pytest.param(
        targets("  - {task_definition: migrate, image: app:1, run_task: true}"),
        "plans/prod.yaml:3: targets[0].cluster: required to run a task",
        id="run-task-without-cluster",
    ),
    pytest.param(
        targets(
            "  - cluster: prod",
            "    task_definition: migrate",
            "    image: app:1",
            "    wait_for_success: true",
        ),
        "plans/prod.yaml:6: targets[0].wait_for_success: wait_for_success is a run_task option:"
        " write run_task: {wait_for_success: ...}",
        id="wait-for-success-without-run-task",
    ),
    pytest.param(
        targets("  - {task_definition: migrate, image: app:1, desired_count: 2}"),
        "plans/prod.yaml:3: targets[0].desired_count: desired_count only applies to a service"
        " target",
        id="service-option-on-task-definition",
    ),
    pytest.param(
        targets("  - {cluster: prod, service: api, image: app:1, tag_only: v2}"),
        "plans/prod.yaml:3: targets[0].tag_only: tag_only retags every container; drop image"
        " and containers",
        id="tag-only-with-image",
    ),
    pytest.param(
        targets(SVC, "    run_task: {launch_type: FARGATE}"),
        "plans/prod.yaml:6: targets[0].run_task: run_task needs a task_definition target,"
        " not a service",
        id="run-task-block-on-service",
    ),
    pytest.param(
        targets(
            "  - {cluster: c, task_definition: t, image: app:1, run_task: {launch_type: fargate}}"
        ),
        "plans/prod.yaml:3: targets[0].run_task.launch_type: expected one of EC2, FARGATE,"
        " EXTERNAL, MANAGED_INSTANCES, got 'fargate'; did you mean 'FARGATE'?",
        id="bad-launch-type",
    ),
    pytest.param(
        targets(
            "  - cluster: c",
            "    task_definition: t",
            "    image: app:1",
            "    run_task:",
            "      network_configuration: {awsvpcConfiguration: {securityGroups: [sg-1]}}",
        ),
        "plans/prod.yaml:7: targets[0].run_task.network_configuration.awsvpcConfiguration"
        ".subnets: required",
        id="network-configuration-missing-subnets",
    ),
    pytest.param(
        targets(SVC, "    use_latest_task_def: true", "    task_definition_file: td.json"),
        [
            "plans/prod.yaml:6: targets[0].use_latest_task_def: cannot be combined with"
            " task_definition_file (both choose the base revision)",
            "plans/prod.yaml:7: targets[0].task_definition_file: cannot read td.json:"
            " No such file or directory",
        ],
        id="latest-and-file",
    ),
    pytest.param(
        targets(SVC, "    task_definition_file: missing.json"),
        "plans/prod.yaml:6: targets[0].task_definition_file: cannot read missing.json:"
        " No such file or directory",
        id="task-definition-file-missing",
    ),
    pytest.param(
        targets(SVC, "    region: eu west 1"),
        "plans/prod.yaml:6: targets[0].region: 'eu west 1' is not an AWS region name"
        " (like eu-west-1)",
        id="bad-region",
    ),
    pytest.param(
        targets("  - {cluster: prod, service: api v2, image: app:1}"),
        "plans/prod.yaml:3: targets[0].service: 'api v2' is not a valid service: a name of up"
        " to 255 letters, digits, hyphens and underscores, or a service ARN",
        id="bad-service-name",
    ),
    pytest.param(
        targets("  - {cluster: prod/eu, service: api, image: app:1}"),
        "plans/prod.yaml:3: targets[0].cluster: 'prod/eu' is not a valid cluster: a name of up"
        " to 255 letters, digits, hyphens and underscores, or a cluster ARN",
        id="bad-cluster-name",
    ),
    pytest.param(
        targets("  - {task_definition: 'migrate:latest', image: app:1}"),
        "plans/prod.yaml:3: targets[0].task_definition: 'migrate:latest' is not a valid task"
        " definition: a family of up to 255 letters, digits, hyphens and underscores,"
        " optionally with :revision, or a task-definition ARN",
        id="bad-task-definition",
    ),
    pytest.param(
        targets(SVC, "    assume_role: deployer"),
        "plans/prod.yaml:6: targets[0].assume_role: expected a role ARN"
        " (arn:aws:iam::123456789012:role/name), got 'deployer'",
        id="bad-role",
    ),
    pytest.param(
        targets(SVC, "    tag_env_var: 'RELEASE TAG'"),
        "plans/prod.yaml:6: targets[0].tag_env_var: expected an environment variable name,"
        " got 'RELEASE TAG'",
        id="bad-env-var-name",
    ),
    pytest.param(
        targets(SVC, SVC),
        "plans/prod.yaml:6: targets[1]: duplicate target name 'prod/api' (also targets[0]);"
        " give one of them a distinct name",
        id="duplicate-derived-name",
    ),
    pytest.param(
        targets(SVC, "    name: 'api *'"),
        "plans/prod.yaml:6: targets[0].name: a name cannot contain spaces or * ? [ ], got 'api *'",
        id="glob-in-name",
    ),
    pytest.param(
        targets(SVC, "    depends_on: [prod/apii]"),
        "plans/prod.yaml:6: targets[0].depends_on[0]: unknown target 'prod/apii';"
        " did you mean 'prod/api'?",
        id="unknown-dependency",
    ),
    pytest.param(
        "version: 1\ndefaults:\n  name: x\ntargets:\n" + SVC + "\n",
        "plans/prod.yaml:3: defaults.name: name belongs to each target, not defaults",
        id="per-target-key-in-defaults",
    ),
    pytest.param(
        "version: 1\ndefaults:\n  image: app:${TAG}\ntargets:\n" + SVC + "\n",
        "plans/prod.yaml:3: defaults.image: variable TAG is not set and ${TAG} has no default",
        id="unset-variable",
    ),
    pytest.param(
        targets(SVC, "    cluster: other"),
        "plans/prod.yaml:6: targets[0].cluster: duplicate key (first written at line 3)",
        id="duplicate-key",
    ),
    pytest.param(
        "version: 1\nfailure_budget: lots\ntargets:\n" + SVC + "\n",
        "plans/prod.yaml:2: failure_budget: expected a count (2) or a percentage ('10%'),"
        " got 'lots'",
        id="bad-failure-budget",
    ),
    pytest.param(
        "version: 1\non_failure: stop\ntargets:\n" + SVC + "\n",
        "plans/prod.yaml:2: on_failure: expected one of halt, continue, rollback_all, got 'stop'",
        id="bad-on-failure",
    ),
    pytest.param(
        "version: 1\nconcurrency: {max_parallel: 0}\ntargets:\n" + SVC + "\n",
        "plans/prod.yaml:2: concurrency.max_parallel: expected an integer >= 1, got 0",
        id="bad-max-parallel",
    ),
    pytest.param(
        "version: 1\nrate_limits:\n  service_write: {burst: 10}\ntargets:\n" + SVC + "\n",
        "plans/prod.yaml:3: rate_limits.service_write: unknown key; did you mean 'service_read'?",
        id="unknown-rate-limit-category",
    ),
    pytest.param(
        "version: 1\nrate_limits:\n  service_modify: {burst: 0}\ntargets:\n" + SVC + "\n",
        "plans/prod.yaml:3: rate_limits.service_modify.burst: expected a number >= 1, got 0",
        id="bad-burst",
    ),
    pytest.param(
        "version: 1\npolling: {initial_interval: 10, max_interval: 5}\ntargets:\n" + SVC + "\n",
        "plans/prod.yaml:2: polling.max_interval: must be at least initial_interval (10)",
        id="polling-order",
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_each_plan_error_is_located(text: str, expected: str | list[str]) -> None:
    assert errors(text) == ([expected] if isinstance(expected, str) else expected)


def test_all_errors_are_reported_at_once() -> None:
    found = errors(
        """\
        version: 1
        defaults:
          image: app:${TAG}
        targets:
          - cluster: prod
            service: api
            desired_count: three
            desird_count: 3
          - service: web
            image: app:1
          - name: a
            task_definition: a
            image: app:1
            depends_on: [b]
          - name: b
            task_definition: b
            image: app:1
            depends_on: [a]
        """
    )
    assert found == [
        "plans/prod.yaml:3: defaults.image: variable TAG is not set and ${TAG} has no default",
        "plans/prod.yaml:7: targets[0].desired_count: expected an integer >= 0, got 'three'",
        "plans/prod.yaml:8: targets[0].desird_count: unknown key; did you mean 'desired_count'?",
        "plans/prod.yaml:9: targets[1].cluster: required for a service target",
        "plans/prod.yaml:14: targets[2].depends_on[0]: dependency cycle: a -> b -> a",
    ]


def test_merge_keys_and_anchors_keep_their_lines(tmp_path: Path) -> None:
    found = errors(
        """\
        version: 1
        x-common: &common
          cluster: prod
          desired_count: -1
        targets:
          - <<: *common
            service: api
            image: app:1
        """
    )
    assert found == [
        "plans/prod.yaml:4: targets[0].desired_count: expected an integer >= 0, got -1"
    ]


def test_an_unreadable_plan_file_is_a_plan_error(tmp_path: Path) -> None:
    with pytest.raises(PlanError) as caught:
        load_plan(tmp_path / "nope.yaml", environ={})
    assert (
        str(caught.value)
        == f"{tmp_path}/nope.yaml: cannot read the plan: No such file or directory"
    )


def test_a_task_definition_file_that_would_not_register_is_a_plan_error(tmp_path: Path) -> None:
    definition = {
        "family": "web",
        "containerDefinitions": [{"name": "app", "image": "app:1", "environment": {"A": "x"}}],
    }
    (tmp_path / "td.json").write_text(json.dumps(definition))
    with pytest.raises(PlanError) as caught:
        parse_plan(
            targets(SVC, "    task_definition_file: td.json"),
            source=SOURCE,
            environ={},
            base_dir=tmp_path,
        )
    assert [str(issue) for issue in caught.value.issues] == [
        "plans/prod.yaml:6: targets[0].task_definition_file: td.json:"
        " containerDefinitions[0].environment: expected a list of objects (name, value),"
        " got an object"
    ]
