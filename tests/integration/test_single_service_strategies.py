"""`ecs-deploy` on services deployed by ECS's newer strategies and by other controllers:
the same verdicts as a fleet run, through the single-service command's flags and exit
codes, on the simulator's example fleet (``deploy-plans/sim/strategies-fleet.yaml``)."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from ecs_deploy_many.cli import single
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import REGION, ecs_client

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]

FLEET = Path(__file__).resolve().parents[2] / "deploy-plans" / "sim" / "strategies-fleet.yaml"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(FLEET, speed=40, strict_output=True) as running:
        yield running


async def ecs_deploy(sim: Simulator, service: str, image: str, *args: str) -> int:
    return await single.run(
        [
            *("--endpoint-url", sim.endpoint_url, "--log-format", "json"),
            *("-c", "prod", "-n", service, "-i", image, "-t", "1800", *args),
        ],
        clock=sim.clock,
    )


async def running(sim: Simulator, service: str) -> str:
    async with ecs_client(sim) as ecs:
        [found] = (await ecs.describe_services(cluster="prod", services=[service]))["services"]
    return str(found["taskDefinition"]).rsplit("/", 1)[-1]


def finished(err: str) -> dict[str, Any]:
    [line] = [
        json.loads(line)
        for line in err.splitlines()
        if line.startswith("{") and json.loads(line)["event"] == "target_finished"
    ]
    return dict(line)


@pytest.mark.parametrize("service", ["bluegreen", "linear", "canary"])
async def test_each_strategy_succeeds_and_a_failing_image_is_rolled_back_by_ecs(
    sim: Simulator, service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await ecs_deploy(sim, service, "example/app:2") == 0
    assert finished(capsys.readouterr().err)["status"] == "succeeded"
    assert await running(sim, service) == "app:2"

    assert await ecs_deploy(sim, service, "example/app:broken-2") == 1
    line = finished(capsys.readouterr().err)
    assert (line["status"], line["error"]) == (
        "rolled_back",
        "ECS rolled back: ECS deployment circuit breaker: tasks failed to start.",
    )
    assert await running(sim, service) == "app:2"


async def test_an_alarm_rollback_names_the_alarm(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await ecs_deploy(sim, "alarmed", "example/app:bad-metrics") == 1
    line = finished(capsys.readouterr().err)
    assert (line["status"], line["error"]) == (
        "rolled_back",
        "ECS rolled back: alarm app-5xx in ALARM",
    )
    assert await running(sim, "alarmed") == "app:1"


@pytest.mark.parametrize("controller", ["codedeploy", "external"])
async def test_a_foreign_controller_is_refused_without_any_change(
    sim: Simulator, controller: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await ecs_deploy(sim, controller, "example/app:2") == 1

    line = finished(capsys.readouterr().err)
    assert line["status"] == "failed"
    assert line["failed_step"] == "resolve"
    kind = {"codedeploy": "CODE_DEPLOY", "external": "EXTERNAL"}[controller]
    assert f"service {controller} uses the {kind} deployment controller" in line["error"]
    calls = sim.stats().calls
    assert "UpdateService" not in calls
    assert "RegisterTaskDefinition" not in calls
    assert await running(sim, controller) == "app:1"


async def test_sigint_with_the_stop_flag_stops_the_deployment_and_ecs_rolls_it_back(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    async def interrupt_once_in_progress() -> None:
        async with ecs_client(sim) as ecs:
            while True:
                await sim.clock.sleep(5)
                listed = await ecs.list_service_deployments(
                    cluster="prod", service="bluegreen", status=["IN_PROGRESS"]
                )
                if listed["serviceDeployments"]:
                    os.kill(os.getpid(), signal.SIGINT)
                    return

    async with anyio.create_task_group() as group:
        group.start_soon(interrupt_once_in_progress)
        code = await ecs_deploy(
            sim, "bluegreen", "example/app:2", "--stop-deployments-on-interrupt"
        )

    assert code == 130
    line = finished(capsys.readouterr().err)
    assert line["status"] == "interrupted"
    assert line["error"].startswith("interrupted during wait; stopped service deployment ")
    assert sim.stats().calls["StopServiceDeployment"] == 1
    async with ecs_client(sim) as ecs:
        while (await running(sim, "bluegreen")) != "app:1":  # ECS rolls back to blue
            await sim.clock.sleep(10)
        listed = await ecs.list_service_deployments(cluster="prod", service="bluegreen")
        statuses = [brief["status"] for brief in listed["serviceDeployments"]]
    assert "ROLLBACK_SUCCESSFUL" in statuses or "ROLLBACK_IN_PROGRESS" in statuses
    assert f"arn:aws:ecs:{REGION}:123456789012:service-deployment/prod/bluegreen/" in line["error"]


async def test_a_timeout_shorter_than_the_strategys_waits_is_said_before_deploying(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # linear: 25 % steps a minute apart, then a minute's bake: 4 minutes at the least
    assert await ecs_deploy(sim, "linear", "example/app:2", "-t", "120") == 1
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line[:1] == "{"]
    events = [line["event"] for line in lines]
    assert events.index("timeout_too_short") < events.index("service_updated")
    [warning] = [line for line in lines if line["event"] == "timeout_too_short"]
    assert (warning["level"], warning["timeout_s"], warning["least_s"]) == ("warning", 120, 240)
    assert "give the target a longer timeout" in warning["reason"]
    assert "did not finish within 120 s" in finished("\n".join(map(json.dumps, lines)))["error"]
