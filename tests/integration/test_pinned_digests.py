"""Pinned digests: every ECR image a run deploys, by the digest its tag named at the start.

``ecs-deploy-many`` runs in-process against the simulator over HTTP; ECR is moto's
server, reached through ``AWS_ENDPOINT_URL_ECR`` as a deployer's SDK would reach it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import boto3
import pytest

from ecs_deploy_many.cli.many import cli
from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import FAST_TIMINGS, REGION, ecs_client
from tests.integration.test_notifications import TOKEN, hooks_server
from tests.moto_server import moto_server

pytestmark = [pytest.mark.anyio, pytest.mark.real_time, pytest.mark.usefixtures("aws_credentials")]

SPEED = 100.0
REGISTRY = f"123456789012.dkr.ecr.{REGION}.amazonaws.com"
RELEASE = f"{REGISTRY}/app:release"
FLEET = Fleet.model_validate(
    {
        "region": REGION,
        "timings": FAST_TIMINGS,
        "task_definitions": {
            name: {"containerDefinitions": [{"name": "app", "image": image, "memory": 64}]}
            for name, image in (
                ("a", f"{REGISTRY}/app:1"),
                ("b", f"{REGISTRY}/app:1"),
                ("c", "example/sidecar:1"),
            )
        },
        "clusters": [
            {
                "name": "prod",
                "services": [{"name": name, "task_definition": name} for name in "abc"],
            }
        ],
    }
)


def manifest(layer: str) -> str:
    """An image manifest; moto derives the digest from its layers."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": f"sha256:{'0' * 64}",
                "size": 1,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "digest": f"sha256:{layer * 64}",
                    "size": 1,
                }
            ],
        }
    )


