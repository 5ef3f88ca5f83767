"""`ecs-deploy` end to end: flags in, real client over HTTP, the simulator's state after.

The command runs in-process on the simulator's clock, on the tests' virtual-time loop,
so a deployment of a simulated half minute takes only the CPU it needs.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ecs_deploy_many.aws.session import ClientPool
from ecs_deploy_many.cli import single
from ecs_deploy_many.core.redact import MASK, Redactor
from ecs_deploy_many.core.result import Status
from ecs_deploy_many.core.target import AwsScope, Target
from ecs_deploy_many.deploy.pipeline import RunContext, deploy_target
from ecs_deploy_many.sim.fleet import Fleet, Timings
from ecs_deploy_many.sim.server import Simulator
from tests.integration.conftest import REGION, ecs_client
from tests.integration.helpers import sim_pool

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]

SPEED = 40.0
REGISTRY = "registry.example.com:5000"
SECRET_ENV_VALUE = "hunter2-very-secret"
FAST = Timings(
    provisioning=2,
    pending=3,
    activating=1,
    health_grace=10,
    health_check=5,
    deactivating=1,
    stopping=2,
    deprovisioning=2,
    crash_after=5,
    run_duration=5,
)


def container(name: str, image: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": image, "memory": 256, **extra}


FLEET = Fleet.model_validate(
    {
        "region": REGION,
        "task_definitions": {
            "web": {
                "cpu": "256",
                "memory": "512",
                "pidMode": "task",
                "containerDefinitions": [
                    container(
                        "web",
                        f"{REGISTRY}/web:1.0",
                        environment=[{"name": "DB_PASSWORD", "value": SECRET_ENV_VALUE}],
                    )
                ],
                "tags": [{"key": "team", "value": "payments"}],
            },
            "web-worker": {"containerDefinitions": [container("w", f"{REGISTRY}/web:1.0")]},
            "multi": {
                "containerDefinitions": [
                    container("app", f"{REGISTRY}/app:1"),
                    container("proxy", "envoyproxy/envoy:v1.30"),
                ]
            },
            "worker": {
                "revisions": [
                    {"containerDefinitions": [container("w", "example/worker:1")]},
                    {"containerDefinitions": [container("w", "example/worker:1", cpu=128)]},
                ]
            },
            "guarded": {"containerDefinitions": [container("g", "example/guarded:1")]},
            "plain": {"containerDefinitions": [container("p", "example/plain:1")]},
            "migrate": {"containerDefinitions": [container("m", "example/migrate:1")]},
        },
        "clusters": [
            {
                "name": "prod",
                "services": [
                    {"name": "web", "task_definition": "web", "desired_count": 2},
                    {"name": "multi", "task_definition": "multi", "desired_count": 1},
                    {"name": "worker", "task_definition": "worker:1", "desired_count": 1},
                    {
                        "name": "guarded",
                        "task_definition": "guarded",
                        "desired_count": 2,
                        "circuit_breaker": {"enable": True, "rollback": True},
                    },
                    {"name": "plain", "task_definition": "plain", "desired_count": 2},
                ],
            }
        ],
        "timings": FAST.model_dump(),
        "behaviour": {
            "images": [
                {"match": "*:broken*", "outcome": "fail_to_start"},
                {"match": "*migrate:fails*", "outcome": "exit:3"},
            ]
        },
    }
)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(FLEET, speed=SPEED, strict_output=True) as running:
        yield running


@pytest.fixture
async def ecs(sim: Simulator) -> AsyncIterator[ECSClient]:
    async with ecs_client(sim) as client:
        yield client


async def ecs_deploy(sim: Simulator, *args: str) -> int:
    return await single.run(
        ["--endpoint-url", sim.endpoint_url, "--log-format", "json", *args], clock=sim.clock
    )


async def service(ecs: ECSClient, name: str) -> dict[str, Any]:
    described = await ecs.describe_services(cluster="prod", services=[name])
    return dict(described["services"][0])


async def task_definition(ecs: ECSClient, name: str) -> dict[str, Any]:
    return dict((await ecs.describe_task_definition(taskDefinition=name))["taskDefinition"])


def images(definition: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["image"] for c in definition["containerDefinitions"]}


def arn(family_revision: str) -> str:
    return f"arn:aws:ecs:{REGION}:123456789012:task-definition/{family_revision}"


def log_lines(captured: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in captured.splitlines() if line.startswith("{")]


async def test_image_deploy(
    sim: Simulator, ecs: ECSClient, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await ecs_deploy(sim, "-c", "prod", "-n", "web", "-i", f"{REGISTRY}/web:2.0")
    assert code == 0
    svc = await service(ecs, "web")
    assert svc["taskDefinition"] == arn("web:2")
    [only] = svc["deployments"]
    assert (only["status"], only["rolloutState"], only["runningCount"]) == (
        "PRIMARY",
        "COMPLETED",
        2,
    )
    new = await task_definition(ecs, "web:2")
    assert images(new) == {"web": f"{REGISTRY}/web:2.0"}
    # every registerable key survives, not a whitelist (the original dropped these)
    assert (new["cpu"], new["memory"], new["pidMode"]) == ("256", "512", "task")
    lines = log_lines(capsys.readouterr().err)
    steps = {line["step"] for line in lines}
    assert {"resolve", "register", "update", "wait", "done"} <= steps
    assert all(line["cluster"] == "prod" and line["service"] == "web" for line in lines)
    assert any("has reached a steady state" in line.get("message", "") for line in lines)
    assert SECRET_ENV_VALUE not in capsys.readouterr().err


async def test_tag_only_multi_container(sim: Simulator, ecs: ECSClient) -> None:
    assert await ecs_deploy(sim, "-c", "prod", "-n", "multi", "-to", "v7", "-i", "ignore") == 0
    svc = await service(ecs, "multi")
    assert images(await task_definition(ecs, svc["taskDefinition"])) == {
        "app": f"{REGISTRY}/app:v7",  # the registry port survives (the original cut it)
        "proxy": "envoyproxy/envoy:v7",
    }


async def test_tag_from_environment_variable(
    sim: Simulator, ecs: ECSClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_TIMESTAMP", "1700000000")
    assert (
        await ecs_deploy(
            sim, "-c", "prod", "-n", "web", "-i", f"{REGISTRY}/web", "-e", "CI_TIMESTAMP"
        )
        == 0
    )
    svc = await service(ecs, "web")
    assert (
        images(await task_definition(ecs, svc["taskDefinition"]))["web"]
        == f"{REGISTRY}/web:1700000000"
    )


async def test_task_definition_only(sim: Simulator, ecs: ECSClient) -> None:
    assert await ecs_deploy(sim, "-d", "migrate", "-i", "example/migrate:2") == 0
    assert images(await task_definition(ecs, "migrate"))["m"] == "example/migrate:2"
    assert (await task_definition(ecs, "migrate"))["revision"] == 2


async def test_task_definition_file(sim: Simulator, ecs: ECSClient, tmp_path: Path) -> None:
    described = await ecs.describe_task_definition(taskDefinition="web")
    wrapper = {"taskDefinition": dict(described["taskDefinition"])}
    wrapper["taskDefinition"]["cpu"] = "512"
    path = tmp_path / "web.json"
    path.write_text(json.dumps(wrapper, default=str))
    code = await ecs_deploy(
        sim,
        "-c",
        "prod",
        "-n",
        "web",
        "-i",
        f"{REGISTRY}/web:3.0",
        "--task-definition-file",
        str(path),
    )
    assert code == 0
    new = await task_definition(ecs, (await service(ecs, "web"))["taskDefinition"])
    assert (new["cpu"], images(new)["web"]) == ("512", f"{REGISTRY}/web:3.0")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            None,
            "--task-definition-file: /dev/zero: larger than 1024 KiB, the limit for a task"
            " definition file: is it the right file?",
            id="endless",
        ),
        pytest.param(
            b'{"family": "web", "containerDefinitions": [{"name": "web", "image": "web:1",'
            b' "environment": {"TOKEN": "s3cr3t"}}]}',
            "--task-definition-file: {path}: containerDefinitions[0].environment: expected a"
            " list of objects (name, value), got an object",
            id="compose-habit",
        ),
    ],
)
async def test_a_task_definition_file_is_checked_before_any_call(
    sim: Simulator,
    ecs: ECSClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes | None,
    expected: str,
) -> None:
    path = "/dev/zero"
    if content is not None:
        file = tmp_path / "web.json"
        file.write_bytes(content)
        path = str(file)
    code = await ecs_deploy(
        sim, "-c", "prod", "-n", "web", "-i", f"{REGISTRY}/web:3", "--task-definition-file", path
    )
    assert code == 3
    err = capsys.readouterr().err
    assert expected.format(path=path) in err
    assert "s3cr3t" not in err
    assert (await task_definition(ecs, "web"))["revision"] == 1


async def test_use_latest_task_def(sim: Simulator, ecs: ECSClient) -> None:
    # the service runs worker:1; worker:2 (cpu 128) is newer and becomes the base
    assert (
        await ecs_deploy(
            sim, "-c", "prod", "-n", "worker", "-i", "example/worker:2", "--use-latest-task-def"
        )
        == 0
    )
    new = await task_definition(ecs, (await service(ecs, "worker"))["taskDefinition"])
    assert new["revision"] == 3
    assert new["containerDefinitions"][0]["cpu"] == 128


async def test_copy_task_definition_tags(sim: Simulator, ecs: ECSClient) -> None:
    assert (
        await ecs_deploy(
            sim, "-c", "prod", "-n", "web", "-i", f"{REGISTRY}/web:2", "--copy-task-definition-tags"
        )
        == 0
    )
    described = await ecs.describe_task_definition(taskDefinition="web:2", include=["TAGS"])
    assert described["tags"] == [{"key": "team", "value": "payments"}]


async def test_without_copy_tags_the_new_revision_has_none(sim: Simulator, ecs: ECSClient) -> None:
    assert await ecs_deploy(sim, "-c", "prod", "-n", "web", "-i", f"{REGISTRY}/web:2") == 0
    described = await ecs.describe_task_definition(taskDefinition="web:2", include=["TAGS"])
    assert not described.get("tags")


async def test_force_new_deployment(sim: Simulator, ecs: ECSClient) -> None:
    before = await service(ecs, "web")
    assert await ecs_deploy(sim, "-c", "prod", "-n", "web", "--force-new-deployment") == 0
    after = await service(ecs, "web")
    assert after["taskDefinition"] == before["taskDefinition"] == arn("web:1")
    assert after["deployments"][0]["id"] != before["deployments"][0]["id"]
    assert after["deployments"][0]["rolloutState"] == "COMPLETED"


async def test_skip_deployments_check_returns_while_old_tasks_drain(
    sim: Simulator, ecs: ECSClient
) -> None:
    assert (
        await ecs_deploy(
            sim, "-c", "prod", "-n", "web", "-i", f"{REGISTRY}/web:2", "--skip-deployments-check"
        )
        == 0
    )
    svc = await service(ecs, "web")
    primary = svc["deployments"][0]
    assert primary["taskDefinition"] == arn("web:2")
    assert primary["runningCount"] == 2
    assert len(svc["deployments"]) == 2  # the old one was still draining when we returned


async def test_circuit_breaker_rollback_is_reported_at_once(
    sim: Simulator, ecs: ECSClient, capsys: pytest.CaptureFixture[str]
) -> None:
    started = sim.clock.now()
    code = await ecs_deploy(
        sim, "-c", "prod", "-n", "guarded", "-i", "example/guarded:broken", "-t", "900"
    )
    elapsed = sim.clock.now() - started
    assert code == 1
    # the trip comes about 20 simulated seconds in; the timeout is 900
    assert elapsed < 300, f"reported after {elapsed:.0f} simulated s, not soon after the trip"
    err = capsys.readouterr().err
    finished = [line for line in log_lines(err) if line["event"] == "target_finished"]
    assert finished[-1]["status"] == "rolled_back"
    assert "circuit breaker" in finished[-1]["error"]
    svc = await service(ecs, "guarded")
    assert svc["deployments"][0]["taskDefinition"] == arn("guarded:1")  # ECS rolls back


async def test_enable_rollback_restores_exact_previous_revision(
    sim: Simulator, ecs: ECSClient, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await ecs_deploy(
        sim,
        "-c",
        "prod",
        "-n",
        "plain",
        "-i",
        "example/plain:broken",
        "-t",
        "60",
        "--enable-rollback",
    )
    assert code == 1
    svc = await service(ecs, "plain")
    [only] = svc["deployments"]
    assert only["taskDefinition"] == arn("plain:1")
    assert only["rolloutState"] == "COMPLETED"
    assert only["runningCount"] == 2
    finished = [
        line for line in log_lines(capsys.readouterr().err) if line["event"] == "target_finished"
    ]
    assert finished[-1]["status"] == "rolled_back"
    assert "did not finish within 60 s" in finished[-1]["error"]


async def test_timeout_without_rollback_fails(sim: Simulator, ecs: ECSClient) -> None:
    code = await ecs_deploy(
        sim, "-c", "prod", "-n", "plain", "-i", "example/plain:broken", "-t", "30"
    )
    assert code == 1
    assert (await service(ecs, "plain"))["taskDefinition"] == arn("plain:2")


async def test_desired_zero(sim: Simulator, ecs: ECSClient) -> None:
    assert (
        await ecs_deploy(sim, "-c", "prod", "-n", "web", "-i", f"{REGISTRY}/web:2", "-D", "0") == 0
    )
    svc = await service(ecs, "web")
    assert (svc["desiredCount"], svc["runningCount"], svc["taskDefinition"]) == (0, 0, arn("web:2"))


async def test_max_definitions_prunes_exact_family_only(sim: Simulator, ecs: ECSClient) -> None:
    for tag in ("2", "3", "4"):
        assert await ecs_deploy(sim, "-c", "prod", "-n", "web", "-i", f"{REGISTRY}/web:{tag}") == 0
    assert await ecs_deploy(sim, "-d", "web-worker", "-i", f"{REGISTRY}/web:9") == 0
    assert (
        await ecs_deploy(
            sim, "-c", "prod", "-n", "web", "-i", f"{REGISTRY}/web:5", "--max-definitions", "1"
        )
        == 0
    )
    active = (await ecs.list_task_definitions(status="ACTIVE"))["taskDefinitionArns"]
    web = sorted(a for a in active if "/web:" in a)
    # web:5 runs; web:4 is what a rollback would return to; older ones are gone
    assert web == [arn("web:4"), arn("web:5")]
    assert arn("web-worker:1") in active
    assert arn("web-worker:2") in active


async def test_run_task_without_waiting(sim: Simulator, ecs: ECSClient) -> None:
    assert (
        await ecs_deploy(
            sim, "-c", "prod", "-d", "migrate", "-i", "example/migrate:2", "--run-task"
        )
        == 0
    )
    tasks = (await ecs.list_tasks(cluster="prod", family="migrate"))["taskArns"]
    assert len(tasks) == 1


@pytest.mark.parametrize(
    ("image", "expected"), [("example/migrate:2", 0), ("example/migrate:fails", 1)]
)
async def test_run_task_wait_for_success(
    sim: Simulator, ecs: ECSClient, capsys: pytest.CaptureFixture[str], image: str, expected: int
) -> None:
    network = "awsvpcConfiguration={subnets=[subnet-1],assignPublicIp=DISABLED}"
    code = await ecs_deploy(
        sim, "-c", "prod", "-d", "migrate", "-i", image, "--run-task", "--wait-for-success",
        "--launch-type", "FARGATE", "--network-configuration", network,
    )  # fmt: skip
    assert code == expected
    [task_arn] = (await ecs.list_tasks(cluster="prod", family="migrate", desiredStatus="STOPPED"))[
        "taskArns"
    ]
    [task] = (await ecs.describe_tasks(cluster="prod", tasks=[task_arn]))["tasks"]
    assert task["lastStatus"] == "STOPPED"
    assert task["containers"][0]["exitCode"] == (0 if expected == 0 else 3)
    if expected:
        assert "essential container m exited with code 3" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ([], 3, "Usage"),
        (["--no-such-flag"], 3, "No such option"),
        (["-c", "prod", "-i", "x:1"], 5, "-n/--service-name or -d/--task-definition"),
        (["-c", "prod", "-n", "web", "-d", "web", "-i", "x:1"], 6, "only one of"),
        (["-n", "web", "-i", "x:1"], 7, "-c/--cluster"),
        (["-c", "prod", "-n", "web"], 8, "-i/--image"),
        (
            ["-c", "prod", "-n", "web", "-i", "x:1", "--max-definitions", "two"],
            9,
            "--max-definitions",
        ),
        (["-c", "prod", "-n", "web", "-i", "x:1", "--launch-type", "FARGATE"], 10, "--run-task"),
        (["-c", "prod", "-n", "web", "-i", "x:1", "--wait-for-success"], 11, "--run-task"),
        (
            ["-c", "prod", "-n", "web", "-i", "x:1", "--network-configuration", "{}"],
            11,
            "--run-task",
        ),
        (["-c", "prod", "-n", "web", "-i", "x:1", "--platform-version", "1.4.0"], 12, "--run-task"),
        (["-c", "prod", "-n", "web", "-i", "/leading/slash:1"], 13, "cannot parse image"),
        (["-c", "prod", "-n", "web", "-i", "host:port/app:1"], 13, "cannot parse image"),
        (["-c", "prod", "-n", "web", "-i", "x:1", "-t", "soon"], 3, "-t"),
    ],
)
async def test_validation_exit_codes(
    sim: Simulator,
    ecs: ECSClient,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    message: str,
) -> None:
    assert await single.run(args, clock=sim.clock) == code
    assert message in capsys.readouterr().err
    # nothing was changed in ECS
    assert (await service(ecs, "web"))["taskDefinition"] == arn("web:1")
    assert len((await ecs.list_task_definitions(familyPrefix="web"))["taskDefinitionArns"]) == 1


DEEP_NETWORK = "awsvpcConfiguration=" + "{a=" * 5_000
FIVE_THOUSAND_DIGITS = "9" * 5_000


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["-n", "web", "-to", "$(touch pwned)", "-i", "ignore"], 13, "-to/--tag-only: tag"),
        (["-n", "web", "-to", "", "-i", "ignore"], 13, "the tag is empty"),
        (["-n", "web", "-i", "x:1", "-r", "eu-west-1;x"], 3, "-r/--region: 'eu-west-1;x'"),
        (["-n", "web", "-i", "x:1", "-r", "eu west 1"], 3, "not an AWS region name"),
        (["-n", "web", "-i", "x:1", "--max-definitions", FIVE_THOUSAND_DIGITS], 9, "0 to"),
        (["-n", "web", "-i", "x:1", "--max-definitions", "-1"], 9, "whole number"),
        (["-n", "web", "-i", "x:1", "--max-definitions", "\u00b2"], 9, "whole number"),
        (["-n", "web", "-i", "x:1", "-D", "5001"], 3, "0<=x<=5000"),
        (["-n", "web", "-i", "x:1", "-D", FIVE_THOUSAND_DIGITS], 3, "--desired-count"),
        (
            ["-d", "migrate", "-i", "x:1", "--run-task", "--network-configuration", DEEP_NETWORK],
            3,
            "--network-configuration: the network configuration is 15,020 characters",
        ),
        (
            ["-d", "migrate", "-i", "x:1", "--run-task", "--network-configuration",
             "awsvpcConfiguration=" + "[" * 1_000],
            3,
            "--network-configuration: nested more than 10 deep",
        ),
    ],
)  # fmt: skip
async def test_bad_values_are_refused_before_any_call(
    sim: Simulator,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    message: str,
) -> None:
    """One clear line and the original's exit code; ECS never hears of it."""
    assert await ecs_deploy(sim, "-c", "prod", *args) == code
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert sim.stats().total_calls == 0


