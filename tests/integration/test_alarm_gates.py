"""Alarm gates between waves: CloudWatch alarms read from moto's server while a wave bakes.

The engine runs in-process against the simulator (on its clock, 100x) and reads
CloudWatch through ``AWS_ENDPOINT_URL_CLOUDWATCH`` as a deployer's SDK would; alarms
change state with SetAlarmState, as CloudWatch's own evaluation would change them.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import boto3
import pytest

from ecs_deploy_many.aws.alarms import CloudWatchAlarms
from ecs_deploy_many.cli.many import cli
from ecs_deploy_many.core.events import EventName, TargetEvent
from ecs_deploy_many.core.scope import AwsScope
from ecs_deploy_many.deploy.engine import FleetRun, RunResult, RunVerdict
from ecs_deploy_many.deploy.gates import WaveGates
from ecs_deploy_many.deploy.pipeline import RunContext
from ecs_deploy_many.plan import parse_plan
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import REGION, ecs_client, prod_fleet, sim_pool
from tests.moto_server import moto_server

pytestmark = [pytest.mark.anyio, pytest.mark.real_time, pytest.mark.usefixtures("aws_credentials")]

SPEED = 100.0
SERVICES = ("a", "b", "c")
FLEET = prod_fleet(*SERVICES)
ORIGINAL = "arn:aws:ecs:eu-west-1:123456789012:task-definition/{}:1"

During = Callable[[Simulator, anyio.Event], Awaitable[None]]
"""Runs beside the run, handed an event set once the first wave (prod/a, prod/b) succeeded."""


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def cloudwatch(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's CloudWatch, which the run reaches by ``AWS_ENDPOINT_URL_CLOUDWATCH``; every
    alarm goes at the end (moto keeps its state per process)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", moto_url)
    client = boto3.client("cloudwatch", region_name=REGION)
    yield client
    names = [alarm["AlarmName"] for alarm in client.describe_alarms()["MetricAlarms"]]
    for i in range(0, len(names), 100):
        client.delete_alarms(AlarmNames=names[i : i + 100])


def alarm(cloudwatch: Any, name: str, state: str = "OK") -> None:
    """A metric alarm called ``name``, put in ``state``."""
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="HTTPCode_Target_5XX_Count",
        Namespace="AWS/ApplicationELB",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="set by the test")


def plan(head: str, *, budget: int = 0, on_failure: str = "halt") -> str:
    return f"""\
version: 1
defaults: {{cluster: prod, region: {REGION}, timeout: 300, rollback: true}}
failure_budget: {budget}
on_failure: {on_failure}
{head}
targets:
  - {{service: a, image: "example/a:2"}}
  - {{service: b, image: "example/b:2"}}
  - {{service: c, image: "example/c:2"}}
"""


@dataclass
class Outcome:
    result: RunResult
    events: list[TargetEvent]
    running: dict[str, str]
    """Each service's task definition once the run is over."""

    def statuses(self) -> dict[str, str]:
        return {name: str(r.status) for name, r in self.result.results.items()}

    def bake_events(self, name: str) -> list[str]:
        return [str(e.event) for e in self.events if e.step == "bake" and e.target.name == name]


async def gated_run(text: str, during: During | None = None) -> Outcome:
    """Run the plan with its alarm gates read from CloudWatch; ``during`` runs beside it."""
    events: list[TargetEvent] = []
    canary_done = anyio.Event()

    def observe(event: TargetEvent) -> None:
        events.append(event)
        done = {
            e.target.name
            for e in events
            if e.event is EventName.TARGET_FINISHED and e.facts["status"] == "succeeded"
        }
        if {"prod/a", "prod/b"} <= done:
            canary_done.set()

    async with AsyncExitStack() as stack:
        sim = await stack.enter_async_context(Simulator(FLEET, speed=SPEED, listen=False))
        pool = await stack.enter_async_context(sim_pool(sim))
        gates = WaveGates(alarms=CloudWatchAlarms(pool, sim.clock))
        context = RunContext(pool, sim.clock, observe)
        run = FleetRun(parse_plan(text, environ={}), context, gates=gates)
        async with anyio.create_task_group() as group:
            if during is not None:
                group.start_soon(during, sim, canary_done)
            result = await run.run()
            group.cancel_scope.cancel()
        async with ecs_client(sim) as ecs:
            described = await ecs.describe_services(cluster="prod", services=list(SERVICES))
    running = {s["serviceName"]: s["taskDefinition"] for s in described["services"]}
    return Outcome(result, events, running)


