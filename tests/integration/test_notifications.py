"""Webhook notifications: received by a local HTTP server with the documented bodies; a
webhook that fails or hangs changes nothing about the run; its URL is in no output.

``ecs-deploy-many`` runs in-process against the simulator over HTTP, and posts to an
aiohttp server on 127.0.0.1, in the same (virtual-time) event loop: a hanging webhook
costs loop time, which the loop skips, and the bounds are read on the loop's clock.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web

from ecs_deploy_many.cli.many import cli
from ecs_deploy_many.jobs.notify import DRAIN_TIMEOUT, SCHEMA
from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import FAST_TIMINGS, REGION

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]

SPEED = 100.0
TOKEN = "sk-notify-token-Zq9xW3"
FLEET = Fleet.model_validate(
    {
        "region": REGION,
        "timings": FAST_TIMINGS,
        "task_definitions": {
            name: {
                "containerDefinitions": [{"name": name, "image": f"repo/{name}:1", "memory": 64}]
            }
            for name in ("api", "web")
        },
        "clusters": [
            {
                "name": "prod",
                "services": [
                    {"name": "api", "task_definition": "api"},
                    {
                        "name": "web",
                        "task_definition": "web",
                        "circuit_breaker": {"enable": True, "rollback": False},
                    },
                ],
            }
        ],
        "behaviour": {"images": [{"match": "*:broken", "outcome": "fail_to_start"}]},
    }
)


def plan(web_image: str) -> str:
    return f"""\
version: 1
defaults: {{region: {REGION}, timeout: 600}}
failure_budget: 5
notifications:
  - {{url: "${{JSON_HOOK}}", format: json, on: [start, finish, target_failed]}}
  - {{url: "${{SLACK_HOOK}}"}}
targets:
  - {{cluster: prod, service: api, image: "repo/api:2"}}
  - {{cluster: prod, service: web, image: "{web_image}"}}
