"""Judging OUR deployment by ECS's service deployment, refusing foreign controllers, and
stopping an in-flight deployment on interruption.

Plans run in-process on the simulator's virtual clock with the real client; what each
service runs afterwards and which calls reached the simulator are checked, not only the
statuses reported.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from ecs_deploy_many.core.events import EventName, TargetEvent
from ecs_deploy_many.core.result import Status
from ecs_deploy_many.deploy.dryrun import format_preview, format_status, preview_plan
from ecs_deploy_many.deploy.engine import FleetRun, RunResult
from ecs_deploy_many.deploy.pipeline import RunContext
from ecs_deploy_many.observe.html import render_html_report
from ecs_deploy_many.observe.timeline import Timeline
from ecs_deploy_many.plan import parse_plan
from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.model import SimError
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import (
    REGION,
    ecs_client,
    one_family_per_service,
    sim_pool,
)
from tests.integration.helpers import (
    taskdef_arn as arn,
)
from tests.integration.interrupted_runs import fold, killed_run, resumed_run

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]

ALARMS = {"alarm_names": ["api-5xx"], "enable": True, "rollback": True}
SERVICES: dict[str, dict[str, Any]] = {
    "plain": {},
    "alarmed": {"alarms": ALARMS},
    "alarmed-breaker": {"alarms": ALARMS, "circuit_breaker": {"enable": True, "rollback": True}},
    "slow": {"alarms": ALARMS, "timings": {"health_grace": 600}},
    "slow-rolling": {"timings": {"health_grace": 600}},
    "codedeploy": {"deployment_controller": "CODE_DEPLOY"},
    "external": {"deployment_controller": "EXTERNAL"},
}


def fleet() -> Fleet:
    return one_family_per_service(SERVICES, container="app")


def plan(*targets: tuple[str, str], max_parallel: int = 25, **defaults: Any) -> Any:
    """A plan deploying each (service, image), with these ``defaults`` over the usual."""
    settings = {"region": REGION, "timeout": 900, "progress_deadline": 300, **defaults}
    lines = "".join(
        f"  - {{cluster: prod, service: {service}, image: '{image}'}}\n"
        for service, image in targets
    )
    keys = ", ".join(f"{key}: {value}" for key, value in settings.items())
    return parse_plan(
        f"version: 1\nconcurrency: {{max_parallel: {max_parallel}}}\n"
        f"defaults: {{{keys}}}\ntargets:\n{lines}",
        environ={},
    )


async def run(
    sim: Simulator,
    *targets: tuple[str, str],
    settings: dict[str, Any] | None = None,
    stop_deployments_on_interrupt: bool = False,
    cancel_when: Callable[[TargetEvent], bool] | None = None,
) -> tuple[RunResult, list[TargetEvent]]:
    """Run the plan of ``targets`` (``settings``: ``plan``'s keywords) to its end, or until
    ``cancel_when`` holds for an event: then cancel it, as a signal would."""
    events: list[TargetEvent] = []
    scope = anyio.CancelScope()

    def observe(event: TargetEvent) -> None:
        events.append(event)
        if cancel_when is not None and cancel_when(event):
            scope.cancel()

    async with sim_pool(sim) as pool:
        context = RunContext(
            pool,
            sim.clock,
            observe,
            stop_deployments_on_interrupt=stop_deployments_on_interrupt,
        )
        fleet_run = FleetRun(plan(*targets, **(settings or {})), context)
        with scope:
            await fleet_run.run()
    return fleet_run.result, events


async def described(sim: Simulator, service: str) -> dict[str, Any]:
    async with ecs_client(sim) as ecs:
        [found] = (await ecs.describe_services(cluster="prod", services=[service]))["services"]
    return dict(found)


async def service_deployments(sim: Simulator, service: str) -> list[dict[str, Any]]:
    """The service's service deployments, newest first."""
    async with ecs_client(sim) as ecs:
        listed = await ecs.list_service_deployments(cluster="prod", service=service)
        arns = [brief["serviceDeploymentArn"] for brief in listed["serviceDeployments"]]
        found = await ecs.describe_service_deployments(serviceDeploymentArns=arns)
    return sorted(found["serviceDeployments"], key=lambda sd: sd["createdAt"], reverse=True)


def named(events: list[TargetEvent], name: EventName) -> list[TargetEvent]:
    return [event for event in events if event.event is name]


@pytest.fixture
async def sim() -> Simulator:  # type: ignore[misc]
    async with Simulator(fleet(), speed=40, strict_output=True, listen=False) as running:
        yield running


async def test_foreign_controllers_are_refused_before_anything_is_registered_or_changed(
    sim: Simulator,
) -> None:
    result, _ = await run(
        sim,
        ("plain", "example/plain:2"),
        ("codedeploy", "example/codedeploy:2"),
        ("external", "example/external:2"),
    )

    statuses = {name: (r.status, r.failed_step) for name, r in result.results.items()}
    assert statuses == {
        "prod/plain": (Status.SUCCEEDED, None),
        "prod/codedeploy": (Status.FAILED, "resolve"),
        "prod/external": (Status.FAILED, "resolve"),
    }
    codedeploy = result.results["prod/codedeploy"].error or ""
    assert "service codedeploy uses the CODE_DEPLOY deployment controller" in codedeploy
    assert "Deploy it with AWS CodeDeploy" in codedeploy
    assert "deploymentConfiguration.strategy BLUE_GREEN" in codedeploy
    assert "uses the EXTERNAL deployment controller" in (
        result.results["prod/external"].error or ""
    )
    stats = sim.stats()
    assert stats.calls["RegisterTaskDefinition"] == 1  # plain's only
    assert stats.calls["UpdateService"] == 1
    assert list(stats.updates) == [f"arn:aws:ecs:{REGION}:123456789012:service/prod/plain"]
    for refused in ("codedeploy", "external"):
        assert (await described(sim, refused))["taskDefinition"] == arn(f"{refused}:1")


async def test_a_rolling_update_without_alarms_costs_no_service_deployment_call(
    sim: Simulator,
) -> None:
    result, events = await run(sim, ("plain", "example/plain:2"))

    assert result.results["prod/plain"].status is Status.SUCCEEDED
    calls = sim.stats().calls
    assert not {op for op in calls if "ServiceDeployment" in op or "ServiceRevision" in op}
    assert not named(events, EventName.SERVICE_DEPLOYMENT)


async def test_a_service_with_deployment_alarms_is_judged_by_its_service_deployment(
    sim: Simulator,
) -> None:
    result, events = await run(sim, ("alarmed", "example/alarmed:2"))

    record = result.results["prod/alarmed"]
    assert record.status is Status.SUCCEEDED, record.error
    calls = sim.stats().calls
    assert (calls["ListServiceDeployments"], calls["DescribeServiceRevisions"]) == (1, 1)
    assert calls["DescribeServiceDeployments"] >= 1
    [found] = named(events, EventName.SERVICE_DEPLOYMENT)
    ours = (await service_deployments(sim, "alarmed"))[0]  # the newest
    assert ours["status"] == "SUCCESSFUL"
    assert found.facts["service_deployment_arn"] == ours["serviceDeploymentArn"]
    progress = named(events, EventName.PROGRESS)
    assert {e.facts["stage"] for e in progress} >= {"SCALE_UP"}
    assert (await described(sim, "alarmed"))["taskDefinition"] == arn("alarmed:2")


async def test_an_ecs_rollback_is_reported_final_with_ecs_reason(sim: Simulator) -> None:
    result, events = await run(sim, ("alarmed-breaker", "example/alarmed-breaker:broken"))

    record = result.results["prod/alarmed-breaker"]
    assert record.status is Status.ROLLED_BACK
    assert record.error == (
        "ECS rolled back: ECS deployment circuit breaker: tasks failed to start."
    )
    newest = (await service_deployments(sim, "alarmed-breaker"))[0]
    assert newest["status"] == "ROLLBACK_SUCCESSFUL"  # waited for: the state reported is final
    assert (await described(sim, "alarmed-breaker"))["taskDefinition"] == arn("alarmed-breaker:1")
    assert not named(events, EventName.ROLLBACK_STARTED)  # ECS rolled back, not us


@pytest.mark.parametrize(
    ("code", "lists"),
    [
        # refused for these services: each asks, as another service may be allowed
        pytest.param("AccessDeniedException", 2, id="access-denied"),
        # an endpoint without the operation: asked once for the whole scope
        pytest.param("UnknownOperationException", 1, id="unknown-operation"),
    ],
)
async def test_when_ecs_will_not_list_service_deployments_the_deployments_array_judges(
    sim: Simulator, code: str, lists: int
) -> None:
    handle = sim.state.handle

    def refusing(operation: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation == "ListServiceDeployments":
            raise SimError(code, "not allowed: ecs:ListServiceDeployments")
        return handle(operation, region, params)

    sim.state.handle = refusing  # type: ignore[method-assign]

    result, events = await run(
        sim,
        ("alarmed", "example/alarmed:2"),
        ("alarmed-breaker", "example/alarmed-breaker:2"),
        settings={"max_parallel": 1},  # one after the other
    )

    assert {r.status for r in result.results.values()} == {Status.SUCCEEDED}
    fallbacks = named(events, EventName.SERVICE_DEPLOYMENT)
    assert len(fallbacks) == 2
    for fallback in fallbacks:
        assert fallback.level == "warning"
        assert code in fallback.facts["reason"]
        assert "judged by the service's deployments array" in fallback.facts["reason"]
    calls = sim.stats().calls
    assert "DescribeServiceDeployments" not in calls
    assert calls["ListServiceDeployments"] == lists


def waiting(event: TargetEvent) -> bool:
    return event.event is EventName.PROGRESS and event.facts.get("stage") == "SCALE_UP"


def waiting_on_tasks(event: TargetEvent) -> bool:
    return event.event is EventName.PROGRESS and event.facts.get("running") == 0


@pytest.mark.parametrize(
    ("service", "cancel_when"),
    [
        pytest.param("slow", waiting, id="judged-by-its-service-deployment"),
        pytest.param("slow-rolling", waiting_on_tasks, id="found-when-interrupted"),
    ],
)
async def test_an_interrupted_run_stops_its_service_deployment_when_asked(
    sim: Simulator, service: str, cancel_when: Callable[[TargetEvent], bool]
) -> None:
    result, events = await run(
        sim,
        (service, f"example/{service}:2"),
        stop_deployments_on_interrupt=True,
        cancel_when=cancel_when,
    )

    record = result.results[f"prod/{service}"]
    assert record.status is Status.INTERRUPTED
    [stopped] = named(events, EventName.DEPLOYMENT_STOPPED)
    arn_stopped = stopped.facts["service_deployment_arn"]
    assert record.error == (
        f"interrupted during wait; stopped service deployment {arn_stopped}: ECS rolls it back"
    )
    assert sim.stats().calls["StopServiceDeployment"] == 1
    [ours] = [
        sd
        for sd in await service_deployments(sim, service)
        if sd["serviceDeploymentArn"] == arn_stopped
    ]
    assert ours["status"] in ("ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL")


async def test_an_interrupted_run_leaves_its_deployment_alone_by_default(
    sim: Simulator,
) -> None:
    result, events = await run(sim, ("slow", "example/slow:2"), cancel_when=waiting)

    assert result.results["prod/slow"].status is Status.INTERRUPTED
    assert not named(events, EventName.DEPLOYMENT_STOPPED)
    assert "StopServiceDeployment" not in sim.stats().calls
    statuses = [sd["status"] for sd in await service_deployments(sim, "slow")]
    assert "IN_PROGRESS" in statuses


async def test_the_dry_run_says_how_each_service_deploys_and_which_will_be_refused(
    sim: Simulator,
) -> None:
    targets = plan(
        ("plain", "example/plain:2"),
        ("alarmed", "example/alarmed:2"),
        ("codedeploy", "example/codedeploy:2"),
        ("external", "example/external:2"),
    )
    async with sim_pool(sim) as pool:
        previews = await preview_plan(targets, pool, max_parallel=4)

    by_name = {preview.name: preview for preview in previews}
    assert {name: p.controller for name, p in by_name.items()} == {
        "prod/plain": "ECS",
        "prod/alarmed": "ECS",
        "prod/codedeploy": "CODE_DEPLOY",
        "prod/external": "EXTERNAL",
    }
    lines = format_preview(previews).splitlines()
    assert lines[:3] == [
        "prod/plain  (cluster prod, service plain, eu-west-1)",
        f"  task definition {arn('plain:1')} -> new revision",
        "  container app: image example/plain:1 -> example/plain:2",
    ]
    assert "  deployed by ECS controller, ROLLING, alarms api-5xx (rollback)" in lines
    [codedeploy] = [line for line in lines if line.startswith("prod/codedeploy")]
    assert codedeploy.startswith(
        "prod/codedeploy  will be refused: service codedeploy uses the CODE_DEPLOY deployment "
        "controller"
    )
    assert any(line.startswith("prod/external  will be refused: ") for line in lines)
    status = format_status(previews).splitlines()
    assert any(line.startswith("  plan     will be refused: service external") for line in status)
    assert "  strategy ECS controller, ROLLING, alarms api-5xx (rollback)" in status
    assert not {
        op for op in sim.stats().calls if op not in ("DescribeServices", "DescribeTaskDefinition")
    }


# -- blue/green, linear and canary, on the simulator's example fleet -----------------------

STRATEGIES_FLEET = Path(__file__).resolve().parents[2] / "deploy-plans/sim/strategies-fleet.yaml"
STRATEGIES = ["bluegreen", "linear", "canary"]


def strategies_fleet(**changes: dict[str, Any]) -> Fleet:
    """The example fleet, each service named in ``changes`` with those keys changed."""
    spec = yaml.safe_load(STRATEGIES_FLEET.read_text())
    for service in spec["clusters"][0]["services"]:
        service.update(changes.get(service["name"], {}))
    return Fleet.model_validate(spec)


@asynccontextmanager
async def simulating(fleet: Fleet) -> AsyncIterator[Simulator]:
    async with Simulator(fleet, speed=40, strict_output=True, listen=False) as running:
        yield running


def stages(events: list[TargetEvent], step: str = "wait") -> list[str]:
    """The lifecycle stages the progress events of ``step`` named, each once, in order."""
    named_stages = [e.facts["stage"] for e in named(events, EventName.PROGRESS) if e.step == step]
    return list(dict.fromkeys(stage for stage in named_stages if stage))


@pytest.mark.parametrize("service", STRATEGIES)
async def test_blue_green_linear_and_canary_deploy_to_succeeded(service: str) -> None:
    async with simulating(strategies_fleet()) as sim:
        # A deadline shorter than the bakes: waiting in a bake or a step is no stall.
        result, events = await run(
            sim, (service, "example/app:2"), settings={"progress_deadline": 30}
        )
        now = await described(sim, service)

    record = result.results[f"prod/{service}"]
    assert record.status is Status.SUCCEEDED, record.error
    assert now["taskDefinition"] == arn("app:2")
    seen = stages(events)
    assert seen[-2:] == ["BAKE_TIME", "CLEAN_UP"], seen  # short stages may pass unseen
    assert "SCALE_UP" in seen
    states = [e.facts["state"] for e in named(events, EventName.PROGRESS)]
    assert "BAKE_TIME, 1m left" in states
    if service != "bluegreen":  # the steps of production traffic, as they shift
        assert any(s.startswith("PRODUCTION_TRAFFIC_SHIFT, ") for s in states), states
    # the HTML report shows the stages, each with how long it lasted
    timeline = Timeline()
    for event in events:
        timeline(event)
    page = render_html_report(result, timeline, plan_path="plan.yaml")
    [shown] = re.findall(r"<dt>Lifecycle stages</dt><dd>([^<]*)</dd>", page)
    assert re.search(r"· BAKE_TIME [\dm ]+s · CLEAN_UP [\d.]+s$", shown), shown
    # Stages are seen by polling (at most 10 s apart, plus 10 % jitter), so the one-minute
    # bake shows as lasting 60 s give or take one poll interval.
    [baked] = re.findall(r"BAKE_TIME (?:(\d+)m )?(\d+)s", shown)
    assert 49 <= int(baked[0] or 0) * 60 + int(baked[1]) <= 71, shown
    assert re.search(r'title="wait [^"]*\(.*BAKE_TIME [\dm ]+s', page)


@pytest.mark.parametrize("service", STRATEGIES)
async def test_a_failing_image_ends_rolled_back_with_ecs_reason(service: str) -> None:
    async with simulating(strategies_fleet()) as sim:
        result, events = await run(sim, (service, "example/app:broken-2"))
        now = await described(sim, service)
        newest = (await service_deployments(sim, service))[0]

    record = result.results[f"prod/{service}"]
    assert record.status is Status.ROLLED_BACK
    assert record.error == (
        "ECS rolled back: ECS deployment circuit breaker: tasks failed to start."
    )
    assert newest["status"] == "ROLLBACK_SUCCESSFUL"
    assert now["taskDefinition"] == arn("app:1")
    assert not named(events, EventName.ROLLBACK_STARTED)  # ECS rolled back, not us


async def test_a_long_bake_is_no_stall() -> None:
    fleet = strategies_fleet(bluegreen={"bake_time_in_minutes": 120})
    async with simulating(fleet) as sim:
        result, events = await run(
            sim,
            ("bluegreen", "example/app:2"),
            settings={"progress_deadline": 60, "timeout": 4 * 3600},
        )

    record = result.results["prod/bluegreen"]
    assert record.status is Status.SUCCEEDED, record.error
    states = [e.facts["state"] for e in named(events, EventName.PROGRESS)]
    assert states[
        states.index("BAKE_TIME, 120m left") : states.index("BAKE_TIME, 119m left") + 1
    ] == ["BAKE_TIME, 120m left", "BAKE_TIME, 119m left"]
    assert "BAKE_TIME, 1m left" in states
    assert record.finished_at is not None
    assert record.started_at is not None
    assert record.finished_at - record.started_at > 120 * 60


async def test_our_rollback_of_a_blue_green_service_goes_through_its_strategy() -> None:
    # Without a circuit breaker ECS never gives up on green tasks that cannot start:
    # the progress deadline fails the deployment and we roll back.
    fleet = strategies_fleet(bluegreen={"circuit_breaker": {"enable": False}})
    async with simulating(fleet) as sim:
        result, events = await run(
            sim,
            ("bluegreen", "example/app:broken-2"),
            settings={"progress_deadline": 60, "rollback": "true"},
        )
        now = await described(sim, "bluegreen")
        history = await service_deployments(sim, "bluegreen")

    record = result.results["prod/bluegreen"]
    assert record.status is Status.ROLLED_BACK, record.error
    assert (record.error or "").startswith("no progress for 60 s")
    assert now["taskDefinition"] == arn("app:1")
    found = named(events, EventName.SERVICE_DEPLOYMENT)
    assert [e.step for e in found] == ["wait", "rollback"]
    ours, rollback = (e.facts["service_deployment_arn"] for e in found)
    statuses = {sd["serviceDeploymentArn"]: sd["status"] for sd in history}
    assert statuses[ours] == "STOPPED"  # replaced by our rollback's deployment
    assert statuses[rollback] == "SUCCESSFUL"
    assert stages(events, "rollback")[-2:] == ["BAKE_TIME", "CLEAN_UP"]
    assert sim.stats().calls["UpdateService"] == 2


async def test_an_image_that_sets_off_a_deployment_alarm_ends_rolled_back_naming_it() -> None:
    async with simulating(strategies_fleet()) as sim:
        result, events = await run(sim, ("alarmed", "example/app:bad-metrics"))
        now = await described(sim, "alarmed")

    record = result.results["prod/alarmed"]
    assert record.status is Status.ROLLED_BACK
    assert record.error == "ECS rolled back: alarm app-5xx in ALARM"
    assert now["taskDefinition"] == arn("app:1")
    assert not named(events, EventName.ROLLBACK_STARTED)  # ECS rolled back, not us


async def test_an_alarm_firing_during_the_bake_ends_rolled_back_naming_it() -> None:
    """Another service starts running an image that sets the alarm off while ours bakes."""
    async with simulating(strategies_fleet()) as sim:

        async def set_off_the_alarm_once_baking() -> None:
            async with ecs_client(sim) as ecs:
                while True:
                    await sim.clock.sleep(5)
                    newest = (await service_deployments(sim, "alarmed"))[0]
                    if newest.get("lifecycleStage") == "BAKE_TIME":
                        break
                registered = await ecs.register_task_definition(
                    family="noisy",
                    containerDefinitions=[
                        {"name": "app", "image": "example/app:bad-metrics", "memory": 128}
                    ],
                )
                await ecs.update_service(
                    cluster="prod",
                    service="rolling",
                    taskDefinition=registered["taskDefinition"]["taskDefinitionArn"],
                )

        async with anyio.create_task_group() as group:
            group.start_soon(set_off_the_alarm_once_baking)
            result, events = await run(sim, ("alarmed", "example/app:2"))
        now = await described(sim, "alarmed")

    record = result.results["prod/alarmed"]
    assert record.status is Status.ROLLED_BACK
    assert record.error == "ECS rolled back: alarm app-5xx in ALARM"
    assert "BAKE_TIME" in stages(events)
    assert now["taskDefinition"] == arn("app:1")


async def test_a_resumed_run_follows_its_blue_green_deployment_by_its_service_deployment() -> None:
    blue_green = plan(("bluegreen", "example/app:2"))
    async with simulating(strategies_fleet()) as sim:
        _, before = await killed_run(
            sim, blue_green, lambda event, _: event.event is EventName.SERVICE_UPDATED
        )
        result, events = await resumed_run(sim, blue_green, fold(before))
        again, rerun = await resumed_run(sim, blue_green, None)
        calls = sim.stats().calls

    record = result.results["prod/bluegreen"]
    assert record.status is Status.SUCCEEDED, record.error
    assert [e.event for e in events].count(EventName.ATTACHED) == 1
    [found] = named(events, EventName.SERVICE_DEPLOYMENT)
    assert found.facts["service_deployment_arn"]
    assert "BAKE_TIME" in stages(events)
    # once it is done, running the plan again changes nothing
    assert again.results["prod/bluegreen"].status is Status.UNCHANGED
    assert not named(rerun, EventName.SERVICE_DEPLOYMENT)
    assert calls["UpdateService"] == 1
