"""Selector targets and ``init`` from the command line, against a simulator over HTTP on
the tests' virtual-time loop."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecs_deploy_many.sim.server import Simulator
from tests.e2e.test_fleet_cli import many
from tests.integration.helpers import REGION, ecs_client
from tests.integration.test_discover import SELECTED, SERVICES, fleet_of

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]

MATCHES = [f"datadog/{cluster}/{service}" for cluster, service in sorted(SELECTED)]
RUN_LINE = re.compile(r"^run (\d{8}T\d{6}Z-[0-9a-f]{6}): journal at ", re.MULTILINE)

PLAN = f"""\
version: 1
defaults: {{region: {REGION}, timeout: 300}}
waves:
  - {{name: first, targets: [prod-eu/web]}}
  - {{name: agents, targets: [datadog]}}
  - {{name: rest, targets: ["*"]}}
targets:
  - {{cluster: prod-eu, service: web, image: "example/web:2"}}
  - name: datadog
    select:
      clusters: ["prod-*"]
      runs: datadog/agent
    image: datadog/agent:7.60
  - {{cluster: prod-ap, service: web, image: "example/web:2", depends_on: [datadog]}}
"""


@pytest.fixture
async def sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Simulator]:
    monkeypatch.chdir(tmp_path)
    write("plan.yaml", PLAN)
    async with Simulator(fleet_of(SERVICES), speed=100) as running:
        yield running


async def command(
    sim: Simulator, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of one command aimed at ``sim``."""
    capsys.readouterr()
    code = await many(
        *args, "--endpoint-url", sim.endpoint_url, "--speed", "100", "--log-format", "json"
    )
    out, err = capsys.readouterr()
    return code, out, err


def write(name: str, text: str) -> None:
    Path(name).write_text(text)


def read(name: str) -> str:
    return Path(name).read_text()


def report() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(Path("report.json").read_text())
    return loaded


async def images(sim: Simulator) -> dict[str, list[str]]:
    """``cluster/service`` -> the images its current revision runs."""
    found = {}
    async with ecs_client(sim) as ecs:
        for cluster, services in SERVICES.items():
            described = await ecs.describe_services(cluster=cluster, services=list(services))
            for service in described["services"]:
                definition = await ecs.describe_task_definition(
                    taskDefinition=service["taskDefinition"]
                )
                found[f"{cluster}/{service['serviceName']}"] = [
                    c["image"] for c in definition["taskDefinition"]["containerDefinitions"]
                ]
    return found