@pytest.fixture
def ecr(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A client of moto's ECR, which the run reaches through ``AWS_ENDPOINT_URL_ECR``
    (moto keeps its state per process: the repository goes at the end)."""
    with moto_server() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", url)
        client = boto3.client("ecr", region_name=REGION)
        client.create_repository(repositoryName="app")
        yield client
        client.delete_repository(repositoryName="app", force=True)


def push(ecr: Any, tag: str, layer: str) -> str:
    """Push an image under ``tag`` (moving the tag when it exists); its digest."""
    pushed = ecr.put_image(repositoryName="app", imageManifest=manifest(layer), imageTag=tag)
    return str(pushed["image"]["imageId"]["imageDigest"])


async def run(tmp_path: Path, plan: str, sim: Simulator, *extra: str) -> int:
    (tmp_path / "plan.yaml").write_text(plan)
    code = await cli.main(
        [
            str(tmp_path / "plan.yaml"),
            "--endpoint-url", sim.endpoint_url, "--speed", f"{SPEED:g}",
            "--log-format", "json", "--no-journal", *extra,
        ],
        "ecs-deploy-many",
        standalone_mode=False,
    )  # fmt: skip
    return code if isinstance(code, int) else 0


async def images_running(sim: Simulator) -> dict[str, str]:
    """Each service's image, read from the task definition it runs."""
    async with ecs_client(sim.endpoint_url) as ecs:
        described = await ecs.describe_services(cluster="prod", services=list("abc"))
        running = {}
        for service in described["services"]:
            revision = await ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
            [container] = revision["taskDefinition"]["containerDefinitions"]
            running[service["serviceName"]] = container["image"]
    return running


PLAN = f"""\
version: 1
defaults: {{region: {REGION}, timeout: 300}}
waves:
  - {{name: first, targets: [prod/a], bake: 30}}
  - {{name: rest, targets: ["*"]}}
targets:
  - {{cluster: prod, service: a, image: "{RELEASE}"}}
  - {{cluster: prod, service: b, image: "{RELEASE}"}}
  - {{cluster: prod, service: c, image: "example/sidecar:2"}}
"""


async def test_a_tag_moved_mid_run_changes_nothing(
    tmp_path: Path, ecr: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tag is pushed again once the first wave updated its service; the second wave
    still deploys the digest resolved at the start."""
    first = push(ecr, "release", "a")
    moved: dict[str, Any] = {}

    async def move_tag_after_first_update(sim: Simulator) -> None:
        while True:
            await anyio.sleep(0.005)
            if sim.stats().updates:
                break
        moved["updates"] = dict(sim.stats().updates)
        moved["digest"] = await anyio.to_thread.run_sync(push, ecr, "release", "b")

    async with Simulator(FLEET, speed=SPEED) as sim, anyio.create_task_group() as group:
        group.start_soon(move_tag_after_first_update, sim)
        code = await run(tmp_path, PLAN, sim, "--report", str(tmp_path / "report.json"))
        running = await images_running(sim)
    assert code == 0
    assert len(moved["updates"]) == 1  # moved before the second wave began
    assert moved["digest"] != first
    pinned = f"{REGISTRY}/app@{first}"
    assert running == {"a": pinned, "b": pinned, "c": "example/sidecar:2"}
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["images"] == {RELEASE: first}
    captured = capsys.readouterr()
    assert "1 image pinned to the digest resolved at the start" in captured.out
    logs = [json.loads(line) for line in captured.err.splitlines() if line.startswith("{")]
    not_pinned = [log for log in logs if log.get("event") == "image_not_pinned"]
    assert [log["image"] for log in not_pinned] == ["example/sidecar:2"]


async def test_a_tag_only_target_is_pinned_in_the_repository_it_runs(
    tmp_path: Path, ecr: Any
) -> None:
    """``tag_only`` knows its repository from the service's task definition alone."""
    digest = push(ecr, "release", "c")
    plan = f"""\
version: 1
defaults: {{region: {REGION}, timeout: 300}}
targets:
  - {{cluster: prod, service: a, tag_only: release}}
"""
    async with Simulator(FLEET, speed=SPEED) as sim:
        assert await run(tmp_path, plan, sim) == 0
        running = await images_running(sim)
    assert running["a"] == f"{REGISTRY}/app@{digest}"


async def test_missing_images_fail_the_run_before_any_change(
    tmp_path: Path, ecr: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every missing image is named at once, nothing changes, and the report and the
    webhooks say why."""
    push(ecr, "release", "a")
    plan = f"""\
version: 1
defaults: {{region: {REGION}}}
notifications: [{{url: "${{JSON_HOOK}}", format: json}}]
targets:
  - {{cluster: prod, service: a, image: "{RELEASE}"}}
  - {{cluster: prod, service: b, image: "{REGISTRY}/app:no-such-tag"}}
  - {{cluster: prod, service: c, containers: {{app: "{REGISTRY}/no-such-repo:1"}}}}
"""
    async with hooks_server(monkeypatch) as hooks, Simulator(FLEET, speed=SPEED) as sim:
        code = await run(tmp_path, plan, sim, "--report", str(tmp_path / "report.json"))
        stats = sim.stats()
    assert code == 2
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["result"] == "failed"
    assert report["halted"].startswith("nothing was deployed: 2 images cannot be pinned")
    assert {target["status"] for target in report["targets"]} == {"skipped"}
    start, finish = hooks.received[f"/json/{TOKEN}"]
    assert (start["event"], finish["event"]) == ("start", "finish")
    assert finish["verdict"] == "failed"
    assert finish["halted"] == report["halted"]
    err = capsys.readouterr().err
    assert f"{REGISTRY}/app:no-such-tag: tag 'no-such-tag' does not exist" in err
    assert f"{REGISTRY}/no-such-repo:1: repository 'no-such-repo' does not exist" in err
    assert "2 images cannot be pinned to a digest; nothing was changed" in err
    assert stats.updates == {}
    assert "RegisterTaskDefinition" not in stats.calls


async def test_pinning_turned_off_deploys_the_tag(tmp_path: Path, ecr: Any) -> None:
    plan = f"""\
version: 1
defaults: {{region: {REGION}, timeout: 300}}
images: {{pin_digests: false}}
targets:
  - {{cluster: prod, service: a, image: "{REGISTRY}/app:not-pushed"}}
"""
    async with Simulator(FLEET, speed=SPEED) as sim:
        # verify would refuse the tag ECR does not have: this is about pinning alone
        assert await run(tmp_path, plan, sim, "--no-verify") == 0
        running = await images_running(sim)
    assert running["a"] == f"{REGISTRY}/app:not-pushed"


async def test_a_rehearsal_takes_images_as_present(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    code = await cli.main(
        [str(tmp_path / "plan.yaml"), "--simulate", "--speed", "1000", "--no-journal"],
        "ecs-deploy-many",
        standalone_mode=False,
    )
    assert code in (0, None)
    assert "images are taken as present in a rehearsal" in capsys.readouterr().err


async def test_a_dry_run_shows_the_digests_a_run_would_deploy(
    tmp_path: Path, ecr: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    digest = push(ecr, "release", "d")
    missing = f"""\
version: 1
defaults: {{region: {REGION}}}
targets:
  - {{cluster: prod, service: a, image: "{REGISTRY}/app:no-such-tag"}}
"""
    async with Simulator(FLEET, speed=SPEED) as sim:
        assert await run(tmp_path, PLAN, sim, "--dry-run") == 0
        shown = capsys.readouterr().out
        assert await run(tmp_path, missing, sim, "--dry-run") == 1
        refused = capsys.readouterr()
        stats = sim.stats()
    change = f"container app: image {REGISTRY}/app:1 -> {REGISTRY}/app@{digest}"
    assert shown.count(change) == 2
    assert "container app: image example/sidecar:1 -> example/sidecar:2" in shown
    assert "1 image pinned to the digest its tag names now" in shown
    assert f"error: {REGISTRY}/app:no-such-tag: tag 'no-such-tag' does not exist" in refused.err
    assert stats.updates == {}
    assert "RegisterTaskDefinition" not in stats.calls
