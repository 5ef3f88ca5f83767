"""Verdicts under faults: failed reads never fail a target whose deployment may succeed.

Plans run in-process on the simulator's clock with the real client over HTTP, through a
proxy that fails chosen calls (``faults.FaultProxy``) or with the simulator's own random
500s. Every test compares what was reported with what the simulator's services run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from ecs_deploy_many.aws.session import ClientPool
from ecs_deploy_many.core.events import TargetEvent
from ecs_deploy_many.core.result import Status, TargetResult
from ecs_deploy_many.deploy.engine import RunResult, run_plan
from ecs_deploy_many.deploy.pipeline import RunContext
from ecs_deploy_many.deploy.wait import VERDICT_GRACE
from ecs_deploy_many.plan import parse_plan
from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.server import Simulator
from tests.integration.faults import FaultProxy
from tests.integration.helpers import FAST_TIMINGS, REGION, prod_fleet

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]

SPEED = 40.0
TIMEOUT = 60  # simulated seconds; a healthy rollout takes about 20
SERVICES = [f"s{i}" for i in range(10)]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(prod_fleet(*SERVICES), speed=SPEED, strict_output=True) as running:
        yield running


@pytest.fixture
async def proxy(sim: Simulator) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(sim.endpoint_url, sim.clock).running() as running:
        yield running


def plan(*targets: str, rollback: bool = True) -> str:
    return (
        "version: 1\n"
        f"defaults: {{region: {REGION}, cluster: prod, timeout: {TIMEOUT}, "
        f"rollback: {str(rollback).lower()}}}\n"
        "failure_budget: 100%\n"
        "on_failure: continue\n"
        "targets:\n" + "".join(f"  - {target}\n" for target in targets)
    )


def new_image(service: str) -> str:
    return f"{{service: {service}, image: 'example/{service}:2'}}"


async def deploy(
    sim: Simulator,
    endpoint: str,
    plan_text: str,
    on_event: Callable[[TargetEvent], None] = lambda event: None,
) -> RunResult:
    async with ClientPool(sim.clock, endpoint_url=endpoint) as pool:
        context = RunContext(pool, sim.clock, on_event)
        return await run_plan(parse_plan(plan_text, environ={}), context)


def when_updated(count: int, then: Callable[[], None]) -> Callable[[TargetEvent], None]:
    """An observer that calls ``then`` once ``count`` services have been updated."""
    updated = 0

    def observe(event: TargetEvent) -> None:
        nonlocal updated
        if event.event == "service_updated":
            updated += 1
            if updated == count:
                then()

    return observe


def described(sim: Simulator, service: str, cluster: str = "prod") -> dict[str, Any]:
    """The service as the simulator's state model holds it (no injected faults)."""
    params = {"cluster": cluster, "services": [service]}
    [found] = sim.state.handle("DescribeServices", REGION, params)["services"]
    return dict(found)


def primary(service: dict[str, Any]) -> dict[str, Any]:
    [found] = [d for d in service["deployments"] if d["status"] == "PRIMARY"]
    return dict(found)


def original(service: str) -> str:
    return f"arn:aws:ecs:{REGION}:123456789012:task-definition/{service}:1"


def only(run: RunResult) -> TargetResult:
    [result] = run.results.values()
    return result


async def test_a_batched_describe_failing_five_times_in_a_row_fails_no_target(
    sim: Simulator, proxy: FaultProxy
) -> None:
    # Once every service waits on its deployment, the one call describing all ten fails
    # five times in a row (the gateway used to give up after that many).
    arm = when_updated(len(SERVICES), lambda: proxy.fail("DescribeServices", times=5))

    run = await deploy(sim, proxy.url, plan(*map(new_image, SERVICES)), arm)

    assert proxy.failed["DescribeServices"] == 5
    assert {str(r.status) for r in run.results.values()} == {"succeeded"}
    for service in SERVICES:
        assert described(sim, service)["taskDefinition"].endswith(f"/{service}:2")


async def test_a_deployment_finished_while_reads_failed_is_judged_by_a_read_after_the_deadline(
    sim: Simulator, proxy: FaultProxy
) -> None:
    # Reads fail from the update until ten seconds past the deadline; the deployment
    # completed meanwhile. The verdict is read after the deadline: it succeeded.
    def reads_fail_past_the_deadline() -> None:
        proxy.fail("DescribeServices", until=sim.clock.now() + TIMEOUT + 10)

    arm = when_updated(1, reads_fail_past_the_deadline)
    run = await deploy(sim, proxy.url, plan(new_image("s0")), arm)

    result = only(run)
    assert proxy.failed["DescribeServices"] > 0
    assert result.status is Status.SUCCEEDED, result.error
    ours = primary(described(sim, "s0"))
    assert ours["id"] == result.deployment_id
    assert ours["rolloutState"] == "COMPLETED"