async def test_bad_endpoint_url_is_refused(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--endpoint-url", "ht!tp://::::", "-c", "prod", "-n", "web", "-i", "x:1"]
    assert await single.run(args, clock=sim.clock) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("ecs-deploy: --endpoint-url: 'ht!tp://::::' is not")
    assert "\n" not in err


async def test_max_definitions_zero_keeps_every_revision(sim: Simulator, ecs: ECSClient) -> None:
    """0 means no clean-up, as in the original."""
    args = ["-c", "prod", "-n", "worker", "-i", "example/worker:2", "--max-definitions", "0"]
    assert await ecs_deploy(sim, *args) == 0
    listed = await ecs.list_task_definitions(familyPrefix="worker", status="ACTIVE")
    assert len(listed["taskDefinitionArns"]) == 3


async def test_missing_region_is_one_line(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    assert await ecs_deploy(sim, "-c", "prod", "-n", "web", "-i", "x:1") == 1
    err = capsys.readouterr().err.strip()
    # this command's own flag, then the environment variables in the SDKs' order
    assert err == (
        "ecs-deploy: no AWS region: pass -r/--region, or set AWS_REGION or "
        "AWS_DEFAULT_REGION, or a region in the AWS profile"
    )


@pytest.mark.parametrize(
    ("flag", "aws_region", "default_region"),
    [
        (None, REGION, None),
        (None, REGION, "us-east-1"),  # AWS_REGION comes before AWS_DEFAULT_REGION
        (REGION, "us-east-1", "us-east-1"),  # and -r/--region before both
        ("", REGION, "us-east-1"),  # an empty -r, as CI templates pass "$VAR", is no region
    ],
)
async def test_region_follows_the_sdk_order(
    sim: Simulator,
    ecs: ECSClient,
    monkeypatch: pytest.MonkeyPatch,
    flag: str | None,
    aws_region: str,
    default_region: str | None,
) -> None:
    """The simulator keeps each region apart: web exists only in REGION."""
    monkeypatch.setenv("AWS_REGION", aws_region)
    if default_region is None:
        monkeypatch.delenv("AWS_DEFAULT_REGION")
    else:
        monkeypatch.setenv("AWS_DEFAULT_REGION", default_region)
    region = ["-r", flag] if flag is not None else []
    assert await ecs_deploy(sim, *region, "-c", "prod", "-n", "web", "-i", f"{REGISTRY}/web:2") == 0
    assert (await service(ecs, "web"))["taskDefinition"] == arn("web:2")


async def test_bad_region_in_the_environment_is_one_line(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu west 1")
    assert await ecs_deploy(sim, "-c", "prod", "-n", "web", "-i", "x:1") == 1
    err = capsys.readouterr().err.strip()
    assert err == "ecs-deploy: AWS_REGION: 'eu west 1' is not an AWS region name (like eu-west-1)"
    assert sim.stats().total_calls == 0


async def test_missing_credentials_is_one_line(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert await ecs_deploy(sim, "-c", "prod", "-n", "web", "-i", "x:1") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ecs-deploy: no AWS credentials")
    assert "\n" not in err


async def test_static_keys_from_flags_are_never_logged(
    sim: Simulator,
    ecs: ECSClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    secret = "zzSECRETzzFLAGzz0123456789"
    code = await ecs_deploy(
        sim,
        "-k",
        "AKIDFLAG",
        "-s",
        secret,
        "-r",
        REGION,
        "-c",
        "prod",
        "-n",
        "web",
        "-i",
        f"{REGISTRY}/web:2",
        "-v",
    )
    assert code == 0
    err = capsys.readouterr().err
    assert secret not in err
    # -v adds one line per AWS request: operation, request id, retries
    calls = [line for line in log_lines(err) if line["event"] == "aws_call"]
    assert {"DescribeServices", "RegisterTaskDefinition", "UpdateService"} <= {
        line["operation"] for line in calls
    }
    assert all(line["request_id"] for line in calls)


async def test_secrets_of_a_definition_read_from_ecs_are_learned(sim: Simulator) -> None:
    """Every output's redactor learns the base revision's secrets as the run reads it."""
    redactor = Redactor()
    target = Target(
        "web", cluster="prod", service="web", image=f"{REGISTRY}/web:2", scope=AwsScope(REGION)
    )
    async with sim_pool(sim) as pool:
        context = RunContext(pool, sim.clock, lambda event: None, redactor=redactor)
        result = await deploy_target(target, context)
    assert result.status.ok
    assert redactor.scrub(f"error near {SECRET_ENV_VALUE}!") == f"error near {MASK}!"


@pytest.mark.parametrize(
    ("region", "environ", "error"),
    [
        ("eu west 1", {}, "region: 'eu west 1' is not an AWS region name (like eu-west-1)"),
        (
            REGION,
            {"AWS_ENDPOINT_URL_ECS": "ht!tp://::::"},
            f"cannot create an ECS client in {REGION}: Invalid endpoint: ht!tp://::::",
        ),
    ],
)
async def test_a_scope_botocore_refuses_fails_only_its_target(
    sim: Simulator,
    monkeypatch: pytest.MonkeyPatch,
    region: str,
    environ: dict[str, str],
    error: str,
) -> None:
    """No client can be built: that target fails with the reason, nothing is raised."""
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    target = Target(
        "web", cluster="prod", service="web", image=f"{REGISTRY}/web:2", scope=AwsScope(region)
    )
    async with ClientPool(sim.clock) as pool:
        context = RunContext(pool, sim.clock, lambda event: None)
        result = await deploy_target(target, context)
    assert result.status is Status.FAILED
    assert result.error is not None
    assert result.error.startswith(error), result.error
