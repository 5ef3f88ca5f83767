"""action.yml and the workflows, checked against the published schemas, and the action's
documentation against the action.

The schemas are SchemaStore's, unchanged (Apache-2.0, LICENSE.schemastore beside them),
as vendored by check-jsonschema 0.39.0:
- schemas/github-action.json: https://json.schemastore.org/github-action.json
- schemas/github-workflow.json: https://json.schemastore.org/github-workflow.json
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = Path(__file__).parent / "schemas"
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
README = (ROOT / "README.md").read_text()


def _validator(name: str) -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _problems(validator: jsonschema.Draft7Validator, document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def _workflow(text: str) -> dict[str, Any]:
    """A workflow as GitHub reads it: YAML 1.1 would make the key ``on`` a boolean."""
    document: dict[Any, Any] = yaml.safe_load(text)
    if True in document:
        document["on"] = document.pop(True)
    return document


def _ci_section() -> str:
    start = README.index("## Use it in CI")
    return README[start : README.index("\n## ", start + 1)]


def _readme_workflows() -> list[dict[str, Any]]:
    blocks = re.findall(r"```yaml\n(.*?)```", _ci_section(), re.DOTALL)
    return [doc for doc in map(_workflow, blocks) if "jobs" in doc]


def test_action_metadata_matches_the_schema() -> None:
    assert _problems(_validator("github-action.json"), ACTION) == []


def test_schema_test_catches_a_bad_action() -> None:
    broken = {**ACTION, "runs": {**ACTION["runs"], "using": "bash"}}
    assert _problems(_validator("github-action.json"), broken)


def test_ci_workflow_matches_the_schema() -> None:
    workflow = _workflow((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    assert _problems(_validator("github-workflow.json"), workflow) == []
    commands = [step.get("run") for step in workflow["jobs"]["test"]["steps"]]
    assert "make test" in commands
    assert "make test-browser" in commands


@pytest.mark.parametrize("index", range(3))
def test_readme_workflows_match_the_schema_and_the_action(index: int) -> None:
    workflow = _readme_workflows()[index]
    assert _problems(_validator("github-workflow.json"), workflow) == []
    ours = [
        step
        for job in workflow["jobs"].values()
        for step in job["steps"]
        if step.get("uses", "").startswith("your-org/ecs-deploy-many@")
    ]
    assert ours
    for step in ours:
        assert set(step["with"]) <= set(ACTION["inputs"])


def test_readme_documents_every_input_and_output() -> None:
    section = _ci_section()
    documented = set(re.findall(r"^\| `([\w-]+)` \|", section, re.MULTILINE))
    assert set(ACTION["inputs"]) | set(ACTION["outputs"]) <= documented
    assert documented <= set(ACTION["inputs"]) | set(ACTION["outputs"])


def test_readme_release_workflow_is_scheduled_dispatchable_oidc_and_reports_junit() -> None:
    release = _readme_workflows()[0]
    assert "schedule" in release["on"]
    assert "workflow_dispatch" in release["on"]
    assert release["permissions"]["id-token"] == "write"
    steps = release["jobs"]["release"]["steps"]
    uses = [step.get("uses", "") for step in steps]
    assert any(u.startswith("aws-actions/configure-aws-credentials@") for u in uses)
    junit = next(s for s in steps if s.get("uses", "").startswith("mikepenz/action-junit-report@"))
    deploy = next(s for s in steps if s.get("id") == "deploy")
    assert junit["with"]["report_paths"] == deploy["with"]["junit"]


def test_run_steps_take_inputs_from_env_never_from_the_script() -> None:
    """An input spliced into a script would run as shell code; env passes it as data."""
    for step in ACTION["runs"]["steps"]:
        if "run" in step:
            assert "${{" not in step["run"], step["name"]
            assert step["shell"] == "bash"