async def test_a_verdict_ecs_never_gave_is_unknown_not_failed(
    sim: Simulator, proxy: FaultProxy
) -> None:
    arm = when_updated(1, lambda: proxy.fail("DescribeServices"))

    run = await deploy(sim, proxy.url, plan(new_image("s0"), rollback=False), arm)

    result = only(run)
    assert result.status is Status.UNKNOWN
    assert not result.status.ok
    assert result.deployment_id is not None
    assert result.deployment_id in (result.error or "")
    assert "verdict unknown" in (result.error or "")
    # It was right not to call it failed: ECS completed the deployment.
    ours = primary(described(sim, "s0"))
    assert (ours["id"], ours["rolloutState"]) == (result.deployment_id, "COMPLETED")
    # Not ok, so it counts against the failure budget like a failure.
    assert run.failures == 1


async def test_a_refused_read_reaches_the_waiting_target_at_once(
    sim: Simulator, proxy: FaultProxy
) -> None:
    def refuse_reads() -> None:
        proxy.fail("DescribeServices", status=400, code="AccessDeniedException")

    run = await deploy(
        sim, proxy.url, plan(new_image("s0"), rollback=False), when_updated(1, refuse_reads)
    )

    result = only(run)
    assert result.status is Status.UNKNOWN
    assert result.error_code == "AccessDeniedException"
    # the refusal itself ended the wait, not the deadline
    assert "DescribeServices failed: AccessDeniedException" in (result.error or "")
    assert "by the deadline" not in (result.error or "")


async def test_a_target_whose_verdict_could_not_be_read_is_rolled_back(
    sim: Simulator, proxy: FaultProxy
) -> None:
    # Reads fail until after the deadline and its grace: the verdict is unknown, and
    # rollback: true holds for that too. Reads work again for the rollback's wait.
    def reads_fail_past_the_grace() -> None:
        proxy.fail("DescribeServices", until=sim.clock.now() + TIMEOUT + VERDICT_GRACE + 5)

    arm = when_updated(1, reads_fail_past_the_grace)
    run = await deploy(sim, proxy.url, plan(new_image("s0")), arm)

    result = only(run)
    assert result.status is Status.ROLLED_BACK, result.error
    assert "verdict unknown" in (result.error or "")
    assert result.old_task_definition == original("s0")
    service = described(sim, "s0")
    assert service["taskDefinition"] == original("s0")
    assert primary(service)["rolloutState"] == "COMPLETED"


async def test_reads_that_never_succeed_before_the_update_end_at_the_timeout(
    sim: Simulator, proxy: FaultProxy
) -> None:
    proxy.fail("DescribeServices")

    run = await deploy(sim, proxy.url, plan(new_image("s0")))

    result = only(run)
    assert (result.status, result.failed_step) == (Status.FAILED, "resolve")
    assert f"ECS did not answer within the timeout of {TIMEOUT} s" in (result.error or "")
    assert result.deployment_id is None
    assert described(sim, "s0")["taskDefinition"] == original("s0")


@pytest.mark.parametrize("forced", [False, True], ids=["new revision", "forced"])
async def test_an_update_whose_answer_was_lost_is_not_made_twice(
    sim: Simulator, proxy: FaultProxy, forced: bool
) -> None:
    # ECS carried the update out but its answer was a 500: repeating a forced update
    # blindly would start a second deployment.
    proxy.fail("UpdateService", times=1, carried_out=True)
    target = "{service: s0, force_new_deployment: true}" if forced else new_image("s0")

    run = await deploy(sim, proxy.url, plan(target))

    result = only(run)
    assert result.status is Status.SUCCEEDED, result.error
    assert proxy.failed["UpdateService"] == 1
    assert sim.stats().calls["UpdateService"] == 1
    service = described(sim, "s0")
    started = [e for e in service["events"] if " has started " in e["message"]]
    assert len(started) == 2  # the fleet's first task, then one new deployment's task
    assert primary(service)["id"] == result.deployment_id


# -- the fleet at 30 % injected 500s ------------------------------------------------------

GOOD = [f"good{i}" for i in range(10)]
BROKEN = [f"broken{i}" for i in range(3)]  # tasks never start: we roll back at the deadline
BREAKER = [f"breaker{i}" for i in range(3)]  # ECS's circuit breaker rolls back


