"""`-a/--aws-assume-role`: keys come from STS (moto's server); every ECS call uses them,
renewed before they expire."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ecs_deploy_many.aws.session import ClientPool
from ecs_deploy_many.cli import single
from ecs_deploy_many.core.result import Status
from ecs_deploy_many.core.scope import AwsScope
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.deploy.pipeline import RunContext, deploy_target
from ecs_deploy_many.sim.server import Simulator
from tests.integration.test_single_service import FLEET, REGISTRY, SPEED, arn, ecs_client
from tests.moto_server import moto_server

pytestmark = [pytest.mark.anyio, pytest.mark.real_time]

ROLE = "arn:aws:iam::123456789012:role/deployer"
# STS's shortest role session; it is already inside botocore's 15-minute refresh window.
SHORTEST_ROLE_SESSION = 900


@pytest.fixture(scope="module")
def sts_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def base_credentials(sts_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDBASE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "base-secret-key-0123456789")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts_url)


@pytest.mark.usefixtures("base_credentials")
async def test_assume_role_then_deploy(capsys: pytest.CaptureFixture[str]) -> None:
    async with Simulator(FLEET, speed=SPEED) as sim:
        code = await single.run(
            [
                "--endpoint-url", sim.endpoint_url, "--log-format", "json",
                "-a", ROLE,
                "-c", "prod", "-n", "web", "-i", f"{REGISTRY}/web:2",
            ],
            clock=sim.clock,
        )  # fmt: skip
        assert code == 0
        callers = sim.stats().callers
        async with ecs_client(sim.endpoint_url) as ecs:
            described = await ecs.describe_services(cluster="prod", services=["web"])
    assert described["services"][0]["taskDefinition"] == arn("web:2")
    # every call of the deploy was signed with the role's temporary keys, none with the base
    assert "AKIDBASE" not in callers
    assert any(key.startswith("ASIA") for key in callers)
    assert "base-secret-key-0123456789" not in capsys.readouterr().err


@pytest.mark.usefixtures("base_credentials")
async def test_role_credentials_are_renewed_before_they_expire() -> None:
    """A run may outlast the role session: credentials near their expiry are renewed.

    Credentials of the shortest session are due for renewal from the start, so every
    later call asks STS again and each comes back with new keys; nothing waits.
    """
    target = Target(
        "web",
        cluster="prod",
        service="web",
        image=f"{REGISTRY}/web:2",
        scope=AwsScope("eu-west-1", assume_role=ROLE),
    )
    async with (
        Simulator(FLEET, speed=SPEED) as sim,
        ClientPool(
            sim.clock, endpoint_url=sim.endpoint_url, role_session_seconds=SHORTEST_ROLE_SESSION
        ) as pool,
    ):
        result = await deploy_target(target, RunContext(pool, sim.clock, lambda event: None))
        callers = sim.stats().callers
    assert result.status is Status.SUCCEEDED, result.error
    assert "AKIDBASE" not in callers
    role_keys = [key for key in callers if key.startswith("ASIA")]
    assert len(role_keys) > 1, callers
