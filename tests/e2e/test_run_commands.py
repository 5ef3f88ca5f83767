"""`ecs-deploy-many rollback RUN` and `resume RUN` from the command line, in-process.

The deployer runs against a simulator over HTTP on the tests' virtual-time loop, its
journal in the test's state directory.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ecs_deploy_many.sim.server import Simulator
from tests.e2e.helpers import plan_world
from tests.e2e.test_fleet_cli import FLEET, PLAN, many
from tests.integration.helpers import ecs_client, watch_service

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]

RUN_LINE = re.compile(r"^run (\d{8}T\d{6}Z-[0-9a-f]{6}): journal at ", re.MULTILINE)
REVISION = re.compile(r"task-definition/([\w-]+:\d+)$")


@pytest.fixture
async def sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Simulator]:
    async with plan_world(tmp_path, monkeypatch, PLAN, FLEET) as running:
        yield running


async def command(
    sim: Simulator, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    """Exit code and stderr of one command aimed at ``sim``."""
    capsys.readouterr()
    code = await many(
        *args, "--endpoint-url", sim.endpoint_url, "--speed", "100", "--log-format", "json"
    )
    return code, capsys.readouterr().err


def report_of(path: str) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(Path(path).read_text())
    return report


def target_in(path: str, name: str) -> dict[str, Any]:
    return next(t for t in report_of(path)["targets"] if t["name"] == name)


def write_plan(text: str) -> None:
    Path("plan.yaml").write_text(text)


async def revisions(sim: Simulator) -> dict[str, str]:
    async with ecs_client(sim) as ecs:
        found = {}
        for cluster, names in (("prod", ["api", "web"]), ("jobs", ["mailer"])):
            described = await ecs.describe_services(cluster=cluster, services=names)
            for service in described["services"]:
                match = REVISION.search(service["taskDefinition"])
                assert match
                found[service["serviceName"]] = match[1]
    return found


async def test_rollback_puts_the_runs_services_back_and_leaves_what_moved_on(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    before = await revisions(sim)
    code, err = await command(sim, capsys, "plan.yaml")
    assert code == 0, err[-2000:]
    deployed = RUN_LINE.search(err)
    assert deployed
    run_id = deployed[1]
    assert await revisions(sim) != before
    async with ecs_client(sim) as ecs:  # someone deploys mailer again afterwards
        described = await ecs.describe_services(cluster="jobs", services=["mailer"])
        await ecs.update_service(
            cluster="jobs",
            service="mailer",
            taskDefinition=before["mailer"],
            forceNewDeployment=True,
        )
        await watch_service(ecs, "jobs", "mailer", lambda s: len(s["deployments"]) == 1)
    assert described["services"][0]["taskDefinition"].endswith(":2")

    code, err = await command(
        sim, capsys, "rollback", run_id[:15], "--reason", "checkout broke", "--report", "back.json"
    )
    assert code == 0, err[-2000:]
    assert f"rolling back run {run_id} of plan.yaml" in err
    after = await revisions(sim)
    assert after == before  # api and web put back; mailer was there already
    report = report_of("back.json")
    statuses = {t["name"]: (t["status"], t["error"]) for t in report["targets"]}
    reason = f"rollback of run {run_id}: checkout broke"
    assert statuses == {
        "prod/api": ("succeeded", reason),
        "prod/web": ("succeeded", reason),
        "jobs/mailer": ("unchanged", None),
    }
    assert report["run_id"] != run_id  # a journaled run of its own

    capsys.readouterr()
    assert await many("runs") == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == [report["run_id"], run_id]


async def test_rollback_leaves_a_service_deployed_since_unless_forced(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = await command(sim, capsys, "plan.yaml")
    run_id = RUN_LINE.search(err)[1]  # type: ignore[index]
    async with ecs_client(sim) as ecs:
        registered = await ecs.register_task_definition(
            family="app-web",
            containerDefinitions=[{"name": "web", "image": "example/web:2.1", "memory": 128}],
        )
        newer = registered["taskDefinition"]["taskDefinitionArn"]
        await ecs.update_service(cluster="prod", service="web", taskDefinition=newer)

    code, err = await command(
        sim, capsys, "rollback", run_id, "--reason", "r", "--report", "a.json"
    )
    assert code == 0, err[-2000:]
    web = target_in("a.json", "prod/web")
    assert web["status"] == "skipped"
    assert "moved on since the run" in web["error"]
    assert (await revisions(sim))["web"] == REVISION.search(newer)[1]  # type: ignore[index]

    code, err = await command(
        sim, capsys, "rollback", run_id, "--reason", "r", "--force", "--report", "b.json"
    )
    assert code == 0, err[-2000:]
    web = target_in("b.json", "prod/web")
    assert web["status"] == "succeeded"


async def test_resume_refuses_a_changed_plan_unless_forced(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = await command(sim, capsys, "plan.yaml")
    run_id = RUN_LINE.search(err)[1]  # type: ignore[index]
    write_plan(PLAN.replace("example/api:${RELEASE}", "example/api:3.0"))
    updates = dict(sim.stats().updates)

    code, err = await command(sim, capsys, "resume", run_id)
    assert code == 2
    assert f"error: target prod/api changed since run {run_id}" in err
    assert "--force resumes with the plan as it is now" in err
    assert sim.stats().updates == updates  # nothing changed

    code, err = await command(sim, capsys, "resume", run_id, "--force", "--report", "r.json")
    assert code == 0, err[-2000:]
    report = report_of("r.json")
    assert report["run_id"] == run_id  # the same run, continued
    statuses = {t["name"]: t["status"] for t in report["targets"]}
    assert statuses["prod/api"] == "succeeded"  # started afresh: 3.0 deployed
    assert statuses["prod/web"] == "succeeded"  # kept from the run
    assert (await revisions(sim))["api"].endswith(":3")
