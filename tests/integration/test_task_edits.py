"""Edits besides the image, against the simulator: exactly the keys asked for change.

A plan (and ``ecs-deploy`` with its edit flags) sets two variables, removes one, adds a
secret and raises a container's memory; the new revision differs from the old one in
exactly those keys, a second run changes nothing (no RegisterTaskDefinition, no
UpdateService), a target with only ``desired_count`` scales, and no value the edits set
appears in any output: logs at -v, JSON report, JUnit, HTML, summary, journal, dry run.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ecs_deploy_many.cli import single
from ecs_deploy_many.cli.many import cli
from ecs_deploy_many.core.ecs_api import registration_input
from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import FAST_TIMINGS, REGION, ecs_client

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]

SPEED = 100.0
ACCOUNT = "123456789012"
# Values no output may show: a URL in a variable whose name says nothing of secrets,
# a token, and the secret's reference.
FEATURE_URL = "https://flags.internal.example/v2?key=f00dfeed"
API_TOKEN = "tok-5up3r-s3cret-t0ken"
DB_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:prod/db-AbCdEf"
KEPT = "kept-value-123"
SECRETS = (FEATURE_URL, API_TOKEN, DB_SECRET, KEPT)
EXAMPLE = Path(__file__).resolve().parents[2] / "deploy-plans" / "config-release.yaml"


def container(name: str, image: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": image, "memory": 256, **extra}


FLEET = Fleet.model_validate(
    {
        "region": REGION,
        "timings": FAST_TIMINGS,
        "task_definitions": {
            "api": {
                "containerDefinitions": [
                    container(
                        "app",
                        "example/api:1",
                        environment=[
                            {"name": "KEEP", "value": KEPT},
                            {"name": "LOG_LEVEL", "value": "info"},
                            {"name": "OLD_FLAG", "value": "yes"},
                        ],
                    ),
                    container("proxy", "envoyproxy/envoy:v1.30"),
                ]
            },
            "web": {"containerDefinitions": [container("web", "example/web:1")]},
            "batch": {"containerDefinitions": [container("batch", "example/batch:1")]},
        },
        "clusters": [
            {
                "name": "prod",
                "services": [
                    {"name": name, "task_definition": name, "desired_count": 2}
                    for name in ("api", "web", "batch")
                ],
            }
        ],
    }
)

PLAN = """\
version: 1
defaults: {region: eu-west-1, cluster: prod, timeout: 300}
targets:
  - service: api
    containers:
      app:
        environment: {LOG_LEVEL: debug, FEATURE_URL: "${FEATURE_URL}", OLD_FLAG: null}
        secrets: {DB_PASSWORD: "${DB_SECRET}"}
        memory: 512
  - service: web
    image: example/web:2
    environment: {API_TOKEN: "${API_TOKEN}"}
    task_role: web-task
  - service: batch
    desired_count: 4
"""

# What the edits of ``api`` make of its app container, and nothing else.
API_APP_CHANGES = {
    "environment": [
        {"name": "KEEP", "value": KEPT},
        {"name": "LOG_LEVEL", "value": "debug"},
        {"name": "FEATURE_URL", "value": FEATURE_URL},
    ],
    "secrets": [{"name": "DB_PASSWORD", "valueFrom": DB_SECRET}],
    "memory": 512,
}


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "plan.yaml").write_text(PLAN)
    monkeypatch.setenv("FEATURE_URL", FEATURE_URL)
    monkeypatch.setenv("API_TOKEN", API_TOKEN)
    monkeypatch.setenv("DB_SECRET", DB_SECRET)
    return tmp_path


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(FLEET, speed=SPEED, strict_output=True) as running:
        yield running


@pytest.fixture
async def ecs(sim: Simulator) -> AsyncIterator[ECSClient]:
    async with ecs_client(sim) as client:
        yield client


async def many(*args: str) -> int:
    code = await cli.main(list(args), "ecs-deploy-many", standalone_mode=False)
    return code if isinstance(code, int) else 0


async def run_plan(sim: Simulator, files: Path, *extra: str) -> int:
    return await many(
        str(files / "plan.yaml"), "--endpoint-url", sim.endpoint_url, "--speed", f"{SPEED:g}",
        "--journal", str(files / "journal"), "--log-format", "json", "-v",
        "--report", str(files / "report.json"), "--junit", str(files / "junit.xml"),
        "--html", str(files / "report.html"), *extra,
    )  # fmt: skip


async def described(ecs: ECSClient, task_definition: str) -> dict[str, Any]:
    return dict(
        (await ecs.describe_task_definition(taskDefinition=task_definition))["taskDefinition"]
    )


async def service(ecs: ECSClient, name: str) -> dict[str, Any]:
    return dict((await ecs.describe_services(cluster="prod", services=[name]))["services"][0])


def containers(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in registration_input(definition)["containerDefinitions"]}


def changed_keys(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The keys whose values differ, with the new values (None: removed)."""
    return {k: new.get(k) for k in old.keys() | new.keys() if old.get(k) != new.get(k)}