def faulty_fleet() -> Fleet:
    def service(name: str) -> dict[str, Any]:
        spec: dict[str, Any] = {"name": name, "task_definition": name, "desired_count": 2}
        if name in BREAKER:
            spec["circuit_breaker"] = {"enable": True, "rollback": True}
        return spec

    names = GOOD + BROKEN + BREAKER
    return Fleet.model_validate(
        {
            "region": REGION,
            "timings": FAST_TIMINGS,
            "task_definitions": {
                name: {
                    "containerDefinitions": [
                        {"name": name, "image": f"example/{name}:1", "memory": 128}
                    ]
                }
                for name in names
            },
            "clusters": [{"name": "prod", "services": [service(name) for name in names]}],
            "behaviour": {"images": [{"match": "*:broken*", "outcome": "fail_to_start"}]},
        }
    )


async def test_at_30_percent_injected_errors_every_verdict_matches_what_ecs_did() -> None:
    targets = [
        *(f"{{service: {name}, image: 'example/{name}:2', timeout: 600}}" for name in GOOD),
        *(f"{{service: {name}, image: 'example/{name}:broken'}}" for name in BROKEN + BREAKER),
    ]
    async with Simulator(
        faulty_fleet(), speed=SPEED, error_rate=0.3, seed=20261202, strict_output=True
    ) as sim:
        run = await deploy(sim, sim.endpoint_url, plan(*targets))
        assert sim.stats().total_injected_errors > 20

        for result in run.results.values():
            name = str(result.target.service)
            service = described(sim, name)
            running = primary(service)
            if result.deployment_id is None:
                # It failed before its UpdateService: ECS refused a change five times.
                assert result.status is Status.FAILED, name
                assert service["taskDefinition"] == original(name), name
                continue
            # Never failed while the deployment completed; failed after the update
            # means rolled back, to exactly the previous revision and count.
            assert result.status in (Status.SUCCEEDED, Status.ROLLED_BACK), (name, result.error)
            if result.status is Status.SUCCEEDED:
                assert (running["id"], running["rolloutState"]) == (
                    result.deployment_id,
                    "COMPLETED",
                ), name
                assert service["taskDefinition"] == result.new_task_definition, name
            else:
                assert result.old_task_definition == original(name), name
                assert running["taskDefinition"] == original(name), name
                assert service["desiredCount"] == 2, name

        # Every broken service that got its update was rolled back; the faults kept at
        # most a couple of targets from ever reaching their update.
        updated = {name for name, r in run.results.items() if r.deployment_id is not None}
        assert len(updated) >= len(run.results) - 2
        for name in BROKEN + BREAKER:
            if f"prod/{name}" in updated:
                assert run.results[f"prod/{name}"].status is Status.ROLLED_BACK, name
        statuses = [r.status for r in run.results.values()]
        assert sum(status is Status.SUCCEEDED for status in statuses) >= len(GOOD) - 2


async def test_a_refused_read_during_a_bake_fails_its_target_not_the_run(
    sim: Simulator, proxy: FaultProxy
) -> None:
    def refuse_reads_once_finished(event: TargetEvent) -> None:
        if event.event == "target_finished":
            proxy.fail("DescribeServices", status=400, code="AccessDeniedException")

    baked = plan(new_image("s0"), rollback=False).replace(
        "targets:\n", "waves:\n  - {name: only, targets: ['*'], bake: 60}\ntargets:\n", 1
    )
    run = await deploy(sim, proxy.url, baked, refuse_reads_once_finished)

    result = only(run)
    assert (result.status, result.failed_step) == (Status.FAILED, "bake")
    assert "the service cannot be read" in (result.error or "")
    assert "AccessDeniedException" in (result.error or "")


async def test_a_rollback_ecs_refuses_fails_its_target_saying_so(
    sim: Simulator, proxy: FaultProxy
) -> None:
    # The deploy times out (the image never starts); the rollback's own UpdateService
    # is refused. The target says both, and which revision it could not go back to.
    arm = when_updated(
        1, lambda: proxy.fail("UpdateService", times=1, status=400, code="AccessDeniedException")
    )
    run = await deploy(sim, proxy.url, plan("{service: s0, image: 'example/s0:broken'}"), arm)

    result = only(run)
    assert (result.status, result.failed_step) == (Status.FAILED, "rollback")
    assert f"rollback to {original('s0')} failed" in (result.error or "")
    assert "AccessDeniedException" in (result.error or "")
