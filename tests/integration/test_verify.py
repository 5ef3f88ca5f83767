"""`verify PLAN` and the check before a run: ECS is the simulator (over HTTP); ECR,
Secrets Manager, SSM, IAM and CloudWatch Logs are moto's server, reached through the
SDK's endpoint settings as a deployer's SDK would reach AWS."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from ecs_deploy_many.aws.session import ClientPool
from ecs_deploy_many.cli.many import cli
from ecs_deploy_many.core.scope import AwsScope
from ecs_deploy_many.deploy.dryrun import preview_plan
from ecs_deploy_many.deploy.verify import verify_previews
from ecs_deploy_many.plan import parse_plan
from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import FAST_TIMINGS, REGION
from tests.moto_server import moto_server

pytestmark = [pytest.mark.anyio, pytest.mark.real_time, pytest.mark.usefixtures("aws_credentials")]

SPEED = 100.0
ACCOUNT = "123456789012"
REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
SERVICES = ("ECR", "SECRETS_MANAGER", "SSM", "IAM", "CLOUDWATCH_LOGS")
SECRET_VALUE = "hunter2-the-database-password"


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


@dataclass
class Aws:
    """moto's server with what a fleet references, and clients to change it."""

    url: str
    secret_arn: str

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)


@pytest.fixture
def aws(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """An image ``app:2``, a secret ``db``, a parameter ``/app/token``, roles ``app-task``
    and ``app-exec`` and a log group ``/ecs/app``."""
    with moto_server() as url:
        for service in SERVICES:
            monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", url)
        ecr = boto3.client("ecr", region_name=REGION)
        ecr.create_repository(repositoryName="app")
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": f"sha256:{'0' * 64}",
                "size": 1,
            },
            "layers": [],
        }
        ecr.put_image(repositoryName="app", imageManifest=json.dumps(manifest), imageTag="2")
        secrets = boto3.client("secretsmanager", region_name=REGION)
        arn = secrets.create_secret(Name="db", SecretString=SECRET_VALUE)["ARN"]
        ssm = boto3.client("ssm", region_name=REGION)
        ssm.put_parameter(Name="/app/token", Value=SECRET_VALUE, Type="SecureString")
        iam = boto3.client("iam", region_name=REGION)
        for role in ("app-task", "app-exec"):
            iam.create_role(RoleName=role, AssumeRolePolicyDocument="{}")
        boto3.client("logs", region_name=REGION).create_log_group(logGroupName="/ecs/app")
        yield Aws(url, arn)
        ecr.delete_repository(repositoryName="app", force=True)


def definition(
    secret: str,
    *,
    task_role: str = "app-task",
    log_group: str = "/ecs/app",
    create_group: bool = False,
) -> dict[str, Any]:
    options = {"awslogs-group": log_group, "awslogs-region": REGION}
    if create_group:
        options["awslogs-create-group"] = "true"
    return {
        "taskRoleArn": role_arn(task_role),
        "executionRoleArn": role_arn("app-exec"),
        "containerDefinitions": [
            {
                "name": "app",
                "image": f"{REGISTRY}/app:1",
                "memory": 64,
                "secrets": [
                    {"name": "DB_PASSWORD", "valueFrom": secret},
                    {"name": "API_TOKEN", "valueFrom": "/app/token"},
                ],
                "logConfiguration": {"logDriver": "awslogs", "options": options},
            }
        ],
    }


def fleet(definitions: dict[str, dict[str, Any]]) -> Fleet:
    return Fleet.model_validate(
        {
            "region": REGION,
            "timings": FAST_TIMINGS,
            "task_definitions": {name: {"revisions": [body]} for name, body in definitions.items()},
            "clusters": [
                {
                    "name": "prod",
                    "services": [{"name": name, "task_definition": name} for name in definitions],
                }
            ],
        }
    )


def plan_text(images: dict[str, str]) -> str:
    targets = "\n".join(
        f'  - {{cluster: prod, service: {name}, image: "{REGISTRY}/app:{tag}"}}'
        for name, tag in images.items()
    )
    return f"version: 1\ndefaults: {{region: {REGION}, timeout: 300}}\ntargets:\n{targets}\n"