def fire(cloudwatch: Any, name: str, after: float) -> During:
    """Put ``name`` in ALARM ``after`` seconds (of the run's clock) into the first wave's
    bake: once prod/a and prod/b succeeded."""

    async def during(sim: Simulator, canary_done: anyio.Event) -> None:
        await canary_done.wait()
        await sim.clock.sleep(after)
        await anyio.to_thread.run_sync(
            lambda: cloudwatch.set_alarm_state(
                AlarmName=name, StateValue="ALARM", StateReason="5xx above 10"
            )
        )

    return during


CANARY = "  - name: canary\n    targets: [prod/a, prod/b]\n"
REST = "  - {name: rest, targets: ['*']}"


async def test_an_alarm_firing_during_the_bake_rolls_the_wave_back_naming_it(
    cloudwatch: Any,
) -> None:
    alarm(cloudwatch, "api-5xx")
    alarm(cloudwatch, "api-latency")
    text = plan(
        f"waves:\n{CANARY}    bake: 900\n"
        "    alarms: {names: [api-5xx, api-latency], interval: 10}\n" + REST
    )

    run = await gated_run(text, fire(cloudwatch, "api-5xx", after=60))

    assert run.result.verdict is RunVerdict.FAILED
    assert run.statuses() == {
        "prod/a": "rolled_back",
        "prod/b": "rolled_back",
        "prod/c": "skipped",
    }
    for name in ("prod/a", "prod/b"):
        error = run.result.results[name].error
        assert error == "alarm gate: api-5xx in ALARM", error
        # the gate failed it, once: no watcher of the bake failed it again as it rolled back
        assert run.bake_events(name) == ["alarm_gate_failed"]
    gate_failed = [e for e in run.events if e.event is EventName.ALARM_GATE_FAILED]
    assert [e.facts["alarms"] for e in gate_failed] == [["api-5xx"]] * 2
    assert "failure budget of 0" in (run.result.halted or "")
    assert run.running == {name: ORIGINAL.format(name) for name in SERVICES}


async def test_quiet_alarms_let_the_run_succeed(cloudwatch: Any) -> None:
    """OK and INSUFFICIENT_DATA pass; an alarm the prefix does not match is not the
    gate's, whatever its state."""
    alarm(cloudwatch, "api-5xx")
    alarm(cloudwatch, "api-latency", "INSUFFICIENT_DATA")
    alarm(cloudwatch, "web-5xx", "ALARM")
    text = plan(
        f"waves:\n{CANARY}    bake: 120\n    alarms: {{prefix: api-, interval: 10}}\n" + REST
    )

    run = await gated_run(text)

    assert run.result.verdict is RunVerdict.SUCCEEDED, run.result.results
    assert run.statuses() == dict.fromkeys(("prod/a", "prod/b", "prod/c"), "succeeded")
    assert not [e for e in run.events if e.event is EventName.ALARM_GATE_FAILED]
    assert run.running == {name: f"{ORIGINAL.format(name)[:-2]}:2" for name in SERVICES}


@pytest.mark.parametrize(("budget", "rest"), [(1, "skipped"), (2, "succeeded")])
async def test_each_target_the_gate_fails_counts_against_the_failure_budget(
    cloudwatch: Any, budget: int, rest: str
) -> None:
    """A wave without a bake gets one read once its deployments are over. prod/b asks
    for no rollback: it fails and stays on the new revision."""
    alarm(cloudwatch, "api-5xx", "ALARM")
    alarm(cloudwatch, "api-latency")
    text = plan(
        f"waves:\n{CANARY}    alarms: {{prefix: [api-5, db-]}}\n" + REST, budget=budget
    ).replace('image: "example/b:2"', 'image: "example/b:2", rollback: false')

    run = await gated_run(text)

    assert run.statuses() == {"prod/a": "rolled_back", "prod/b": "failed", "prod/c": rest}
    assert run.result.failures == 2
    assert run.result.verdict is RunVerdict.FAILED
    assert run.result.results["prod/b"].error == "alarm gate: api-5xx in ALARM"
    assert run.running["a"] == ORIGINAL.format("a")
    assert run.running["b"].endswith("/b:2")
    halted = run.result.halted
    if rest == "skipped":
        assert halted is not None
        assert "2 failed target(s) exceed the failure budget of 1" in halted
    else:
        assert halted is None