def task_level_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    before, after = registration_input(old), registration_input(new)
    before.pop("containerDefinitions")
    after.pop("containerDefinitions")
    return changed_keys(before, after)


def outputs(files: Path, captured: pytest.CaptureFixture[str]) -> dict[str, str]:
    streams = captured.readouterr()
    journal = "".join(p.read_text() for p in (files / "journal").rglob("*") if p.is_file())
    return {
        "logs": streams.err,
        "summary": streams.out,
        "report": (files / "report.json").read_text(),
        "junit": (files / "junit.xml").read_text(),
        "html": (files / "report.html").read_text(),
        "journal": journal,
    }


def assert_no_secret(texts: dict[str, str]) -> None:
    for name, text in texts.items():
        leaked = [secret for secret in SECRETS if secret in text]
        assert not leaked, f"{name} shows {leaked}"


async def test_a_plan_changes_exactly_the_keys_it_edits_and_a_second_run_nothing(
    sim: Simulator, ecs: ECSClient, files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {name: await described(ecs, name) for name in ("api", "web")}

    assert await run_plan(sim, files) == 0, capsys.readouterr().err
    first = outputs(files, capsys)
    assert_no_secret(first)
    statuses = {t["name"]: t["status"] for t in json.loads(first["report"])["targets"]}
    assert statuses == dict.fromkeys(["prod/api", "prod/web", "prod/batch"], "succeeded")

    api = await described(ecs, (await service(ecs, "api"))["taskDefinition"])
    assert api["revision"] == 2
    old_app, new_app = containers(before["api"])["app"], containers(api)["app"]
    assert changed_keys(old_app, new_app) == API_APP_CHANGES
    assert containers(api)["proxy"] == containers(before["api"])["proxy"]
    assert task_level_changes(before["api"], api) == {}

    web = await described(ecs, (await service(ecs, "web"))["taskDefinition"])
    assert changed_keys(containers(before["web"])["web"], containers(web)["web"]) == {
        "image": "example/web:2",
        "environment": [{"name": "API_TOKEN", "value": API_TOKEN}],
    }
    assert task_level_changes(before["web"], web) == {
        "taskRoleArn": f"arn:aws:iam::{ACCOUNT}:role/web-task"
    }

    batch = await service(ecs, "batch")
    assert (batch["desiredCount"], batch["runningCount"]) == (4, 4)
    assert batch["taskDefinition"].endswith("task-definition/batch:1")

    sim.reset_stats()
    assert await run_plan(sim, files) == 0
    second = outputs(files, capsys)
    assert_no_secret(second)
    statuses = {t["name"]: t["status"] for t in json.loads(second["report"])["targets"]}
    assert set(statuses.values()) == {"unchanged"}
    calls = sim.stats().calls
    assert "RegisterTaskDefinition" not in calls
    assert "UpdateService" not in calls


async def test_the_dry_run_names_every_change_and_no_value(
    sim: Simulator, ecs: ECSClient, files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await many(
        str(files / "plan.yaml"), "--endpoint-url", sim.endpoint_url, "--dry-run", "-v",
        "--log-format", "json",
    )  # fmt: skip
    streams = capsys.readouterr()
    assert code == 0, streams.err
    assert_no_secret({"dry run": streams.out, "logs": streams.err})
    lines = [line.strip() for line in streams.out.splitlines()]
    for expected in (
        "container app: environment FEATURE_URL added",
        "container app: environment LOG_LEVEL changed",
        "container app: environment OLD_FLAG removed",
        "container app: secrets DB_PASSWORD added",
        "container app: memory 256 -> 512",
        "container web: image example/web:1 -> example/web:2",
        "container web: environment API_TOKEN added",
        f"taskRoleArn: (none) -> arn:aws:iam::{ACCOUNT}:role/web-task",
        "desired count: 2 -> 4",
        "3 targets: 3 change, 0 unchanged",
    ):
        assert expected in lines, f"{expected!r} not in {lines}"
    assert "RegisterTaskDefinition" not in sim.stats().calls


async def test_ecs_deploy_flags_make_the_same_edits(
    sim: Simulator, ecs: ECSClient, capsys: pytest.CaptureFixture[str]
) -> None:
    before = await described(ecs, "api")
    code = await single.run(
        [
            "--endpoint-url", sim.endpoint_url, "-v", "--log-format", "json",
            "-c", "prod", "-n", "api",
            "--env", "app", "LOG_LEVEL=debug", "--env", "app", f"FEATURE_URL={FEATURE_URL}",
            "--unset-env", "app", "OLD_FLAG", "--secret", "app", f"DB_PASSWORD={DB_SECRET}",
            "--container-memory", "app", "512",
        ],
        clock=sim.clock,
    )  # fmt: skip
    streams = capsys.readouterr()
    assert code == 0, streams.err
    assert_no_secret({"logs": streams.err, "summary": streams.out})
    after = await described(ecs, (await service(ecs, "api"))["taskDefinition"])
    assert after["revision"] == 2
    assert changed_keys(containers(before)["app"], containers(after)["app"]) == API_APP_CHANGES
    assert containers(after)["proxy"] == containers(before)["proxy"]
    assert task_level_changes(before, after) == {}


async def test_ecs_deploy_sets_roles_sizes_and_an_exclusive_environment(
    sim: Simulator, ecs: ECSClient
) -> None:
    code = await single.run(
        [
            "--endpoint-url", sim.endpoint_url, "-c", "prod", "-n", "api",
            "--env", "app", "ONLY=this", "--exclusive-env", "--command", "app", "serve --port 80",
            "--task-cpu", "512", "--task-memory", "1024", "--task-role", "api-task",
            "--execution-role", f"arn:aws:iam::{ACCOUNT}:role/ecs-exec",
        ],
        clock=sim.clock,
    )  # fmt: skip
    assert code == 0
    after = await described(ecs, (await service(ecs, "api"))["taskDefinition"])
    app = containers(after)["app"]
    assert app["environment"] == [{"name": "ONLY", "value": "this"}]
    assert app["command"] == ["serve", "--port", "80"]
    assert containers(after)["proxy"].get("environment", []) == []
    assert (after["cpu"], after["memory"]) == ("512", "1024")
    assert after["taskRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/api-task"
    assert after["executionRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/ecs-exec"


async def test_ecs_deploy_refuses_a_bad_edit_before_any_call(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await single.run(
        ["--endpoint-url", sim.endpoint_url, "-c", "prod", "-n", "api", "--env", "app", "NOVALUE"],
        clock=sim.clock,
    )
    assert code == 3
    assert "--env app ...: expected KEY=VALUE" in capsys.readouterr().err
    assert sim.stats().total_calls == 0


async def test_an_edit_of_a_missing_container_fails_naming_the_containers(
    sim: Simulator, ecs: ECSClient, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await single.run(
        ["--endpoint-url", sim.endpoint_url, "-c", "prod", "-n", "api", "--env", "ap", "A=b"],
        clock=sim.clock,
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "has no container named ap; its containers: app, proxy" in err
    assert "RegisterTaskDefinition" not in sim.stats().calls


SCALE_PLAN = """\
version: 1
defaults: {region: eu-west-1, cluster: prod}
targets:
  - {service: batch, desired_count: COUNT, timeout: TIMEOUT, rollback: true}
"""


async def scale(sim: Simulator, tmp_path: Path, count: int, timeout: int = 300) -> dict[str, Any]:
    text = SCALE_PLAN.replace("COUNT", str(count)).replace("TIMEOUT", str(timeout))
    (tmp_path / "scale.yaml").write_text(text)
    await many(
        str(tmp_path / "scale.yaml"), "--endpoint-url", sim.endpoint_url, "--speed", f"{SPEED:g}",
        "--no-journal", "--report", str(tmp_path / "scale.json"),
    )  # fmt: skip
    [target] = json.loads((tmp_path / "scale.json").read_text())["targets"]
    return dict(target)


async def test_a_scale_only_target_is_waited_for_and_then_unchanged(
    sim: Simulator, ecs: ECSClient, tmp_path: Path
) -> None:
    assert (await scale(sim, tmp_path, 3))["status"] == "succeeded"
    batch = await service(ecs, "batch")
    assert (batch["desiredCount"], batch["runningCount"], len(batch["deployments"])) == (3, 3, 1)
    assert "RegisterTaskDefinition" not in sim.stats().calls

    sim.reset_stats()
    assert (await scale(sim, tmp_path, 3))["status"] == "unchanged"
    assert "UpdateService" not in sim.stats().calls


async def test_a_scale_change_that_times_out_goes_back_to_the_previous_count(
    sim: Simulator, ecs: ECSClient, tmp_path: Path
) -> None:
    # new tasks take about 20 simulated seconds to run: 5 is too short
    result = await scale(sim, tmp_path, 6, timeout=5)
    assert result["status"] == "rolled_back", result
    batch = await service(ecs, "batch")
    assert (batch["desiredCount"], batch["runningCount"]) == (2, 2)


async def test_the_example_config_release_rehearses_and_says_what_is_not_checked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """deploy-plans/config-release.yaml against the rehearsal's own task definitions."""
    monkeypatch.setenv("RELEASE", "2.0")
    code = await many(
        str(EXAMPLE), "--simulate", "--speed", "500", "--log-format", "json", "--no-journal"
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert (
        "edits of 3 targets are made to the rehearsal's own task definitions: secrets, roles "
        "and the real definitions are not checked"
    ) in err
    assert err.count('"status": "succeeded"') == 4
