"""Each example plan's printed IAM policy against what its rehearsal really called.

Every plan in deploy-plans/ is rehearsed against the simulator; every ECS operation the
simulator received must be allowed by the policy ``iam-policy`` prints for the plan, on
the ARNs the run used, and every ECS action the policy allows must be one the rehearsal
called or one a named feature of the plan calls outside a rehearsal.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ecs_deploy_many.cli import where
from ecs_deploy_many.cli.many import cli
from ecs_deploy_many.plan import Plan, load_plan
from ecs_deploy_many.sim.server import Simulator
from tests.iam_documents import actions_of, allowed, check_document

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]

PLANS = Path(__file__).resolve().parents[2] / "deploy-plans"
SIM_ACCOUNT = "123456789012"  # the simulator's default account
ENVIRON = {
    "RELEASE": "2.0",
    "LOCK_TABLE": "release-locks",
    "SLACK_WEBHOOK": "https://hooks.example.com/release",
    "RELEASE_EVENTS_URL": "https://events.example.com/releases",
}


def _services(plan: Plan) -> bool:
    return any(t.kind == "service" for t in plan.targets)


def _cleans_up(plan: Plan) -> bool:
    return any(t.max_definitions for t in plan.targets)


def _tags_revisions(plan: Plan) -> bool:
    return any(t.copy_task_definition_tags for t in plan.targets)


STRATEGY_JUDGED = (
    "service targets: ECS's service deployment judges a service deployed by a "
    "BLUE_GREEN, LINEAR or CANARY strategy or with deployment alarms (the rehearsal's "
    "services use rolling updates)",
    _services,
)
CLEANUP = (
    "max_definitions: once a family holds more revisions than kept, the revisions in "
    "use in every cluster are read and the rest deregistered",
    _cleans_up,
)
OUTSIDE_A_REHEARSAL: dict[str, tuple[str, Callable[[Plan], bool]]] = {
    "ecs:ListServiceDeployments": STRATEGY_JUDGED,
    "ecs:DescribeServiceDeployments": STRATEGY_JUDGED,
    "ecs:DescribeServiceRevisions": STRATEGY_JUDGED,
    "ecs:DeregisterTaskDefinition": CLEANUP,
    "ecs:ListClusters": CLEANUP,
    "ecs:ListServices": CLEANUP,
    "ecs:ListTasks": CLEANUP,
    "ecs:DescribeTasks": CLEANUP,
    "ecs:TagResource": (
        "copy_task_definition_tags: ECS authorizes a registration with tags as "
        "ecs:TagResource too (not an operation of its own)",
        _tags_revisions,
    ),
}
"""ECS actions a plan's policy may allow that its rehearsal need not call: the feature
that calls them, and whether the plan has it."""


class RecordingSimulator(Simulator):
    """The rehearsal's own simulator, remembered so the test can read its statistics."""

    started: ClassVar[list[Simulator]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        RecordingSimulator.started.append(self)


@pytest.fixture
def rehearsals(monkeypatch: pytest.MonkeyPatch) -> list[Simulator]:
    for name, value in ENVIRON.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(where, "Simulator", RecordingSimulator)
    RecordingSimulator.started = []
    return RecordingSimulator.started


async def many(*args: str) -> int:
    code = await cli.main(list(args), "ecs-deploy-many", standalone_mode=False)
    return code if isinstance(code, int) else 0


def fleet_file(plan: Path) -> list[str]:
    fleet = PLANS / "sim" / f"{plan.stem}-fleet.yaml"
    return ["--fleet", str(fleet)] if fleet.exists() else []


@pytest.mark.parametrize("plan", sorted(PLANS.glob("*.yaml")), ids=lambda p: p.stem)
async def test_policy_allows_every_call_of_the_rehearsal(
    plan: Path,
    rehearsals: list[Simulator],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    capsys.readouterr()
    assert await many("iam-policy", str(plan), "--account", SIM_ACCOUNT) == 0
    document = json.loads(capsys.readouterr().out)
    check_document(document)
    report = tmp_path / "report.json"
    await many(
        str(plan), "--simulate", "--speed", "100", *fleet_file(plan), "--report", str(report),
        "--journal", str(tmp_path / "runs"), "--allow-no-match", "--log-format", "json",
    )  # fmt: skip
    [sim] = rehearsals
    stats = sim.stats()
    called = {f"ecs:{operation}" for operation in stats.calls}
    assert "ecs:UpdateService" in called, f"the rehearsal of {plan.stem} deployed nothing"
    assert set(stats.callers) == {where.REHEARSAL_KEYS.access_key_id}

    allowed_actions = {a for a in actions_of(document) if a.startswith("ecs:")}
    assert called <= allowed_actions, f"called but not allowed: {called - allowed_actions}"
    for action in sorted(allowed_actions - called):
        assert action in OUTSIDE_A_REHEARSAL, f"{action}: no feature of {plan.stem} calls it"
        feature, has_it = OUTSIDE_A_REHEARSAL[action]
        assert has_it(load_plan(plan, environ=ENVIRON)), f"{action}: {plan.stem} lacks {feature}"

    for service in stats.updates:  # the ARNs the run used
        for action in ("ecs:DescribeServices", "ecs:UpdateService", "ecs:ListServiceDeployments"):
            assert allowed(document, action, service), f"{action} on {service}"
        deployment = service.replace(":service/", ":service-deployment/") + "/1234567890"
        assert allowed(document, "ecs:DescribeServiceDeployments", deployment)
        other_cluster = service.replace(":service/", ":service/elsewhere-")
        assert not allowed(document, "ecs:UpdateService", other_cluster)
    for target in json.loads(report.read_text())["targets"]:
        if target.get("kind") == "task_definition" and target["status"] == "succeeded":
            cluster_arn = (
                f"arn:aws:ecs:{target['region']}:{SIM_ACCOUNT}:cluster/{target['cluster']}"
            )
            assert allowed(
                document, "ecs:RunTask", target["new_task_definition"], {"ecs:cluster": cluster_arn}
            ), target["name"]
            other = cluster_arn.rsplit("/", 1)[0] + "/elsewhere"
            assert not allowed(
                document, "ecs:RunTask", target["new_task_definition"], {"ecs:cluster": other}
            )