async def test_the_dry_run_lists_each_match_and_changes_nothing(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await command(sim, capsys, "plan.yaml", "--dry-run")
    assert code == 0, err[-2000:]
    for name in MATCHES:
        assert f"{name}  (cluster " in out
    for other in ("prod-eu/batch", "prod-us/shop", "prod-ap/mirrored", "staging"):
        assert other not in out
    assert "datadog: selects 3 services" in err
    assert sim.stats().updates == {}


async def test_verify_checks_each_match(sim: Simulator, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code = await many("verify", "plan.yaml", "--endpoint-url", sim.endpoint_url)
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    for name in MATCHES:  # each match is checked (its images are not in Amazon ECR)
        assert f"\n{name}  not checked: " in out, out
    assert "verify: 5 targets: 0 ok, 5 not checked" in out
    assert sim.stats().updates == {}


async def test_a_deploy_through_a_selector_succeeds_per_match(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    before = await images(sim)
    code, _, err = await command(sim, capsys, "plan.yaml", "--report", "report.json")
    assert code == 0, err[-2000:]
    targets = {t["name"]: t for t in report()["targets"]}
    assert set(targets) == {*MATCHES, "prod-eu/web", "prod-ap/web"}
    assert all(targets[name]["status"] == "succeeded" for name in targets)
    assert {targets[name]["wave"] for name in MATCHES} == {"agents"}
    # depends_on: [datadog] waits for every match.
    last_match = max(targets[name]["finished_at"] for name in MATCHES)
    assert targets["prod-ap/web"]["started_at"] >= last_match
    after = await images(sim)
    changed = {name for name in after if after[name] != before[name]}
    assert changed == {"prod-eu/api", "prod-us/api", "prod-ap/agent", "prod-eu/web", "prod-ap/web"}
    assert after["prod-eu/api"] == ["example/api:1", "datadog/agent:7.60"]
    assert after["prod-us/api"] == ["example/api:1", "datadog/agent:7.60"]
    assert after["prod-eu/batch"] == before["prod-eu/batch"]  # datadog/agent-extra
    assert after["prod-ap/mirrored"] == before["prod-ap/mirrored"]  # another registry


async def test_only_and_exclude_see_the_matches_names(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = await command(
        sim, capsys, "plan.yaml", "--only", "datadog/*", "--exclude", "datadog/prod-us/*",
        "--report", "report.json",
    )  # fmt: skip
    assert code == 0, err[-2000:]
    assert [t["name"] for t in report()["targets"]] == [
        "datadog/prod-ap/agent",
        "datadog/prod-eu/api",
    ]


async def test_a_selector_matching_nothing_is_an_error_unless_allowed(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    write("plan.yaml", PLAN.replace('["prod-*"]', '["qa-*"]'))
    code, _, err = await command(sim, capsys, "plan.yaml", "--dry-run")
    assert code == 2
    assert "target datadog: select matches no service" in err
    code, out, err = await command(sim, capsys, "plan.yaml", "--dry-run", "--allow-no-match")
    assert code == 0, err[-2000:]
    assert "warning: datadog selects no service" in err
    assert "prod-eu/web" in out
    assert "datadog/" not in out


async def test_resume_follows_the_services_the_run_found(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = await command(sim, capsys, "plan.yaml", "--only", "datadog/*")
    assert code == 0, err[-2000:]
    found = RUN_LINE.search(err)
    assert found
    async with ecs_client(sim) as ecs:  # a new service running the agent, after the run
        await ecs.create_service(
            cluster="prod-eu", serviceName="late", taskDefinition="prod-eu-api", desiredCount=1
        )
    code, _, err = await command(sim, capsys, "resume", found[1], "--report", "report.json")
    assert code == 0, err[-2000:]
    assert [t["name"] for t in report()["targets"]] == MATCHES
    assert "datadog/prod-eu/late" not in err


async def test_a_changed_selector_is_a_changed_plan_for_resume(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = await command(sim, capsys, "plan.yaml", "--only", "datadog/*")
    assert code == 0, err[-2000:]
    found = RUN_LINE.search(err)
    assert found
    write("plan.yaml", PLAN.replace("runs: datadog/agent", "runs: [datadog/agent, x/y]"))
    code, _, err = await command(sim, capsys, "resume", found[1])
    assert code == 2
    assert "target datadog/prod-eu/api changed since run" in err


FIFTY = {
    f"prod-{region}": {
        f"svc{i:02}": (
            [f"example/app{i}:1.{i}", "datadog/agent:7.50"] if i % 3 == 0 else [f"example/app{i}:1"]
        )
        for i in range(start, start + count)
    }
    for region, start, count in (("eu", 0, 20), ("us", 20, 20), ("ap", 40, 10))
}


async def test_init_writes_a_plan_of_what_runs_that_validates_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    fleet = fleet_of({**FIFTY, "staging": {"api": ["example/api:1"]}})
    async with Simulator(fleet, speed=100) as sim:
        code = await many(
            "init", "-c", "prod-*", "--region", REGION, "--endpoint-url", sim.endpoint_url,
            "-o", "fleet-plan.yaml",
        )  # fmt: skip
        assert code == 0, capsys.readouterr().err[-2000:]
        text = read("fleet-plan.yaml")
        assert text.startswith("# Written by ecs-deploy-many init ")
        assert f"clusters prod-* in {REGION}" in text
        plan = yaml.safe_load(text)
        assert len(plan["targets"]) == 50
        assert {"cluster": "prod-eu", "service": "svc01", "image": "example/app1:1"} in plan[
            "targets"
        ]
        assert {
            "cluster": "prod-eu",
            "service": "svc03",
            "containers": {"app3": "example/app3:1.3", "agent": "datadog/agent:7.50"},
        } in plan["targets"]
        capsys.readouterr()
        assert await many("validate", "fleet-plan.yaml") == 0
        assert "valid: 50 targets in 1 wave" in capsys.readouterr().out
        sim.reset_stats()
        code, out, err = await command(sim, capsys, "fleet-plan.yaml", "--dry-run")
        assert code == 0, err[-2000:]
        *lines, totals = out.strip().splitlines()
        assert len(lines) == 50
        assert all(line.endswith("  unchanged") for line in lines), out
        assert totals == "50 targets: 0 change, 50 unchanged"
        assert "RegisterTaskDefinition" not in sim.stats().calls
        # It does not write over a file, unless forced.
        code = await many(
            "init", "-c", "prod-*", "--region", REGION, "--endpoint-url", sim.endpoint_url,
            "-o", "fleet-plan.yaml",
        )  # fmt: skip
        assert code == 2
        assert "fleet-plan.yaml exists: pass --force" in capsys.readouterr().err


async def test_a_rehearsal_selects_among_the_fleet_files_services_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write("plan.yaml", PLAN)
    code = await many("plan.yaml", "--simulate", "--speed", "100", "--dry-run")
    assert code == 2
    assert "among the services of --fleet FILE (a rehearsal" in capsys.readouterr().err
    fleet = fleet_of(SERVICES).model_dump(mode="json", exclude_none=True)
    write("fleet.yaml", yaml.safe_dump(fleet))
    code = await many(
        "plan.yaml", "--simulate", "--speed", "100", "--fleet", "fleet.yaml",
        "--report", "report.json", "--log-format", "json",
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err[-2000:]
    assert {t["name"] for t in report()["targets"]} >= set(MATCHES)


async def test_a_cluster_named_exactly_that_does_not_exist_stops_the_run(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    write("plan.yaml", PLAN.replace('["prod-*"]', '["prod-*", prod-mars]'))
    code, _, err = await command(sim, capsys, "plan.yaml")
    assert code == 2
    assert "error: finding the services of the plan's select: targets: ListServices" in err
    assert "ClusterNotFoundException" in err
    assert sim.stats().updates == {}


async def test_init_says_when_ecs_cannot_be_read(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await many(
        "init", "-c", "prod-mars", "--region", REGION, "--endpoint-url", sim.endpoint_url
    )
    assert code == 1
    assert "error: cannot read the services: ListServices failed: Cluster" in (
        capsys.readouterr().err
    )


async def test_validate_counts_a_selector_and_shards_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write("plan.yaml", PLAN)
    assert await many("validate", "plan.yaml") == 0
    assert "valid: 3 targets (1 finding services when it runs) in 3 waves" in (
        capsys.readouterr().out
    )
    assert await many("plan.yaml", "--dry-run", "--shard", "1/2") == 2
    assert "--shard: a plan with select: targets cannot be sharded" in capsys.readouterr().err
