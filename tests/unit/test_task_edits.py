"""Edits besides the image: rendering them, the plan grammar, flags, records, dry-run totals."""

from __future__ import annotations

import copy
import textwrap
from typing import Any

import pytest

from ecs_deploy_many.cli.single import build_target, cli
from ecs_deploy_many.core.errors import PlanError, TaskDefinitionError, UsageError
from ecs_deploy_many.core.redact import MASK, Redactor, run_redactor, target_record
from ecs_deploy_many.core.target import (
    ContainerEdits,
    Target,
    TaskEdits,
    target_as_data,
    target_from_data,
)
from ecs_deploy_many.deploy.dryrun import TargetPreview, format_totals
from ecs_deploy_many.deploy.taskdef import render_task_definition, same_content
from ecs_deploy_many.plan import parse_plan

ACCOUNT = "123456789012"
ARN = f"arn:aws:ecs:eu-west-1:{ACCOUNT}:task-definition/web:7"
SECRET_ARN = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:db-AbCdEf"


def env(**pairs: str) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in pairs.items()]


BASE: dict[str, Any] = {
    "taskDefinitionArn": ARN,
    "family": "web",
    "revision": 7,
    "cpu": "256",
    "memory": "512",
    "containerDefinitions": [
        {
            "name": "app",
            "image": "repo/app:1",
            "memory": 256,
            "environment": env(KEEP="1", LOG_LEVEL="info", OLD="x"),
            "secrets": [{"name": "OLD_SECRET", "valueFrom": "old-param"}],
            "dockerLabels": {"team": "a", "tier": "web"},
            "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 1024}],
        },
        {"name": "proxy", "image": "envoyproxy/envoy:v1", "environment": env(PROXY="1")},
    ],
}


def render(edits: TaskEdits, base: dict[str, Any] = BASE, **options: Any) -> dict[str, Any]:
    return render_task_definition(base, edits=edits, **options).definition


def app(definition: dict[str, Any]) -> dict[str, Any]:
    return dict(definition["containerDefinitions"][0])


def test_environment_is_set_changed_and_removed_in_place() -> None:
    edits = TaskEdits(
        containers={
            "app": ContainerEdits(environment={"LOG_LEVEL": "debug", "OLD": None, "N": "2"})
        }
    )
    assert app(render(edits))["environment"] == env(KEEP="1", LOG_LEVEL="debug", N="2")


def test_an_exclusive_environment_keeps_only_what_is_given() -> None:
    edits = TaskEdits(
        containers={"app": ContainerEdits(environment={"N": "2", "KEEP": "1"})},
        exclusive_environment=True,
    )
    rendered = render(edits)
    assert app(rendered)["environment"] == env(KEEP="1", N="2")
    # a container the edits do not touch keeps its environment
    assert rendered["containerDefinitions"][1]["environment"] == env(PROXY="1")


@pytest.mark.parametrize("exclusive", [False, True])
def test_secrets_are_set_and_removed(exclusive: bool) -> None:
    edits = TaskEdits(
        containers={"app": ContainerEdits(secrets={"DB": SECRET_ARN})}, exclusive_secrets=exclusive
    )
    expected = [{"name": "DB", "valueFrom": SECRET_ARN}]
    kept = [] if exclusive else [{"name": "OLD_SECRET", "valueFrom": "old-param"}]
    assert app(render(edits))["secrets"] == kept + expected
    removed = TaskEdits(containers={"app": ContainerEdits(secrets={"OLD_SECRET": None})})
    assert app(render(removed))["secrets"] == []


def test_command_sizes_labels_and_ulimits() -> None:
    edits = TaskEdits(
        containers={
            "app": ContainerEdits(
                command=("serve", "--port", "80"),
                entry_point=("/init",),
                cpu=128,
                memory=1024,
                memory_reservation=512,
                docker_labels={"team": "b", "tier": None, "new": "x"},
                ulimits={"nofile": (4096, 8192), "core": (0, 0)},
            )
        },
        cpu="1024",
        memory="2048",
    )
    rendered = render(edits)
    container = app(rendered)
    assert container["command"] == ["serve", "--port", "80"]
    assert container["entryPoint"] == ["/init"]
    assert (container["cpu"], container["memory"], container["memoryReservation"]) == (
        128,
        1024,
        512,
    )
    assert container["dockerLabels"] == {"team": "b", "new": "x"}
    assert container["ulimits"] == [
        {"name": "nofile", "softLimit": 4096, "hardLimit": 8192},
        {"name": "core", "softLimit": 0, "hardLimit": 0},
    ]
    assert (rendered["cpu"], rendered["memory"]) == ("1024", "2048")


