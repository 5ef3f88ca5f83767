"""deploy-plans/scheduled-release.yaml validates, and rehearses as the README says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_fleet_cli import many

pytestmark = pytest.mark.anyio

PLAN = Path(__file__).resolve().parents[2] / "deploy-plans" / "scheduled-release.yaml"
WEBHOOK = "https://hooks.slack.com/services/T000/B000/s3cr3t-webhook-token"


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCK_TABLE", "release-locks")
    monkeypatch.setenv("SLACK_WEBHOOK", WEBHOOK)
    monkeypatch.setenv("RELEASE_EVENTS_URL", "https://events.example.com/releases")


async def test_it_validates(capsys: pytest.CaptureFixture[str]) -> None:
    assert await many("validate", str(PLAN)) == 0
    out = capsys.readouterr().out
    assert "valid: 4 targets in 2 waves" in out
    assert "release schedule at " in out


async def test_it_rehearses_with_its_lock_schedule_pins_and_webhooks_standing_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.json"
    code = await many(
        str(PLAN), "--simulate", "--speed", "100", "--report", str(report),
        "--log-format", "json",
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:]
    err = captured.err
    assert "the run lock is in the process (its table or file untouched)" in err
    assert "tags are not pinned to digests" in err
    assert "release schedule at " in err  # said, and the rehearsal runs whatever it says
    statuses = {t["name"]: t["status"] for t in json.loads(report.read_text())["targets"]}
    assert set(statuses.values()) == {"succeeded"}
    assert len(statuses) == 4
    for output in (captured.out, err, report.read_text()):
        assert "s3cr3t-webhook-token" not in output
