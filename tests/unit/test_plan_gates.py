"""A wave's gates in the plan: ``alarms:`` and ``approval:``, read or refused with file:line."""

from __future__ import annotations

import textwrap

import pytest

from ecs_deploy_many.core.errors import PlanError
from ecs_deploy_many.core.scope import AwsScope
from ecs_deploy_many.plan import Plan, parse_plan
from ecs_deploy_many.plan.model import AlarmGate, ApprovalGate

FLEET = """\
version: 1
defaults: {image: app:1, region: eu-west-1, profile: prod}
targets:
  - {cluster: eu, service: api}
  - {cluster: eu, service: web}
  - {cluster: us, service: api, region: us-east-1}
waves:
"""


def load(waves: str) -> Plan:
    text = FLEET + textwrap.indent(textwrap.dedent(waves), "  ")
    return parse_plan(text, source="plan.yaml", environ={})


def errors(waves: str) -> list[str]:
    with pytest.raises(PlanError) as caught:
        load(waves)
    return [str(issue) for issue in caught.value.issues]


def test_a_wave_reads_its_gates() -> None:
    plan = load(
        """\
        - name: canary
          targets: [eu/api]
          bake: 300
          alarms: {names: [api-5xx, api-p99, api-5xx], prefix: api-canary-, interval: 15}
        - name: rest
          targets: ["*"]
          approval: {timeout: 7200}
          alarms: {prefix: [api-, web-], region: us-east-1}
        """
    )
    canary, rest = plan.waves
    assert canary.alarms == AlarmGate(
        names=("api-5xx", "api-p99"),
        prefixes=("api-canary-",),
        scope=AwsScope(region="eu-west-1", profile="prod"),
        interval=15.0,
    )
    assert canary.approval is None
    assert rest.approval == ApprovalGate(timeout=7200.0)
    assert rest.alarms == AlarmGate(
        prefixes=("api-", "web-"), scope=AwsScope(region="us-east-1", profile="prod")
    )


def test_a_wave_without_gates_has_none() -> None:
    [wave] = load("- {name: all, targets: ['*']}\n").waves
    assert (wave.alarms, wave.approval) == (None, None)


@pytest.mark.parametrize(
    ("waves", "expected"),
    [
        pytest.param(
            "- {name: a, targets: ['*'], alarms: {}}\n",
            [
                "plan.yaml:8: waves[0].alarms: name the alarms to watch: names: [...], "
                "prefix: ..., or both"
            ],
            id="alarms-naming-nothing",
        ),
        pytest.param(
            "- {name: a, targets: ['*'], alarms: {names: api-5xx}}\n",
            ["plan.yaml:8: waves[0].alarms.names: expected a list, got 'api-5xx'"],
            id="names-not-a-list",
        ),
        pytest.param(
            "- {name: a, targets: ['*'], alarms: {names: [' api']}}\n",
            [
                "plan.yaml:8: waves[0].alarms.names[0]: expected an alarm name (1 to 255 "
                "characters, no leading or trailing space), got ' api'"
            ],
            id="name-with-space",
        ),
        pytest.param(
            "- {name: a, targets: ['*'], alarms: {prefix: x, interval: 1}}\n",
            ["plan.yaml:8: waves[0].alarms.interval: expected a number of seconds >= 5, got 1"],
            id="interval-too-short",
        ),
        pytest.param(
            "- {name: a, targets: ['eu/*'], alarms: {prefix: x, regoin: eu-west-1}}\n"
            "- {name: b, targets: ['*']}\n",
            ["plan.yaml:8: waves[0].alarms.regoin: unknown key; did you mean 'region'?"],
            id="unknown-key",
        ),
        pytest.param(
            "- {name: a, targets: ['*'], alarms: {prefix: x}}\n",
            [
                "plan.yaml:8: waves[0].alarms: the wave's targets are in several regions "
                "(eu-west-1, us-east-1): give the gate the region of its alarms (region: ...), "
                "or split the wave"
            ],
            id="several-regions",
        ),
        pytest.param(
            "- {name: a, targets: ['*'], approval: {}}\n",
            ["plan.yaml:8: waves[0].approval.timeout: required"],
            id="approval-without-timeout",
        ),
        pytest.param(
            "- {name: a, targets: ['*'], approval: {timeout: 0}}\n",
            ["plan.yaml:8: waves[0].approval.timeout: expected a number of seconds > 0, got 0"],
            id="approval-timeout-zero",
        ),
        pytest.param(
            "- {name: a, targets: ['*'], approval: true}\n",
            ["plan.yaml:8: waves[0].approval: expected a mapping, got true"],
            id="approval-not-a-mapping",
        ),
    ],
)
def test_gate_errors(waves: str, expected: list[str]) -> None:
    assert errors(waves) == expected


def test_an_alarm_gate_reads_one_account() -> None:
    text = FLEET.replace(
        "{cluster: us, service: api, region: us-east-1}",
        "{cluster: us, service: api, profile: other}",
    )
    text += "  - {name: a, targets: ['*'], alarms: {prefix: x, region: eu-west-1}}\n"
    with pytest.raises(PlanError) as caught:
        parse_plan(text, source="plan.yaml", environ={})
    [issue] = [str(issue) for issue in caught.value.issues]
    assert issue.startswith(
        "plan.yaml:8: waves[0].alarms: the wave's targets use different profiles or roles"
    )