"""


@dataclass
class Hooks:
    """What the webhook server received, by path."""

    url: str
    answer: str = "ok"
    """ok, 500, 404, hang, or flaky (500 to the first two posts, then ok)."""
    received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    released: anyio.Event = field(default_factory=anyio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        received = self.received.setdefault(request.path, [])
        received.append(await request.json())
        if self.answer == "hang":
            await self.released.wait()
        if self.answer == "404":
            return web.Response(status=404, text="no such webhook")
        failing = self.answer == "500" or (self.answer == "flaky" and len(received) <= 2)
        return web.Response(status=500 if failing else 200, text="ok")


@asynccontextmanager
async def hooks_server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Hooks]:
    app = web.Application()
    hooks = Hooks("")
    app.router.add_post("/{tail:.*}", hooks.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    hooks.url = f"http://{host}:{port}"
    monkeypatch.setenv("JSON_HOOK", f"{hooks.url}/json/{TOKEN}")
    monkeypatch.setenv("SLACK_HOOK", f"{hooks.url}/services/T0/B0/{TOKEN}")
    try:
        yield hooks
    finally:
        hooks.released.set()
        await runner.cleanup()


async def run(tmp_path: Path, text: str, sim: Simulator, *extra: str) -> int:
    (tmp_path / "plan.yaml").write_text(text)
    code = await cli.main(
        [
            str(tmp_path / "plan.yaml"),
            "--endpoint-url", sim.endpoint_url, "--speed", f"{SPEED:g}",
            "--log-format", "json", "--journal", str(tmp_path / "journal"),
            "--report", str(tmp_path / "report.json"), *extra,
        ],
        "ecs-deploy-many",
        standalone_mode=False,
    )  # fmt: skip
    return code if isinstance(code, int) else 0


def every_output(tmp_path: Path, captured: pytest.CaptureResult[str]) -> dict[str, str]:
    outputs = {"stdout": captured.out, "stderr": captured.err}
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.name != "plan.yaml":
            outputs[str(path.relative_to(tmp_path))] = path.read_text()
    return outputs


async def test_start_failure_and_finish_are_posted_with_the_documented_bodies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with hooks_server(monkeypatch) as hooks, Simulator(FLEET, speed=SPEED) as sim:
        code = await run(tmp_path, plan("repo/web:broken"), sim)
    assert code == 1
    report = str(tmp_path / "report.json")
    start, failed, finish = hooks.received[f"/json/{TOKEN}"]
    run_id = json.loads((tmp_path / "report.json").read_text())["run_id"]
    common = {"schema": SCHEMA, "run_id": run_id, "plan": str(tmp_path / "plan.yaml")}
    common["targets"] = 2
    assert start == {
        **common,
        "event": "start",
        "timestamp": start["timestamp"],
        "verdict": None,
        "counts": None,
        "failed_targets": [],
        "halted": None,
        "report": None,
    }
    assert start["timestamp"].endswith("Z")
    assert failed["event"] == "target_failed"
    [web_failed] = failed["failed_targets"]
    assert web_failed["name"] == "prod/web"
    assert web_failed["status"] == "failed"
    assert "circuit breaker" in web_failed["reason"]
    assert finish == {
        **common,
        "event": "finish",
        "timestamp": finish["timestamp"],
        "verdict": "failed",
        "counts": finish["counts"],
        "failed_targets": [web_failed],
        "halted": None,
        "report": report,
    }
    assert {k: v for k, v in finish["counts"].items() if v} == {"succeeded": 1, "failed": 1}
    slack_start, slack_finish = hooks.received[f"/services/T0/B0/{TOKEN}"]
    assert slack_start["text"].startswith(f"run {run_id} of ")
    assert slack_start["text"].endswith("started: 2 targets")
    assert "failed: 1 succeeded, 1 failed" in slack_finish["text"]
    assert "• prod/web: failed: " in slack_finish["text"]
    assert f"report: {report}" in slack_finish["text"]
    assert slack_finish["blocks"] == [
        {"type": "section", "text": {"type": "mrkdwn", "text": slack_finish["text"]}}
    ]
    for name, text in every_output(tmp_path, capsys.readouterr()).items():
        assert TOKEN not in text, f"{name} shows the webhook URL"


@pytest.mark.parametrize("answer", ["500", "hang"])
async def test_a_failing_webhook_changes_nothing_and_waits_a_bounded_time(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    answer: str,
) -> None:
    async with hooks_server(monkeypatch) as hooks, Simulator(FLEET, speed=SPEED) as sim:
        hooks.answer = answer
        began = anyio.current_time()
        code = await run(tmp_path, plan("repo/web:2"), sim)
        took = anyio.current_time() - began
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["result"] == "succeeded"
    # the run (a few simulated minutes at 100x) plus at most the wait for deliveries
    assert took < 10 + DRAIN_TIMEOUT
    logs = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "{" in line]
    events = {log["event"] for log in logs}
    if answer == "500":
        assert len(hooks.received[f"/json/{TOKEN}"]) > 2  # start retried, then finish
        failures = [log for log in logs if log["event"] == "notification_failed"]
        assert {log["webhook"] for log in failures} >= {"notification #1 (json)"}
        assert all(log["error"].startswith("HTTP 500") for log in failures)
    else:
        assert "notifications_dropped" in events
    for name, text in every_output(tmp_path, capsys.readouterr()).items():
        assert TOKEN not in text, f"{name} shows the webhook URL"


async def test_a_failed_post_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with hooks_server(monkeypatch) as hooks, Simulator(FLEET, speed=SPEED) as sim:
        hooks.answer = "flaky"
        assert await run(tmp_path, plan("repo/web:2"), sim) == 0
    events = [body["event"] for body in hooks.received[f"/json/{TOKEN}"]]
    assert events == ["start", "start", "start", "finish"]
    assert "notification_failed" not in capsys.readouterr().err


async def test_a_webhook_refusing_the_post_is_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with hooks_server(monkeypatch) as hooks, Simulator(FLEET, speed=SPEED) as sim:
        hooks.answer = "404"
        assert await run(tmp_path, plan("repo/web:2"), sim) == 0
    events = [body["event"] for body in hooks.received[f"/json/{TOKEN}"]]
    assert events == ["start", "finish"]
    logs = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "{" in line]
    failures = [log for log in logs if log["event"] == "notification_failed"]
    assert {(log["webhook"], log["error"], log["attempts"]) for log in failures} == {
        ("notification #1 (json)", "HTTP 404", 1),
        ("notification #2 (slack)", "HTTP 404", 1),
    }


async def test_no_notification_in_a_rehearsal_nor_a_url_in_a_dry_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "plan.yaml").write_text(plan("repo/web:2"))
    async with hooks_server(monkeypatch) as hooks:
        for extra in (["--simulate", "--speed", "1000"], ["--simulate", "--dry-run"]):
            code = await cli.main(
                [str(tmp_path / "plan.yaml"), "--no-journal", "-v", *extra],
                "ecs-deploy-many",
                standalone_mode=False,
            )
            assert code in (0, None)
    assert hooks.received == {}
    captured = capsys.readouterr()
    assert "notifications are not sent in a rehearsal (2 webhooks)" in captured.err
    assert TOKEN not in captured.out + captured.err


async def test_a_wrong_url_is_refused_without_being_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JSON_HOOK", f"hooks.example.com/{TOKEN}")
    monkeypatch.setenv("SLACK_HOOK", "https://hooks.example.com/ok")
    (tmp_path / "plan.yaml").write_text(plan("repo/web:2"))
    code = await cli.main(
        ["validate", str(tmp_path / "plan.yaml")], "ecs-deploy-many", standalone_mode=False
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "notifications[0].url: expected an http:// or https:// URL" in err
    assert TOKEN not in err
