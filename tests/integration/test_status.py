"""`ecs-deploy-many status PLAN`: what runs now against what the plan would deploy.

The command runs in-process against a simulator over HTTP; a second service is caught
mid-deployment and a third after a failed one, as a release job would find them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ecs_deploy_many.cli.many import cli
from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import FAST_TIMINGS, REGION, ecs_client, watch_service

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]

FLEET = Fleet.model_validate(
    {
        "region": REGION,
        "timings": FAST_TIMINGS,
        "task_definitions": {
            name: {
                "containerDefinitions": [{"name": name, "image": f"repo/{name}:1", "memory": 64}]
            }
            for name in ("api", "web", "jobs")
        },
        "clusters": [
            {
                "name": "prod",
                "services": [
                    {"name": "api", "task_definition": "api", "desired_count": 2},
                    {"name": "web", "task_definition": "web", "desired_count": 2},
                    {
                        "name": "jobs",
                        "task_definition": "jobs",
                        "circuit_breaker": {"enable": True, "rollback": False},
                    },
                ],
            }
        ],
        "behaviour": {"images": [{"match": "*:broken", "outcome": "fail_to_start"}]},
    }
)
PLAN = f"""\
version: 1
defaults: {{region: {REGION}}}
targets:
  - {{cluster: prod, service: api, image: "repo/api:1"}}
  - {{cluster: prod, service: web, image: "repo/web:2"}}
  - {{cluster: prod, service: jobs, image: "repo/jobs:2"}}
"""


async def test_status_shows_what_runs_and_what_the_plan_would_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    async with Simulator(FLEET, strict_output=True) as sim, ecs_client(sim) as ecs:
        for service, image in (("web", "repo/web:2"), ("jobs", "repo/jobs:broken")):
            registered = await ecs.register_task_definition(
                family=service,
                containerDefinitions=[{"name": service, "image": image, "memory": 64}],
            )
            revision = registered["taskDefinition"]["taskDefinitionArn"]
            await ecs.update_service(cluster="prod", service=service, taskDefinition=revision)
        await watch_service(
            ecs, "prod", "jobs", lambda s: s["deployments"][0].get("rolloutState") == "FAILED"
        )
        before = sim.stats()
        code = await cli.main(
            [
                "status",
                str(tmp_path / "plan.yaml"),
                "--endpoint-url",
                sim.endpoint_url,
                "--log-format",
                "json",
            ],
            "ecs-deploy-many",
            standalone_mode=False,
        )
        after = sim.stats()
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    api, web, jobs = (lines.index(line) for line in lines if line.startswith("prod/"))
    assert "task-definition/api:1, steady (2/2 tasks running: ECS deployment " in lines[api + 1]
    assert lines[api + 2].strip() == "repo/api:1"
    assert lines[api + 3].strip() == "plan     unchanged"
    assert "task-definition/web:2, deploying (" in lines[web + 1]
    assert "1 older deployment" in lines[web + 1]
    assert lines[web + 3].strip() == "plan     unchanged"  # its deployment is followed
    assert "task-definition/jobs:2, failed (" in lines[jobs + 1]
    assert "circuit breaker" in lines[jobs + 1]
    assert lines[jobs + 2].strip() == "repo/jobs:broken"
    assert lines[jobs + 3].strip() == "plan     new revision"
    assert lines[jobs + 4].strip() == "container jobs: image repo/jobs:broken -> repo/jobs:2"
    # reads only
    read = {op: after.calls[op] - before.calls.get(op, 0) for op in after.calls}
    assert {op for op, count in read.items() if count} <= {
        "DescribeServices",
        "DescribeTaskDefinition",
    }
    assert after.updates == before.updates
