"""A task-definition file as `aws ecs describe-task-definition` prints it, nulls and all,
deploys as it is: through a plan (as a ``${VAR}`` template) and through ``ecs-deploy``.

The file is the simulator's own DescribeTaskDefinition answer, with the nulls some tools
print for unset keys added at several depths.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ecs_deploy_many.cli import single
from ecs_deploy_many.cli.many import cli
from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import FAST_TIMINGS, REGION, ecs_client

pytestmark = [pytest.mark.anyio, pytest.mark.real_time, pytest.mark.usefixtures("aws_credentials")]

SPEED = 100.0
FLEET = Fleet.model_validate(
    {
        "region": REGION,
        "timings": FAST_TIMINGS,
        "task_definitions": {
            "web": {
                "containerDefinitions": [
                    {"name": "web", "image": "example/web:1", "memory": 64, "cpu": 0}
                ]
            }
        },
        "clusters": [{"name": "prod", "services": [{"name": "web", "task_definition": "web"}]}],
    }
)


async def described_with_nulls(sim: Simulator, image: str) -> str:
    """``describe-task-definition --include TAGS`` output for ``web``, with nulls."""
    async with ecs_client(sim.endpoint_url) as ecs:
        answer = await ecs.describe_task_definition(taskDefinition="web", include=["TAGS"])
    described: dict[str, Any] = {"taskDefinition": answer["taskDefinition"], "tags": None}
    body = described["taskDefinition"]
    body.update(placementConstraints=None, taskRoleArn=None, proxyConfiguration=None)
    body["registeredAt"] = body["registeredAt"].isoformat()
    [container] = body["containerDefinitions"]
    container.update(image=image, healthCheck=None, logConfiguration=None, linuxParameters=None)
    container["environment"] = [{"name": "MODE", "value": None}]
    return json.dumps(described, indent=4)


async def running_definition(sim: Simulator) -> dict[str, Any]:
    async with ecs_client(sim.endpoint_url) as ecs:
        service = (await ecs.describe_services(cluster="prod", services=["web"]))["services"][0]
        answer = await ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
    definition: dict[str, Any] = answer["taskDefinition"]
    return definition


async def test_describe_output_with_nulls_deploys_from_a_plan_as_a_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELEASE", "2")
    async with Simulator(FLEET, speed=SPEED) as sim:
        (tmp_path / "web.json").write_text(
            await described_with_nulls(sim, "example/web:${RELEASE}")
        )
        (tmp_path / "plan.yaml").write_text(
            f"version: 1\ndefaults: {{region: {REGION}, timeout: 300}}\n"
            "targets:\n  - {cluster: prod, service: web, task_definition_file: web.json}\n"
        )
        code = await cli.main(
            [str(tmp_path / "plan.yaml"), "--endpoint-url", sim.endpoint_url, "--no-journal"],
            "ecs-deploy-many",
            standalone_mode=False,
        )
        running = await running_definition(sim)
    assert code in (0, None)
    assert running["revision"] == 2
    [container] = running["containerDefinitions"]
    assert container["image"] == "example/web:2"
    assert container["environment"] == [{"name": "MODE"}]
    assert "placementConstraints" not in running or running["placementConstraints"] == []


async def test_describe_output_with_nulls_deploys_with_ecs_deploy(tmp_path: Path) -> None:
    async with Simulator(FLEET, speed=SPEED) as sim:
        (tmp_path / "web.json").write_text(await described_with_nulls(sim, "example/web:1"))
        code = await single.run(
            [
                "--endpoint-url", sim.endpoint_url, "-c", "prod", "-n", "web",
                "-i", "example/web:3", "--task-definition-file", str(tmp_path / "web.json"),
            ],
            clock=sim.clock,
        )  # fmt: skip
        running = await running_definition(sim)
    assert code == 0
    assert running["containerDefinitions"][0]["image"] == "example/web:3"