def test_a_role_name_becomes_an_arn_of_the_definitions_account() -> None:
    given = f"arn:aws:iam::{ACCOUNT}:role/exec"
    rendered = render(TaskEdits(task_role="app-task", execution_role=given))
    assert rendered["taskRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/app-task"
    assert rendered["executionRoleArn"] == given


def test_a_role_name_without_an_account_asks_for_the_arn() -> None:
    from_file = {k: v for k, v in BASE.items() if k != "taskDefinitionArn"}
    with pytest.raises(TaskDefinitionError, match="give the role's ARN"):
        render(TaskEdits(task_role="app-task"), from_file)


def test_the_input_is_never_changed() -> None:
    before = copy.deepcopy(BASE)
    render(TaskEdits(containers={"app": ContainerEdits(environment={"KEEP": None})}))
    assert before == BASE


UNNAMED = TaskEdits(unnamed=ContainerEdits(environment={"NEW": "1"}))


def test_unnamed_edits_go_to_the_containers_whose_image_the_target_sets() -> None:
    rendered = render(UNNAMED, image="repo/app:2")
    assert app(rendered)["environment"][-1] == {"name": "NEW", "value": "1"}
    assert rendered["containerDefinitions"][1]["environment"] == env(PROXY="1")
    by_name = render(UNNAMED, containers={"proxy": "envoyproxy/envoy:v2"})
    assert by_name["containerDefinitions"][1]["environment"] == env(PROXY="1", NEW="1")


def test_unnamed_edits_go_to_the_only_container() -> None:
    single = {**BASE, "containerDefinitions": BASE["containerDefinitions"][:1]}
    assert app(render(UNNAMED, single))["environment"][-1] == {"name": "NEW", "value": "1"}


def test_unnamed_edits_of_several_containers_name_them() -> None:
    with pytest.raises(TaskDefinitionError) as caught:
        render(UNNAMED)
    assert "has 2 containers (app, proxy)" in str(caught.value)
    assert "containers: {app: {environment: ...}}" in str(caught.value)


def test_a_named_container_wins_over_unnamed_edits() -> None:
    edits = TaskEdits(
        containers={"app": ContainerEdits(environment={"NEW": "mine"})},
        unnamed=ContainerEdits(environment={"NEW": "theirs", "OTHER": "1"}),
    )
    assert app(render(edits, image="repo/app:2"))["environment"][-2:] == env(NEW="mine", OTHER="1")


def test_an_unknown_container_is_named_with_the_real_ones() -> None:
    with pytest.raises(TaskDefinitionError, match="no container named ap; its containers: app"):
        render(TaskEdits(containers={"ap": ContainerEdits(cpu=1)}))


def test_a_rendering_that_holds_the_edits_already_is_the_same_content() -> None:
    edits = TaskEdits(
        containers={"app": ContainerEdits(environment={"LOG_LEVEL": "debug"}, memory=1024)},
        task_role="app-task",
    )
    registered = {**render(edits), "taskDefinitionArn": ARN.replace(":7", ":8"), "revision": 8}
    assert same_content(registered, render(edits, registered))
    assert not same_content(BASE, render(edits))


# -- the plan grammar ---------------------------------------------------------------------


def plan_errors(text: str) -> list[str]:
    with pytest.raises(PlanError) as caught:
        parse_plan(textwrap.dedent(text), source="p.yaml", environ={})
    return [str(issue) for issue in caught.value.issues]


HEAD = "version: 1\ntargets:\n  - cluster: prod\n    service: api\n"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            "    environment: {RATE: 1.10}\n",
            "p.yaml:5: targets[0].environment.RATE: expected a string, got 1.1: quote it",
        ),
        (
            "    environment: {DEBUG: yes}\n",
            "p.yaml:5: targets[0].environment.DEBUG: expected a string, got true: quote it",
        ),
        (
            "    environment: {9LIVES: x}\n",
            "p.yaml:5: targets[0].environment['9LIVES']: expected an environment variable name",
        ),
        ("    secrets: {DB: ''}\n", "p.yaml:5: targets[0].secrets.DB: must not be empty"),
        (
            "    ulimits: {nofiles: 10}\n",
            "p.yaml:5: targets[0].ulimits.nofiles: expected one of core, cpu,",
        ),
        (
            "    ulimits:\n      nofile: {soft: 10, hard: 5}\n",
            "p.yaml:6: targets[0].ulimits.nofile: soft must not be above hard",
        ),
        ("    command: ''\n", "p.yaml:5: targets[0].command: must not be empty"),
        (
            "    task_role: 'not a role'\n",
            "p.yaml:5: targets[0].task_role: expected a role ARN",
        ),
        (
            "    task_memory: 1 vCPU\n",
            "p.yaml:5: targets[0].task_memory: expected a whole number (MiB) or '<n> GB',"
            " got '1 vCPU'",
        ),
        (
            "    containers:\n      app: {memory: 256, memory_reservation: 512}\n",
            "p.yaml:6: targets[0].containers.app.memory_reservation: must not be above"
            " memory (256)",
        ),
        (
            "    containers:\n      app: {enviroment: {A: b}}\n",
            "p.yaml:6: targets[0].containers.app.enviroment: unknown key; did you mean "
            "'environment'?",
        ),
    ],
)
def test_edit_errors_are_located(lines: str, expected: str) -> None:
    found = plan_errors(HEAD + lines)
    assert any(error.startswith(expected) for error in found), found


