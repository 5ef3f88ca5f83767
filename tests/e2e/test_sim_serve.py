"""`ecs-deploy-many sim serve` as a user runs it: a process other tools point at."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aioboto3
import anyio
import pytest

from tests.e2e.helpers import CREDENTIALS, SCRIPT, serving

AWS_CLI = Path(__file__).resolve().parents[2] / ".venv-awscli" / "bin" / "aws"

FLEET = """\
region: eu-west-1
task_definitions:
  web:
    containerDefinitions: [{name: web, image: "nginx:1.25", memory: 128}]
clusters:
  - name: prod
    services: [{name: api, task_definition: web, desired_count: 2}]
"""


@pytest.fixture
def fleet_file(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET)
    return path


@pytest.fixture
def served(fleet_file: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    with serving("--port", "0", "--fleet", str(fleet_file), "--speed", "10") as started:
        yield started


@pytest.mark.anyio
@pytest.mark.real_time
async def test_serves_aioboto3_and_the_aws_cli_then_exits_0_on_sigterm(
    served: tuple[subprocess.Popen[str], str],
) -> None:
    proc, first = served
    prefix = "ECS simulator listening on http://127.0.0.1:"
    assert first.startswith(prefix)
    url = first.removeprefix("ECS simulator listening on ")

    session = aioboto3.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name="eu-west-1"
    )
    async with session.client("ecs", endpoint_url=url) as ecs:
        described = await ecs.describe_services(cluster="prod", services=["api"])
    assert described["services"][0]["runningCount"] == 2

    cli = await anyio.run_process(
        [
            AWS_CLI,
            "ecs",
            "describe-services",
            "--endpoint-url",
            url,
            "--region",
            "eu-west-1",
            "--cluster",
            "prod",
            "--services",
            "api",
        ],
        env={**os.environ, **CREDENTIALS},
        check=False,
    )
    assert cli.returncode == 0, cli.stderr.decode()
    service = json.loads(cli.stdout)["services"][0]
    assert service["serviceName"] == "api"
    assert service["desiredCount"] == 2
    assert service["deployments"][0]["rolloutState"] == "COMPLETED"
    assert service["deployments"][0]["taskDefinition"].endswith(":task-definition/web:1")

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


async def aws_cli(url: str, *args: str) -> dict[str, Any]:
    """The AWS CLI's parsed JSON answer to ``aws ecs ARGS`` against the simulator."""
    done = await anyio.run_process(
        [AWS_CLI, "ecs", *args, "--endpoint-url", url, "--region", "eu-west-1"],
        env={**os.environ, **CREDENTIALS},
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


@pytest.mark.anyio
@pytest.mark.real_time
@pytest.mark.skipif(not AWS_CLI.exists(), reason="the AWS CLI is installed by `make install`")
async def test_the_aws_cli_lists_and_describes_service_deployments(
    served: tuple[subprocess.Popen[str], str],
) -> None:
    proc, first = served
    url = first.removeprefix("ECS simulator listening on ")
    session = aioboto3.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name="eu-west-1"
    )
    async with session.client("ecs", endpoint_url=url) as ecs:
        registered = await ecs.register_task_definition(
            family="web",
            containerDefinitions=[{"name": "web", "image": "nginx:1.27", "memory": 128}],
        )
        updated = await ecs.update_service(
            cluster="prod",
            service="api",
            taskDefinition=registered["taskDefinition"]["taskDefinitionArn"],
        )
    ours = updated["service"]["deployments"][0]["id"].removeprefix("ecs-svc/")

    listed = await aws_cli(url, "list-service-deployments", "--cluster", "prod", "--service", "api")
    newest, steady = listed["serviceDeployments"]
    assert (newest["status"], steady["status"]) == ("IN_PROGRESS", "SUCCESSFUL")
    assert newest["targetServiceRevisionArn"].endswith(f":service-revision/prod/api/{ours}")
    only_ongoing = await aws_cli(
        url, "list-service-deployments", "--cluster", "prod", "--service", "api",
        "--status", "IN_PROGRESS",
    )  # fmt: skip
    assert [d["serviceDeploymentArn"] for d in only_ongoing["serviceDeployments"]] == [
        newest["serviceDeploymentArn"]
    ]

    described = await aws_cli(
        url, "describe-service-deployments", "--service-deployment-arns",
        newest["serviceDeploymentArn"], steady["serviceDeploymentArn"],
    )  # fmt: skip
    assert described["failures"] == []
    ongoing, done = described["serviceDeployments"]
    assert ongoing["serviceDeploymentArn"] == newest["serviceDeploymentArn"]
    assert ongoing["targetServiceRevision"]["arn"] == newest["targetServiceRevisionArn"]
    assert ongoing["sourceServiceRevisions"][0]["arn"] == (done["targetServiceRevision"]["arn"])
    assert ongoing["lifecycleStage"] in ("SCALE_UP", "CLEAN_UP")
    assert ongoing["deploymentCircuitBreaker"]["threshold"] == 3
    assert done["status"] == "SUCCESSFUL"

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


