"""`ecs-deploy-many iam-policy` and `ecs-deploy --print-iam-policy`, and the README's
"Permissions" blocks, each the output of the command written above it."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from ecs_deploy_many.cli import single
from ecs_deploy_many.cli.many import cli
from tests.iam_documents import actions_of, allowed, check_document

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
PLAN_VARIABLES = {
    "RELEASE": "2.0",
    "LOCK_TABLE": "release-locks",
    "SLACK_WEBHOOK": "https://hooks.example.com/release",
    "RELEASE_EVENTS_URL": "https://events.example.com/releases",
}
README_BLOCK = re.compile(
    r"^`(ecs-deploy(?:-many)? [^`]+)` prints:\n\n```json\n(.*?)```", re.M | re.S
)


@pytest.fixture(autouse=True)
def _plan_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PLAN_VARIABLES.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(ROOT)


async def command(capsys: pytest.CaptureFixture[str], line: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``line`` run in-process."""
    capsys.readouterr()
    program, *args = shlex.split(line)
    if program == "ecs-deploy":
        code = await single.run(args)
    else:
        result = await cli.main(args, "ecs-deploy-many", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def readme_blocks() -> list[tuple[str, str]]:
    section = (ROOT / "README.md").read_text().split("## Permissions", 1)[1].split("\n## ", 1)[0]
    return README_BLOCK.findall(section)


def test_the_readme_shows_the_policy_of_each_mode() -> None:
    commands = [line for line, _ in readme_blocks()]
    assert any("--print-iam-policy" in line for line in commands)  # single-service mode
    assert any("run_task" in (ROOT / shlex.split(line)[2]).read_text() for line in commands[1:])
    assert any("--for dry-run" in line for line in commands)
    assert len(commands) == 6


@pytest.mark.parametrize(
    ("line", "shown"), readme_blocks(), ids=[line for line, _ in readme_blocks()]
)
async def test_readme_policy_is_the_commands_output(
    capsys: pytest.CaptureFixture[str], line: str, shown: str
) -> None:
    code, out, _ = await command(capsys, line)
    assert code == 0
    assert out == shown, f"regenerate the README block of `{line}`"
    check_document(json.loads(out))


async def test_iam_policy_says_when_arns_name_any_account(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = await command(capsys, "ecs-deploy-many iam-policy deploy-plans/demo.yaml")
    assert code == 0
    document = json.loads(out)
    check_document(document)
    assert allowed(
        document, "ecs:UpdateService", "arn:aws:ecs:eu-west-1:555555555555:service/shop-edge/web"
    )
    assert "no --account given" in err
    _, _, scoped_err = await command(
        capsys, "ecs-deploy-many iam-policy deploy-plans/demo.yaml --account 123456789012"
    )
    assert "no --account given" not in scoped_err


async def test_iam_policy_follows_the_selection(capsys: pytest.CaptureFixture[str]) -> None:
    line = (
        "ecs-deploy-many iam-policy deploy-plans/demo.yaml --account 123456789012 "
        "--only shop-edge/web"
    )
    _, out, _ = await command(capsys, line)
    document = json.loads(out)
    arn = "arn:aws:ecs:eu-west-1:123456789012:service/shop-edge"
    assert allowed(document, "ecs:UpdateService", f"{arn}/web")
    assert not allowed(document, "ecs:UpdateService", f"{arn}/assets")


async def test_explain_names_the_feature_of_each_statement(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = "ecs-deploy-many iam-policy deploy-plans/migration-depends-on.yaml --explain"
    _, out, err = await command(capsys, line)
    sids = [statement["Sid"] for statement in json.loads(out)["Statement"]]
    explained = dict(
        line.split(None, 1) for line in err.splitlines() if not line.startswith("note")
    )
    assert list(explained) == sids
    assert explained["RunTaskOrdersMigrateProd"] == "run_task targets: the one-off task"


async def test_a_bad_plan_prints_no_policy(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("version: 1\ntargets: [{cluster: prod}]\n")
    code, out, err = await command(capsys, f"ecs-deploy-many iam-policy {plan}")
    assert code == 2
    assert out == ""
    assert "nothing was changed" in err


async def test_print_iam_policy_for_one_off_tasks_and_cleanup(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = await command(
        capsys,
        "ecs-deploy -r eu-west-1 -c jobs -d migrate -i app:2 --run-task --max-definitions 3 "
        "--stop-deployments-on-interrupt --print-iam-policy=123456789012",
    )
    assert code == 0
    document = json.loads(out)
    check_document(document, scopes={("123456789012", "eu-west-1")})
    eu = "arn:aws:ecs:eu-west-1:123456789012"
    assert allowed(
        document,
        "ecs:RunTask",
        f"{eu}:task-definition/migrate:4",
        {"ecs:cluster": f"{eu}:cluster/jobs"},
    )
    assert {"ecs:DeregisterTaskDefinition", "ecs:ListTaskDefinitions"} <= actions_of(document)
    # No service: nothing to update, and no service deployment to stop.
    assert not {"ecs:UpdateService", "ecs:StopServiceDeployment"} & actions_of(document)
    assert not any(
        action.startswith(("ecr:", "secretsmanager:", "s3:")) for action in actions_of(document)
    )


async def test_print_iam_policy_refuses_bad_flags_first(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = await command(capsys, "ecs-deploy -n api -i app:2 --print-iam-policy")
    assert code == 7  # -n needs -c, as without the flag
    assert out == ""
    assert "-c/--cluster" in err