def test_a_plan_builds_the_edits() -> None:
    plan = parse_plan(
        textwrap.dedent(
            """\
            version: 1
            defaults:
              environment: {LOG_LEVEL: info, SHARED: "1"}
              task_role: app-task
            targets:
              - cluster: prod
                service: api
                environment: {LOG_LEVEL: debug, PORT: 8080, OLD: null, TOKEN: "${TOKEN}"}
                secrets: {DB: db-password}
                command: python -m app --port 8080
                exclusive_environment: true
                containers:
                  app: repo/app:2
                  sidecar: {image: repo/side:2, cpu: 64, ulimits: {nofile: 4096}}
                  logs: {docker_labels: {team: core}, environment: null}
              - {cluster: prod, service: batch, desired_count: 3, environment: null}
            """
        ),
        environ={"TOKEN": "t0k3n-value"},
    )
    api, batch = plan.targets
    assert api.containers == {"app": "repo/app:2", "sidecar": "repo/side:2"}
    assert api.edits == TaskEdits(
        containers={
            "sidecar": ContainerEdits(cpu=64, ulimits={"nofile": (4096, 4096)}),
            "logs": ContainerEdits(docker_labels={"team": "core"}),
        },
        unnamed=ContainerEdits(
            environment={
                "LOG_LEVEL": "debug",
                "SHARED": "1",
                "PORT": "8080",
                "OLD": None,
                "TOKEN": "t0k3n-value",
            },
            secrets={"DB": "db-password"},
            command=("python", "-m", "app", "--port", "8080"),
        ),
        task_role="app-task",
        exclusive_environment=True,
    )
    # a scale-only target: no edits but the default role, no environment at all
    assert batch.desired_count == 3
    assert batch.edits == TaskEdits(task_role="app-task")


@pytest.mark.parametrize(
    ("key", "given", "expected"),
    [
        ("task_cpu", "512", "512"),
        ("task_cpu", "'0.25 vCPU'", "256"),
        ("task_memory", "'2 GB'", "2048"),
        ("task_memory", "3072", "3072"),
    ],
)
def test_task_sizes_are_written_as_ecs_gives_them_back(key: str, given: str, expected: str) -> None:
    """ECS registers "1 vCPU" as "1024": the plan does too, or no run would be unchanged."""
    edits = parse_plan(HEAD + f"    {key}: {given}\n", environ={}).targets[0].edits
    assert (edits.cpu if key == "task_cpu" else edits.memory) == expected