def test_exits_0_on_sigint() -> None:
    with serving() as (proc, first):
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    assert first.startswith("ECS simulator listening on http://127.0.0.1:")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--throttling", "sometimes"], "'sometimes' is not one of 'aws', 'off'"),
        (["--error-rate", "1.5"], "1.5 is not in the range 0<=x<=1"),
        (["--speed", "0"], "0.0 is not in the range x>0"),
        (["--fleet", "/nonexistent/fleet.yaml"], "does not exist"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    result = subprocess.run([SCRIPT, "sim", "serve", *args], capture_output=True, text=True)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_invalid_fleet_names_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "fleet.yaml"
    bad.write_text("clusters:\n  - name: prod\n    services: [{name: api}]\n")
    result = subprocess.run(
        [SCRIPT, "sim", "serve", "--fleet", str(bad)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert f"{bad}: clusters[0].services[0].task_definition" in result.stderr


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (
            "a: &a [x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"a{n}: &a{n} [{', '.join(['*a' if n == 1 else f'*a{n - 1}'] * 9)}]\n"
                for n in range(1, 9)
            ),
            "more than 1000000 values",
        ),
        (b"region: \xff\n", "not UTF-8 text"),
        (FLEET.replace("name: api", "name: 'api v2'"), "'api v2' is not a valid ECS name"),
        (FLEET.replace("desired_count: 2", "desired_count: 99999999999999999999"), "5000"),
    ],
    ids=["alias-bomb", "binary", "service-name", "desired-count"],
)
def test_a_bad_fleet_is_a_clear_message_and_exit_2(
    tmp_path: Path, content: str | bytes, says: str
) -> None:
    bad = tmp_path / "fleet.yaml"
    if isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        bad.write_text(content)
    result = subprocess.run(
        [SCRIPT, "sim", "serve", "--fleet", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert f"{bad}: " in result.stderr
    assert says in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_device_as_fleet_is_refused_unread() -> None:
    result = subprocess.run(
        [SCRIPT, "sim", "serve", "--fleet", "/dev/zero"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "/dev/zero: larger than" in result.stderr


@pytest.mark.anyio
@pytest.mark.real_time
async def test_an_absurd_desired_count_is_refused_and_sigterm_still_stops_it(
    served: tuple[subprocess.Popen[str], str],
) -> None:
    # 10**20 tasks once held the event loop for good: signals went unanswered.
    proc, first = served
    url = first.removeprefix("ECS simulator listening on ")
    session = aioboto3.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name="eu-west-1"
    )
    async with session.client("ecs", endpoint_url=url) as ecs:
        with pytest.raises(ecs.exceptions.InvalidParameterException):
            await ecs.update_service(
                cluster="prod", service="api", desiredCount=99_999_999_999_999_999_999
            )
        described = await ecs.describe_services(cluster="prod", services=["api"])
    assert described["services"][0]["desiredCount"] == 2
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
