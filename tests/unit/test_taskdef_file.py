"""Task-definition files: checked against RegisterTaskDefinition's input when read, capped in size.

A file that passes here registers; one that would fail at RegisterTaskDefinition (or crash
the render) is refused with its file and key path, and never with the value it holds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ecs_deploy_many.core.errors import TaskDefinitionError
from ecs_deploy_many.plan.taskdef_file import (
    MAX_TASK_DEFINITION_BYTES,
    parse_task_definition_file,
    read_task_definition_file,
)

SECRET = "s3cr3t-marker-value"


def definition(**container: Any) -> dict[str, Any]:
    return {
        "family": "web",
        "containerDefinitions": [{"name": "app", "image": "repo/app:1", **container}],
    }


def problem(document: Any) -> str:
    with pytest.raises(TaskDefinitionError) as caught:
        parse_task_definition_file(json.dumps(document), "deploy/td.json")
    message = str(caught.value)
    assert SECRET not in message
    return message


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param(
            definition(environment={"API_KEY": SECRET}),
            "deploy/td.json: containerDefinitions[0].environment: expected a list of objects"
            " (name, value), got an object",
            id="environment-as-a-mapping",
        ),
        pytest.param(
            definition(environment=[f"API_KEY={SECRET}"]),
            "deploy/td.json: containerDefinitions[0].environment[0]: expected an object"
            " (name, value), got a string",
            id="environment-items-as-strings",
        ),
        pytest.param(
            definition(secrets=SECRET),
            "deploy/td.json: containerDefinitions[0].secrets: expected a list of objects"
            " (name, valueFrom), got a string",
            id="secrets-as-a-string",
        ),
        pytest.param(
            definition(secrets=[{"name": "DB", "valueFrom": [SECRET]}]),
            "deploy/td.json: containerDefinitions[0].secrets[0].valueFrom: expected a string,"
            " got a list",
            id="secret-value-as-a-list",
        ),
        pytest.param(
            definition(logConfiguration=[{"logDriver": "awslogs"}]),
            "deploy/td.json: containerDefinitions[0].logConfiguration: expected an object"
            " (logDriver, options, secretOptions), got a list",
            id="log-configuration-as-a-list",
        ),
        pytest.param(
            definition(memory="512"),
            "deploy/td.json: containerDefinitions[0].memory: expected an integer from"
            " -2147483648 to 2147483647, got a string",
            id="container-memory-as-a-string",
        ),
        pytest.param(
            {**definition(), "cpu": 256},
            "deploy/td.json: cpu: expected a string, got a number (quote it)",
            id="task-cpu-as-a-number",
        ),
        pytest.param(
            definition(essential="yes", portMappings=[{"containerPort": 99999999999}]),
            "deploy/td.json: containerDefinitions[0].essential: expected true or false, got a"
            " string; containerDefinitions[0].portMappings[0].containerPort: expected an"
            " integer from -2147483648 to 2147483647, got a number",
            id="every-problem-at-once",
        ),
        pytest.param(
            definition(healthcheck={"command": ["true"]}),
            "deploy/td.json: containerDefinitions[0].healthcheck: unknown key",
            id="unknown-nested-key",
        ),
        pytest.param(
            {**definition(), "family": "my app"},
            "deploy/td.json: family: up to 255 letters, digits, hyphens and underscores, got"
            " 'my app'",
            id="family-name",
        ),
    ],
)
def test_a_file_that_would_not_register_names_the_key(document: Any, expected: str) -> None:
    assert problem(document) == expected


def test_nulls_and_read_only_keys_of_describe_output_are_dropped() -> None:
    described = {
        "taskDefinition": {
            **definition(logConfiguration=None, environment=[{"name": "A", "value": "1"}]),
            "placementConstraints": None,
            "taskRoleArn": None,
            "revision": 3,
            "status": "ACTIVE",
            "registeredAt": "2026-11-27T21:23:57.186000+00:00",
        },
        "tags": None,
    }
    assert parse_task_definition_file(json.dumps(described), "td.json") == definition(
        environment=[{"name": "A", "value": "1"}]
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            bytes(range(256)),
            "td.bin: line 2: byte 0x80 is not UTF-8 text",
            id="binary",
        ),
        pytest.param(
            b"[" * 100_000,
            "td.bin: not a task definition: JSON nested deeper than Python can read",
            id="deep",
        ),
        pytest.param(
            b'{"family": "web", "cpu": NaN}',
            "td.bin: not valid JSON: NaN is not a JSON number",
            id="nan",
        ),
        pytest.param(
            b" " * (MAX_TASK_DEFINITION_BYTES + 1),
            "td.bin: larger than 1024 KiB, the limit for a task definition file: is it the"
            " right file?",
            id="too-large",
        ),
    ],
)
def test_unreadable_files_are_task_definition_errors(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "td.bin"
    path.write_bytes(content)
    with pytest.raises(TaskDefinitionError) as caught:
        read_task_definition_file(path, "td.bin")
    assert str(caught.value) == expected


def test_an_endless_file_is_read_only_up_to_the_limit() -> None:
    with pytest.raises(TaskDefinitionError, match="larger than 1024 KiB"):
        read_task_definition_file("/dev/zero")


def test_a_missing_file_is_a_task_definition_error(tmp_path: Path) -> None:
    with pytest.raises(TaskDefinitionError) as caught:
        read_task_definition_file(tmp_path / "nope.json", "nope.json")
    assert str(caught.value) == "cannot read nope.json: No such file or directory"


TEMPLATE = """{
  "family": "${FAMILY:-web}",
  "containerDefinitions": [{
    "name": "app", "image": "repo/app:${RELEASE}", "memory": ${MEMORY},
    "environment": [{"name": "DB_PASSWORD", "value": "${DB_PASSWORD}"}],
    "command": ["sh", "-c", "echo $${HOME} $HOME"]
  }],
  "placementConstraints": null
}
"""


def test_a_template_is_filled_in_from_the_environment() -> None:
    environ = {"RELEASE": "7", "MEMORY": "512", "DB_PASSWORD": 'a "quoted\\ secret'}
    parsed = parse_task_definition_file(TEMPLATE, "td.json", environ=environ)
    container = parsed["containerDefinitions"][0]
    assert parsed["family"] == "web"
    assert container["image"] == "repo/app:7"
    assert container["memory"] == 512
    assert container["environment"] == [{"name": "DB_PASSWORD", "value": 'a "quoted\\ secret'}]
    assert container["command"] == ["sh", "-c", "echo ${HOME} $HOME"]
    assert "placementConstraints" not in parsed


def test_a_file_without_environment_is_taken_literally() -> None:
    literal = TEMPLATE.replace("${MEMORY}", "512").replace("${FAMILY:-web}", "web")
    parsed = parse_task_definition_file(literal, "td.json")
    assert parsed["containerDefinitions"][0]["image"] == "repo/app:${RELEASE}"


def test_every_unset_variable_is_named_with_its_line() -> None:
    with pytest.raises(TaskDefinitionError) as caught:
        parse_task_definition_file(TEMPLATE, "td.json", environ={"MEMORY": "1"})
    assert str(caught.value) == (
        "td.json:4: variable RELEASE is not set and ${RELEASE} has no default; "
        "td.json:5: variable DB_PASSWORD is not set and ${DB_PASSWORD} has no default"
    )


def test_an_error_about_a_template_never_shows_a_value_put_in() -> None:
    environ = {"FAMILY": f"not a family {SECRET}", "RELEASE": "1", "MEMORY": "1"}
    environ["DB_PASSWORD"] = SECRET
    with pytest.raises(TaskDefinitionError) as caught:
        parse_task_definition_file(TEMPLATE, "td.json", environ=environ)
    problem_text = str(caught.value)
    assert problem_text.startswith("td.json: family:")
    assert SECRET not in problem_text


def test_a_template_read_from_a_plan_names_the_plan_and_the_file_line(tmp_path: Path) -> None:
    from ecs_deploy_many.core.errors import PlanError
    from ecs_deploy_many.plan import load_plan

    (tmp_path / "td.json").write_text(TEMPLATE)
    (tmp_path / "plan.yaml").write_text(
        "version: 1\ntargets:\n  - {cluster: c, service: s, task_definition_file: td.json}\n"
    )
    environ = {"RELEASE": "9", "MEMORY": "256", "DB_PASSWORD": SECRET}
    plan = load_plan(tmp_path / "plan.yaml", environ=environ)
    body = plan.targets[0].task_definition_body
    assert body is not None
    assert body["containerDefinitions"][0]["image"] == "repo/app:9"
    with pytest.raises(PlanError) as caught:
        load_plan(tmp_path / "plan.yaml", environ={"MEMORY": "256", "DB_PASSWORD": SECRET})
    (issue,) = caught.value.issues
    assert (issue.line, issue.key) == (3, "targets[0].task_definition_file")
    assert issue.message == "td.json:4: variable RELEASE is not set and ${RELEASE} has no default"