async def ecs_deploy_many(tmp_path: Path, sim: Simulator, *args: str) -> int:
    code = await cli.main(
        [*args, "--endpoint-url", sim.endpoint_url, "--log-format", "json"],
        "ecs-deploy-many",
        standalone_mode=False,
    )
    return code if isinstance(code, int) else 0


def write_plan(tmp_path: Path, text: str) -> str:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return str(path)


def block(output: str, target: str) -> str:
    """The lines verify printed for ``target``."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}  "))
    end = next(
        (i for i in range(start + 1, len(lines)) if not lines[i].startswith("  ")), len(lines)
    )
    return "\n".join(lines[start:end])


async def test_every_missing_thing_is_listed_per_target_and_the_run_changes_nothing(
    tmp_path: Path, aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    missing_secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:gone-AbCdEf"
    definitions = {
        "web": definition(missing_secret),
        "api": definition(aws.secret_arn, task_role="gone-role", log_group="/ecs/gone"),
    }
    plan = write_plan(tmp_path, plan_text({"web": "9", "api": "2"}))
    async with Simulator(fleet(definitions), speed=SPEED) as sim:
        report = tmp_path / "verify.json"
        code = await ecs_deploy_many(tmp_path, sim, "verify", plan, "--report", str(report))
        out = capsys.readouterr().out
        assert code == 2
        written = json.loads(report.read_text())
        assert written["missing"] == 4
        assert [(t["name"], t["verdict"]) for t in written["targets"]] == [
            ("prod/web", "missing"),
            ("prod/api", "missing"),
        ]
        assert [m["kind"] for m in written["targets"][1]["missing"]] == ["log group", "task role"]
        web, api = block(out, "prod/web"), block(out, "prod/api")
        assert f"missing      image {REGISTRY}/app:9 (container app): not in repository" in web
        assert (
            "missing      secret DB_PASSWORD of container app (Secrets Manager, eu-west-1): "
            "no such secret" in web
        )
        assert f"missing      task role {role_arn('gone-role')}: no such role" in api
        assert (
            "missing      log group /ecs/gone (eu-west-1, container app): no such log group" in api
        )
        assert "gone" not in web
        assert "app:9" not in api
        assert out.splitlines()[-1] == "verify: 2 targets: 0 ok, 2 with 4 missing"
        assert missing_secret not in out
        assert SECRET_VALUE not in out

        code = await ecs_deploy_many(tmp_path, sim, plan, "--no-journal")
        err = capsys.readouterr().err
        only_api = await ecs_deploy_many(tmp_path, sim, plan, "--no-journal", "--only", "*/api")
        calls = sim.stats().calls
    assert (code, only_api) == (2, 2)
    assert calls.get("UpdateService", 0) == 0
    assert calls.get("RegisterTaskDefinition", 0) == 0
    assert (
        "nothing was deployed: verify found 2 missing in 1 target (prod/api); "
        "--no-verify deploys anyway" in capsys.readouterr().err
    )
    # the image is missing for pinning too (which names the run's halt), and for verify
    assert "nothing was deployed" in err
    assert "verify: 2 targets: 0 ok, 2 with 4 missing" in err
    assert SECRET_VALUE not in err
    assert missing_secret not in err


async def test_when_everything_exists_verify_passes_and_the_run_deploys(
    tmp_path: Path, aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    """Secrets Manager by ARN with a JSON key and version stage, and by the name SSM gives
    it; SSM by name and by ARN."""
    parameter_arn = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/app/token"
    api = definition(f"{aws.secret_arn}:password:AWSCURRENT:")
    api["containerDefinitions"][0]["secrets"] += [
        {"name": "T", "valueFrom": parameter_arn},
        {"name": "VIA_SSM", "valueFrom": "/aws/reference/secretsmanager/db"},
    ]
    plan = write_plan(tmp_path, plan_text({"web": "2", "api": "2"}))
    async with Simulator(
        fleet({"web": definition(aws.secret_arn), "api": api}), speed=SPEED
    ) as sim:
        code = await ecs_deploy_many(tmp_path, sim, "verify", plan)
        out = capsys.readouterr().out
        assert code == 0, out
        assert block(out, "prod/api") == (
            "prod/api  ok: found 1 image, 4 secrets, 1 log group, 1 task role, 1 execution role"
        )
        assert out.splitlines()[-1] == "verify: 2 targets: 2 ok"

        code = await ecs_deploy_many(tmp_path, sim, plan, "--no-journal")
        calls = sim.stats().calls
    assert code == 0
    assert calls["UpdateService"] == 2


async def test_a_log_group_ecs_creates_is_not_missing(
    tmp_path: Path, aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    definitions = {"web": definition(aws.secret_arn, log_group="/ecs/new", create_group=True)}
    plan = write_plan(tmp_path, plan_text({"web": "2"}))
    async with Simulator(fleet(definitions), speed=SPEED) as sim:
        code = await ecs_deploy_many(tmp_path, sim, "verify", plan)
    out = capsys.readouterr().out
    assert code == 0, out
    assert (
        "created      log group /ecs/new (eu-west-1, container app) (awslogs-create-group)" in out
    )


@pytest.fixture
def denied_secrets_and_roles(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Credentials of a user who may read ECR, SSM and CloudWatch Logs, but not Secrets
    Manager nor IAM; moto enforces IAM policies meanwhile."""
    iam = aws.client("iam")
    iam.create_user(UserName="deployer")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["ecr:*", "ssm:*", "logs:*"], "Resource": "*"}],
    }
    iam.put_user_policy(UserName="deployer", PolicyName="reads", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="deployer")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])

    def enforce_after(count: str) -> None:
        request = urllib.request.Request(
            f"{aws.url}/moto-api/reset-auth",
            data=count.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},  # else the body is read as a form
        )
        urllib.request.urlopen(request).close()

    enforce_after("0")
    try:
        yield
    finally:
        enforce_after("inf")


