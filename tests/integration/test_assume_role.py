"""`-a/--aws-assume-role`: keys come from STS (moto's server); every ECS call uses them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from ecs_deploy_many.cli import single
from ecs_deploy_many.sim.server import Simulator
from tests.integration.test_single_service import FLEET, REGISTRY, SPEED, arn, ecs_client

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def sts_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


async def test_assume_role_then_deploy(
    sts_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDBASE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "base-secret-key-0123456789")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts_url)
    async with Simulator(FLEET, speed=SPEED) as sim:
        code = await single.run(
            [
                "--endpoint-url", sim.endpoint_url, "--log-format", "json",
                "-a", "arn:aws:iam::123456789012:role/deployer",
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