async def test_a_named_alarm_that_does_not_exist_fails_the_gate(cloudwatch: Any) -> None:
    """A typo must not pass for a quiet alarm."""
    alarm(cloudwatch, "api-5xx")
    text = plan(f"waves:\n{CANARY}    alarms: {{names: [api-5xx, api-5xxx]}}\n" + REST)

    run = await gated_run(text)

    assert run.statuses() == {
        "prod/a": "rolled_back",
        "prod/b": "rolled_back",
        "prod/c": "skipped",
    }
    error = run.result.results["prod/a"].error
    assert error == f"alarm gate: no CloudWatch alarm named api-5xxx in {REGION}"


async def test_cloudwatch_that_cannot_be_read_fails_the_gate(
    cloudwatch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing listens where CloudWatch should be: the gate cannot vouch for the wave."""
    alarm(cloudwatch, "api-5xx")
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", f"http://127.0.0.1:{port}")
    text = plan(f"waves:\n{CANARY}    alarms: {{names: [api-5xx]}}\n" + REST)

    run = await gated_run(text)

    assert run.statuses()["prod/a"] == "rolled_back"
    error = run.result.results["prod/a"].error or ""
    assert error.startswith("alarm gate: cannot read CloudWatch"), error
    assert "DescribeAlarms failed" in error
    assert run.statuses()["prod/c"] == "skipped"


async def test_a_read_batches_names_by_100_and_reads_each_prefix_once(cloudwatch: Any) -> None:
    names = [f"svc-{i:03d}" for i in range(150)]
    for name in names:
        alarm(cloudwatch, name)
    cloudwatch.set_alarm_state(AlarmName="svc-149", StateValue="ALARM", StateReason="test")
    alarm(cloudwatch, "db-errors", "INSUFFICIENT_DATA")
    calls: list[dict[str, Any]] = []
    async with Simulator(FLEET, speed=SPEED, listen=False) as sim, sim_pool(sim) as pool:
        scope = AwsScope(region=REGION)
        client = await pool.cloudwatch(scope)
        client.meta.events.register(
            "provide-client-params.cloudwatch.DescribeAlarms",
            lambda params, **_: calls.append(dict(params)),
        )
        reading = await CloudWatchAlarms(pool, sim.clock).read(
            scope, [*names, "svc-missing"], ["db-", "cache-"]
        )
    assert [len(call.get("AlarmNames", [])) for call in calls] == [100, 51, 0, 0]
    assert [call.get("AlarmNamePrefix") for call in calls] == [None, None, "db-", "cache-"]
    assert all(call["AlarmTypes"] == ["MetricAlarm", "CompositeAlarm"] for call in calls)
    assert len(reading.alarms) == 151
    assert [a.name for a in reading.firing] == ["svc-149"]
    assert reading.missing == ("svc-missing",)


# -- at the command line: each gate read once before anything changes -----------------


async def many(*args: str) -> int:
    code = await cli.main(list(args), "ecs-deploy-many", standalone_mode=False)
    return code if isinstance(code, int) else 0


async def test_a_gate_naming_a_missing_alarm_stops_the_run_before_any_change(
    cloudwatch: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alarm(cloudwatch, "api-5xx", "ALARM")
    text = plan(f"waves:\n{CANARY}    alarms: {{names: [api-5xx, api-5xxx]}}\n" + REST)
    (tmp_path / "plan.yaml").write_text(text)
    async with Simulator(FLEET, speed=SPEED) as sim:
        code = await many(
            str(tmp_path / "plan.yaml"), "--endpoint-url", sim.endpoint_url,
            "--speed", f"{SPEED:g}", "--no-journal", "--report", str(tmp_path / "report.json"),
        )  # fmt: skip
        stats = sim.stats()
    err = capsys.readouterr().err
    assert code == 2, err
    assert not stats.updates
    problem = (
        f"the alarm gate of wave canary names no CloudWatch alarm in {REGION} called "
        "api-5xxx: check the names (prefix: matches any number)"
    )
    assert f"error: {problem}" in err
    assert "warning: api-5xx in ALARM already: wave canary fails once deployed" in err
    report = json.loads((tmp_path / "report.json").read_text())
    assert {t["status"] for t in report["targets"]} == {"skipped"}
    assert report["targets"][0]["error"] == f"nothing was deployed: {problem}"