@pytest.mark.usefixtures("denied_secrets_and_roles")
async def test_access_denied_is_not_checked_rather_than_missing_and_the_run_goes_on(
    tmp_path: Path, aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(tmp_path, plan_text({"web": "2"}))
    async with Simulator(fleet({"web": definition(aws.secret_arn)}), speed=SPEED) as sim:
        code = await ecs_deploy_many(tmp_path, sim, "verify", plan)
        out = capsys.readouterr().out
        assert code == 0, out
        web = block(out, "prod/web")
        assert web.startswith("prod/web  ok:")
        assert (
            "not checked  secret DB_PASSWORD of container app (Secrets Manager, eu-west-1): "
            "access denied" in web
        )
        assert f"not checked  task role {role_arn('app-task')}: access denied" in web
        assert "API_TOKEN" not in web  # SSM may be read, and the parameter exists

        code = await ecs_deploy_many(tmp_path, sim, plan, "--no-journal")
        calls = sim.stats().calls
    assert code == 0
    assert calls["UpdateService"] == 1
    assert "not checked  task role" in capsys.readouterr().err


async def test_each_thing_a_fleet_shares_is_asked_once(aws: Aws) -> None:
    """Twenty services sharing an image's repository, a secret, a parameter, two roles and
    a log group: one call each, whatever the number of targets."""
    names = [f"svc{i}" for i in range(20)]
    definitions = {name: definition(aws.secret_arn) for name in names}
    plan = parse_plan(plan_text(dict.fromkeys(names, "2")), environ={})
    asked: Counter[str] = Counter()

    class Counted(ClientPool):
        """The run's pool, counting every call its other services' clients make."""

        async def client(self, service: str, scope: AwsScope) -> Any:
            client = await super().client(service, scope)
            if not getattr(client, "counted", False):
                client.counted = True
                client.meta.events.register(
                    "before-call", lambda model, **_: asked.update([model.name])
                )
            return client

    async with (
        Simulator(fleet(definitions), speed=SPEED) as sim,
        Counted(sim.clock, endpoint_url=sim.endpoint_url) as pool,
    ):
        previews = await preview_plan(plan, pool, max_parallel=25)
        scopes = {target.name: target.scope for target in plan.targets}
        verification = await verify_previews(previews, scopes, pool)
    assert verification.problems == 0
    assert all(target.unchecked == () for target in verification.targets)
    assert asked == {
        "BatchGetImage": 1,
        "DescribeSecret": 1,
        "GetParameters": 1,
        "GetRole": 2,
        "DescribeLogGroups": 1,
    }
