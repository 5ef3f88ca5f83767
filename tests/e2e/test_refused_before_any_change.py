"""A service whose deployment controller ECS will not let UpdateService deploy stops the
whole run before anything changes, like a missing secret: verify finds it first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ecs_deploy_many.sim.fleet import load_fleet
from ecs_deploy_many.sim.server import Simulator
from tests.e2e.test_fleet_cli import many

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]

FLEET = Path(__file__).resolve().parents[2] / "deploy-plans" / "sim" / "strategies-fleet.yaml"
PLAN = """\
version: 1
defaults: {cluster: prod, region: eu-west-1, timeout: 600}
targets:
  - {service: rolling, image: "example/app:2"}
  - {service: codedeploy, image: "example/app:2"}
"""


def _write(name: str, text: str) -> None:
    Path(name).write_text(text)


def _read(name: str) -> str:
    return Path(name).read_text()


@pytest.fixture
async def sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Simulator]:
    monkeypatch.chdir(tmp_path)
    _write("plan.yaml", PLAN)
    async with Simulator(load_fleet(FLEET), speed=100) as running:
        yield running


async def test_a_codedeploy_service_stops_the_run_before_any_change(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = await many("plan.yaml", "--endpoint-url", sim.endpoint_url, "--speed", "100")
    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    assert "prod/codedeploy  refused: service codedeploy uses the CODE_DEPLOY" in err
    assert "verify found 1 refused in 1 target (prod/codedeploy)" in err
    calls = sim.stats().calls
    assert "RegisterTaskDefinition" not in calls
    assert "UpdateService" not in calls


async def test_verify_exits_2_naming_the_controller(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = await many("verify", "plan.yaml", "--endpoint-url", sim.endpoint_url)
    out = capsys.readouterr().out
    assert code == 2, out
    assert "prod/codedeploy  refused: " in out
    assert out.splitlines()[-1].startswith("verify: 2 targets: ")
    assert "1 refused" in out.splitlines()[-1]
