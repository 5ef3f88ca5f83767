"""Every example plan in deploy-plans/ loads cleanly, and the demo has the promised shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecs_deploy_many.plan import Plan, load_plan

PLANS = Path(__file__).resolve().parents[2] / "deploy-plans"
ENVIRON = {
    "RELEASE": "2024.06.1",
    "LOCK_TABLE": "release-locks",
    "SLACK_WEBHOOK": "https://hooks.slack.com/services/T000/B000/XXXX",
    "RELEASE_EVENTS_URL": "https://events.example.com/releases",
}


@pytest.mark.parametrize("path", sorted(PLANS.glob("*.yaml")), ids=lambda p: p.name)
def test_example_plan_loads(path: Path) -> None:
    plan = load_plan(path, environ=ENVIRON)
    assert plan.targets
    assert path.read_text().startswith("#"), (
        "each example starts with a comment saying what it shows"
    )


def test_every_feature_has_an_example() -> None:
    assert {p.name for p in PLANS.glob("*.yaml")} >= {
        "basic-fleet.yaml",
        "waves-bake.yaml",
        "migration-depends-on.yaml",
        "failure-policy.yaml",
        "per-container-images.yaml",
        "interpolation.yaml",
        "rate-limits.yaml",
        "demo.yaml",
        "scheduled-release.yaml",
        "sidecar-upgrade.yaml",
    }


def test_demo_plan_shape() -> None:
    plan: Plan = load_plan(PLANS / "demo.yaml", environ=ENVIRON)
    assert len({t.cluster for t in plan.targets}) == 3
    assert len(plan.targets) >= 10
    assert 2 <= len(plan.waves) <= 3
    assert all(t.rollback for t in plan.targets)
    (failing,) = [t for t in plan.targets if t.allow_failure]
    assert failing.image is not None
    assert ":broken-" in failing.image