def test_a_target_with_only_a_desired_count_is_something_to_deploy() -> None:
    plan = parse_plan(HEAD + "    desired_count: 4\n", environ={})
    assert plan.targets[0].desired_count == 4
    assert not plan.targets[0].edits


# -- ecs-deploy's flags ---------------------------------------------------------------------


async def target_of(*argv: str) -> Target:
    """The target ``ecs-deploy -c prod -n api ARGV`` builds."""
    context = await cli.make_context("ecs-deploy", ["-c", "prod", "-n", "api", *argv])
    return build_target(context.params, {})


@pytest.mark.anyio
async def test_flags_build_the_edits() -> None:
    target = await target_of(
        "--env", "app", "A=1=2", "--env", "side", "B=", "--unset-env", "app", "OLD",
        "--secret", "app", f"DB={SECRET_ARN}", "--command", "app", "serve --port 80",
        "--container-memory", "app", "512", "--task-cpu", "1 vCPU",
        "--execution-role", "exec", "--exclusive-env",
    )  # fmt: skip
    assert target.image is None
    assert target.edits == TaskEdits(
        containers={
            "app": ContainerEdits(
                environment={"A": "1=2", "OLD": None},
                secrets={"DB": SECRET_ARN},
                command=("serve", "--port", "80"),
                memory=512,
            ),
            "side": ContainerEdits(environment={"B": ""}),
        },
        cpu="1024",
        execution_role="exec",
        exclusive_environment=True,
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--env", "app", "NOVALUE"), "--env app ...: expected KEY=VALUE (value not shown)"),
        (("--unset-env", "app", "1A"), "--unset-env app '1A': a variable name"),
        (("--command", "app", "'open"), "--command app: No closing quotation"),
        (("--task-role", "a role"), "--task-role: expected a role ARN"),
    ],
)
async def test_bad_edit_flags_are_refused(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        await target_of(*argv)
    assert caught.value.exit_code == 3
    assert message in str(caught.value)


# -- records and redaction -------------------------------------------------------------


EDITED = Target(
    name="prod/api",
    cluster="prod",
    service="api",
    edits=TaskEdits(
        containers={
            "app": ContainerEdits(
                environment={"URL": "https://internal.example/x", "GONE": None},
                secrets={"DB": SECRET_ARN},
                command=("serve",),
                ulimits={"nofile": (1, 2)},
            )
        },
        task_role="app-task",
        exclusive_secrets=True,
    ),
)


def test_a_target_with_edits_survives_its_data() -> None:
    assert target_from_data(target_as_data(EDITED)) == EDITED
    assert "edits" not in target_as_data(Target(name="plain"))


def test_a_record_masks_every_value_the_edits_set_and_keeps_the_names() -> None:
    record = target_record(EDITED, Redactor())
    text = repr(record)
    assert "https://internal.example/x" not in text
    assert SECRET_ARN not in text
    app_edits = record["edits"]["containers"]["app"]
    assert app_edits["environment"] == {"URL": MASK, "GONE": None}
    assert target_from_data(record).edits.task_role == "app-task"


def test_the_runs_redactor_knows_the_values_the_edits_set() -> None:
    redactor = run_redactor({}, targets=[EDITED])
    assert redactor.scrub(f"failed: {SECRET_ARN} https://internal.example/x") == "failed: *** ***"


# -- dry-run totals ------------------------------------------------------------------------


def preview(name: str, **fields: Any) -> TargetPreview:
    return TargetPreview(name, "service", "prod", name, None, None, **fields)


def test_the_totals_count_changes_unchanged_and_errors() -> None:
    previews = [
        preview("a"),
        preview("b", unchanged=True),
        preview("c", unchanged=True, settings=("desired count: 2 -> 4",)),
        preview("d", unchanged=True, force_new_deployment=True),
        preview("e", error="AccessDenied"),
    ]
    assert format_totals(previews) == "5 targets: 3 change, 1 unchanged, 1 error"
    assert format_totals(previews[1:2]) == "1 target: 0 change, 1 unchanged"
