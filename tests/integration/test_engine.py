"""The fleet engine against the simulator: concurrency, waves, dependencies, failure policy.

Plans run in-process on the simulator's clock with the real client over HTTP; every test
checks what the simulator's services run afterwards, not only the reported statuses.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from ecs_deploy_many.core.events import EventName, TargetEvent
from ecs_deploy_many.core.result import TargetResult
from ecs_deploy_many.deploy.engine import FleetRun, RunResult, RunVerdict, run_plan
from ecs_deploy_many.deploy.pipeline import RunContext
from ecs_deploy_many.observe.html import render_html_report
from ecs_deploy_many.observe.timeline import Timeline
from ecs_deploy_many.plan import parse_plan
from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import FAST_TIMINGS, ecs_client, sim_pool

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

pytestmark = pytest.mark.anyio

SPEED = 40.0
EU, US = "eu-west-1", "us-east-1"
CLUSTERS = {"alpha": EU, "beta": EU, "gamma": US}
PER_CLUSTER = 12
NEW, BROKEN = "example/app:2", "example/app:broken"
BROKEN_TIMEOUT = 30
SLOW = "slow"


def service_name(index: int | str) -> str:
    """Services are numbered; ``SLOW`` is named."""
    return index if isinstance(index, str) else f"svc{index:02d}"


FLEET = Fleet.model_validate(
    {
        "region": EU,
        "timings": FAST_TIMINGS,
        "task_definitions": {
            name: {
                "containerDefinitions": [{"name": "app", "image": "example/app:1", "memory": 128}]
            }
            for name in [*map(service_name, range(PER_CLUSTER)), SLOW]
        },
        "clusters": [
            {
                "name": cluster,
                "region": region,
                "services": [
                    *(
                        {"name": service_name(i), "task_definition": service_name(i)}
                        for i in range(PER_CLUSTER)
                    ),
                    # a rollout of about 80 s, still under way when a broken one gives up
                    {"name": SLOW, "task_definition": SLOW, "timings": {"health_grace": 70}},
                ],
            }
            for cluster, region in CLUSTERS.items()
        ],
        "behaviour": {
            "images": [
                {"match": "*:broken*", "outcome": "fail_to_start"},
                # healthy long enough to complete, then the tasks crash: only a bake sees it
                {"match": "*:crashy*", "outcome": "crash", "after": 30},
            ]
        },
    }
)


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_DEFAULT_REGION", EU)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(FLEET, speed=SPEED, strict_output=True, listen=False) as running:
        yield running


@pytest.fixture
async def ecs(sim: Simulator) -> AsyncIterator[dict[str, ECSClient]]:
    """One client per region of the fleet."""
    async with ecs_client(sim, EU) as eu, ecs_client(sim, US) as us:
        yield {EU: eu, US: us}


@asynccontextmanager
async def context(sim: Simulator, events: list[TargetEvent]) -> AsyncIterator[RunContext]:
    async with sim_pool(sim) as pool:
        yield RunContext(pool, sim.clock, events.append)


async def deploy(sim: Simulator, plan_text: str) -> tuple[RunResult, list[TargetEvent]]:
    events: list[TargetEvent] = []
    plan = parse_plan(plan_text, environ={})
    async with context(sim, events) as ctx:
        return await run_plan(plan, ctx), events


def target(cluster: str, index: int | str, **extra: Any) -> str:
    """One plan target line; the name is ``cluster/svcNN``."""
    fields = {"cluster": cluster, "service": service_name(index), "region": CLUSTERS[cluster]}
    fields.update(extra)
    return "  - {" + ", ".join(f"{k}: {v}" for k, v in fields.items()) + "}\n"


def plan(*targets: str, head: str = "") -> str:
    return f"version: 1\ndefaults: {{image: {NEW}, timeout: 300}}\n{head}\ntargets:\n" + "".join(
        targets
    )


def broken(cluster: str, index: int, **extra: Any) -> str:
    return target(cluster, index, image=BROKEN, timeout=BROKEN_TIMEOUT, **extra)


async def running(
    ecs: dict[str, ECSClient], cluster: str, index: int | str
) -> tuple[str, str, list[dict[str, Any]]]:
    """What a service runs: its task definition ARN, that revision's image, its deployments."""
    client = ecs[CLUSTERS[cluster]]
    [svc] = (await client.describe_services(cluster=cluster, services=[service_name(index)]))[
        "services"
    ]
    described = await client.describe_task_definition(taskDefinition=svc["taskDefinition"])
    image = described["taskDefinition"]["containerDefinitions"][0]["image"]
    return svc["taskDefinition"], image, [dict(d) for d in svc["deployments"]]


def original(cluster: str, index: int | str) -> str:
    region = CLUSTERS[cluster]
    return f"arn:aws:ecs:{region}:123456789012:task-definition/{service_name(index)}:1"


async def assert_runs(
    ecs: dict[str, ECSClient], cluster: str, index: int | str, image: str
) -> None:
    """The service settled (one COMPLETED deployment) on a revision running ``image``."""
    _, current, deployments = await running(ecs, cluster, index)
    assert current == image, f"{cluster}/{service_name(index)}"
    [only] = deployments
    assert only["rolloutState"] == "COMPLETED"


async def assert_untouched(ecs: dict[str, ECSClient], cluster: str, index: int) -> None:
    arn, _, deployments = await running(ecs, cluster, index)
    assert arn == original(cluster, index)
    assert len(deployments) == 1


def span(result: RunResult | TargetResult) -> tuple[float, float]:
    """When a run or a target started and finished, in simulated seconds."""
    assert result.started_at is not None
    assert result.finished_at is not None
    return result.started_at, result.finished_at


def statuses(result: RunResult) -> dict[str, str]:
    return {name: str(r.status) for name, r in result.results.items()}


async def test_a_fleet_across_clusters_and_regions_rolls_out_concurrently(
    sim: Simulator, ecs: dict[str, ECSClient]
) -> None:
    everything = [target(c, i) for c in CLUSTERS for i in range(PER_CLUSTER)]
    single, _ = await deploy(sim, plan(target("alpha", 0, image="example/app:1.5")))
    started, finished = span(single)
    one_deployment = finished - started

    result, events = await deploy(sim, plan(*everything, head="concurrency: {max_parallel: 50}"))

    assert result.verdict is RunVerdict.SUCCEEDED
    assert len(result.results) == 36
    assert result.statistics()["succeeded"] == 36
    started, finished = span(result)
    elapsed = finished - started
    # one after another would take 36 deployments; together they take about one (a
    # loaded machine stretches simulated time, hence the room)
    assert elapsed < 6 * one_deployment, (elapsed, one_deployment)
    for cluster in CLUSTERS:
        for index in range(PER_CLUSTER):
            await assert_runs(ecs, cluster, index, NEW)
    summaries = [e for e in events if e.event == "target_finished"]
    assert len(summaries) == 36


async def test_waves_run_in_order_with_bake(sim: Simulator, ecs: dict[str, ECSClient]) -> None:
    head = (
        "waves:\n"
        "  - {name: canary, targets: [alpha/svc00], bake: 40}\n"
        "  - {name: rest, targets: ['*']}"
    )
    text = plan(target("alpha", 0), target("beta", 1), target("gamma", 2), head=head)
    result, _ = await deploy(sim, text)
    assert result.verdict is RunVerdict.SUCCEEDED
    canary = result.results["alpha/svc00"]
    rest = [result.results["beta/svc01"], result.results["gamma/svc02"]]
    _, baked = span(canary)
    baked += 40
    for later in rest:
        assert baked <= span(later)[0] < baked + 10
    for cluster, index in (("alpha", 0), ("beta", 1), ("gamma", 2)):
        await assert_runs(ecs, cluster, index, NEW)


async def test_depends_on_orders_targets(sim: Simulator, ecs: dict[str, ECSClient]) -> None:
    text = plan(
        target("alpha", 2, depends_on="[alpha/svc01]"),
        target("alpha", 1, depends_on="[alpha/svc00]"),
        target("alpha", 0),
        target("beta", 0),
    )
    result, _ = await deploy(sim, text)
    assert result.verdict is RunVerdict.SUCCEEDED
    first, second, third = (result.results[f"alpha/svc0{i}"] for i in range(3))
    assert span(first)[1] <= span(second)[0]
    assert span(second)[1] <= span(third)[0]
    independent = result.results["beta/svc00"]
    assert span(independent)[0] < span(first)[1]
    for cluster, index in (("alpha", 0), ("alpha", 1), ("alpha", 2), ("beta", 0)):
        await assert_runs(ecs, cluster, index, NEW)


async def count_rollouts(ecs: dict[str, ECSClient], peaks: dict[str, int]) -> None:
    """Poll the simulator; keep the most services of each cluster rolling out at once."""
    names = [service_name(i) for i in range(4)]
    while True:
        for cluster in ("alpha", "beta"):
            described = await ecs[EU].describe_services(cluster=cluster, services=names)
            busy = sum(
                1
                for svc in described["services"]
                if len(svc["deployments"]) > 1
                or svc["deployments"][0]["rolloutState"] != "COMPLETED"
            )
            peaks[cluster] = max(peaks.get(cluster, 0), busy)
        await anyio.sleep(0.01)


async def test_per_cluster_and_global_limits_hold(
    sim: Simulator, ecs: dict[str, ECSClient]
) -> None:
    head = "concurrency: {max_parallel: 3, per_cluster: 2}"
    text = plan(*(target(c, i) for c in ("alpha", "beta") for i in range(4)), head=head)
    peaks: dict[str, int] = {}
    async with anyio.create_task_group() as group:
        group.start_soon(count_rollouts, ecs, peaks)
        result, _ = await deploy(sim, text)
        group.cancel_scope.cancel()
    assert result.verdict is RunVerdict.SUCCEEDED
    assert peaks["alpha"] <= 2
    assert peaks["beta"] <= 2
    assert peaks["alpha"] + peaks["beta"] >= 3  # the limits were reached, not just obeyed
    for cluster in ("alpha", "beta"):
        for index in range(4):
            await assert_runs(ecs, cluster, index, NEW)


async def test_halt_starts_nothing_new_and_lets_running_targets_finish(
    sim: Simulator, ecs: dict[str, ECSClient]
) -> None:
    # Two at a time: the slow one is in flight when svc00 fails; svc01 and svc02 wait.
    text = plan(
        broken("alpha", 0),
        target("alpha", SLOW),
        *(target("alpha", i) for i in range(1, 3)),
        head="concurrency: {max_parallel: 2}\nfailure_budget: 0\non_failure: halt",
    )
    result, events = await deploy(sim, text)
    assert result.verdict is RunVerdict.FAILED
    assert statuses(result) == {
        "alpha/svc00": "failed",
        "alpha/slow": "succeeded",
        "alpha/svc01": "skipped",
        "alpha/svc02": "skipped",
    }
    assert span(result.results["alpha/svc00"])[1] < span(result.results["alpha/slow"])[1]
    assert "failure budget of 0" in (result.results["alpha/svc01"].error or "")
    assert result.halted
    _, image, _ = await running(ecs, "alpha", 0)
    assert image == BROKEN  # no rollback asked for
    await assert_runs(ecs, "alpha", SLOW, NEW)
    await assert_untouched(ecs, "alpha", 1)
    await assert_untouched(ecs, "alpha", 2)
    skipped = [e for e in events if e.event == "target_finished" and e.facts["status"] == "skipped"]
    assert {e.target.name for e in skipped} == {"alpha/svc01", "alpha/svc02"}


async def test_continue_deploys_the_rest_and_fails_the_run(
    sim: Simulator, ecs: dict[str, ECSClient]
) -> None:
    text = plan(
        broken("alpha", 0),
        target("alpha", 1),
        target("gamma", 2),
        head="concurrency: {max_parallel: 1}\nfailure_budget: 0\non_failure: continue",
    )
    result, _ = await deploy(sim, text)
    assert result.verdict is RunVerdict.FAILED
    assert result.halted is None
    assert statuses(result) == {
        "alpha/svc00": "failed",
        "alpha/svc01": "succeeded",
        "gamma/svc02": "succeeded",
    }
    await assert_runs(ecs, "alpha", 1, NEW)
    await assert_runs(ecs, "gamma", 2, NEW)


async def test_failures_within_budget_do_not_halt(
    sim: Simulator, ecs: dict[str, ECSClient]
) -> None:
    text = plan(
        broken("alpha", 0, rollback="true"),
        target("alpha", 1),
        broken("alpha", 2),
        target("alpha", 3),
        head="concurrency: {max_parallel: 1}\nfailure_budget: 1\non_failure: halt",
    )
    result, _ = await deploy(sim, text)
    assert statuses(result) == {
        "alpha/svc00": "rolled_back",  # its own rollback; counts as a failure
        "alpha/svc01": "succeeded",
        "alpha/svc02": "failed",  # the second failure exceeds the budget of 1
        "alpha/svc03": "skipped",
    }
    assert result.failures == 2
    assert result.verdict is RunVerdict.FAILED
    await assert_untouched(ecs, "alpha", 0)
    await assert_runs(ecs, "alpha", 1, NEW)
    await assert_untouched(ecs, "alpha", 3)


async def test_a_halt_from_outside_starts_nothing_new_and_lets_in_flight_targets_finish(
    sim: Simulator, ecs: dict[str, ECSClient]
) -> None:
    """As a lost lock or a closing release window halts a run."""
    text = plan(*(target("alpha", i) for i in range(3)), head="concurrency: {max_parallel: 1}")
    events: list[TargetEvent] = []

    def halt_once_updated(event: TargetEvent) -> None:
        events.append(event)
        if event.event is EventName.SERVICE_UPDATED:
            run.halt("the release window closed at 18:00 Europe/Berlin")

    async with sim_pool(sim) as pool:
        run = FleetRun(parse_plan(text, environ={}), RunContext(pool, sim.clock, halt_once_updated))
        result = await run.run()
    assert statuses(result) == {
        "alpha/svc00": "succeeded",  # in flight when halted: it finished
        "alpha/svc01": "skipped",
        "alpha/svc02": "skipped",
    }
    assert result.results["alpha/svc01"].error == "the release window closed at 18:00 Europe/Berlin"
    assert result.verdict is RunVerdict.FAILED
    await assert_runs(ecs, "alpha", 0, NEW)
    await assert_untouched(ecs, "alpha", 1)


async def test_allow_failure_never_counts(sim: Simulator, ecs: dict[str, ECSClient]) -> None:
    text = plan(
        broken("alpha", 0, allow_failure="true"),
        target("alpha", 1),
        target("beta", 1),
        head="concurrency: {max_parallel: 1}\nfailure_budget: 0\non_failure: halt",
    )
    result, _ = await deploy(sim, text)
    assert result.verdict is RunVerdict.SUCCEEDED
    assert result.failures == 0
    assert statuses(result) == {
        "alpha/svc00": "failed",
        "alpha/svc01": "succeeded",
        "beta/svc01": "succeeded",
    }
    await assert_runs(ecs, "alpha", 1, NEW)
    await assert_runs(ecs, "beta", 1, NEW)


async def test_dependants_of_a_failed_target_are_skipped(
    sim: Simulator, ecs: dict[str, ECSClient]
) -> None:
    text = plan(
        broken("alpha", 0),
        target("alpha", 1, depends_on="[alpha/svc00]"),
        target("alpha", 2, depends_on="[alpha/svc01]"),
        target("beta", 0),
        head="failure_budget: 5",
    )
    result, _ = await deploy(sim, text)
    assert statuses(result) == {
        "alpha/svc00": "failed",
        "alpha/svc01": "skipped",
        "alpha/svc02": "skipped",
        "beta/svc00": "succeeded",
    }
    assert result.results["alpha/svc01"].error == "dependency alpha/svc00 failed"
    assert result.results["alpha/svc02"].error == "dependency alpha/svc01 was skipped"
    assert result.verdict is RunVerdict.FAILED
    await assert_untouched(ecs, "alpha", 1)
    await assert_untouched(ecs, "alpha", 2)
    await assert_runs(ecs, "beta", 0, NEW)


async def test_rollback_all_restores_exact_revisions_newest_first(
    sim: Simulator, ecs: dict[str, ECSClient]
) -> None:
    text = plan(
        target("alpha", 0),
        target("gamma", 1, desired_count=3),  # the rollback puts the count back to 1 too
        broken("beta", 2),
        target("beta", 3),
        head="concurrency: {max_parallel: 1}\nfailure_budget: 0\non_failure: rollback_all",
    )
    result, events = await deploy(sim, text)
    assert result.verdict is RunVerdict.FAILED
    assert statuses(result) == {
        "alpha/svc00": "rolled_back",
        "gamma/svc01": "rolled_back",
        "beta/svc02": "failed",
        "beta/svc03": "skipped",
    }
    rolled = [e.target.name for e in events if e.event == "rolled_back"]
    assert rolled == ["gamma/svc01", "alpha/svc00"]
    for cluster, index in (("alpha", 0), ("gamma", 1)):
        arn, image, [only] = await running(ecs, cluster, index)
        assert arn == original(cluster, index)
        assert image == "example/app:1"
        assert (only["rolloutState"], only["runningCount"]) == ("COMPLETED", 1)
    await assert_untouched(ecs, "beta", 3)


async def rollback_span(ecs: dict[str, ECSClient], name: str) -> tuple[float, float]:
    """When the deployment the service of target ``name`` ended on was created and
    completed, on the simulator's clock (after a rollback: when it began and ended)."""
    cluster, service = name.split("/")
    client = ecs[CLUSTERS[cluster]]
    [svc] = (await client.describe_services(cluster=cluster, services=[service]))["services"]
    [deployment] = svc["deployments"]
    completed = next(
        event["createdAt"]
        for event in svc["events"]
        if f"(deployment {deployment['id']}) deployment completed" in event["message"]
    )
    return deployment["createdAt"].timestamp(), completed.timestamp()


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


async def test_rollback_all_runs_a_wave_at_a_time_in_parallel_within_the_limits(
    sim: Simulator, ecs: dict[str, ECSClient]
) -> None:
    text = plan(
        target("alpha", 0),
        target("beta", 0),
        target("alpha", 1),
        target("alpha", 2),
        target("gamma", 0),
        broken("beta", 2),
        broken("gamma", 2),
        head="concurrency: {max_parallel: 4, per_cluster: 1}\nfailure_budget: 1\n"
        "on_failure: rollback_all\nwaves:\n"
        "  - {name: first, targets: [alpha/svc00, beta/svc00]}\n"
        "  - {name: second, targets: [alpha/svc01, alpha/svc02, gamma/svc00]}\n"
        "  - {name: last, targets: [beta/svc02, gamma/svc02]}",
    )
    result, events = await deploy(sim, text)
    first, second = ["alpha/svc00", "beta/svc00"], ["alpha/svc01", "alpha/svc02", "gamma/svc00"]
    assert statuses(result) == {
        **dict.fromkeys(first + second, "rolled_back"),
        "beta/svc02": "failed",
        "gamma/svc02": "failed",
    }
    spans = {name: await rollback_span(ecs, name) for name in first + second}
    # clusters roll back side by side; one cluster's rollbacks wait for each other
    assert overlap(spans["alpha/svc00"], spans["beta/svc00"])
    assert overlap(spans["gamma/svc00"], spans["alpha/svc01"]) or overlap(
        spans["gamma/svc00"], spans["alpha/svc02"]
    )
    assert not overlap(spans["alpha/svc01"], spans["alpha/svc02"])
    # the newest wave is back before the one before it starts going back
    assert max(spans[name][1] for name in second) <= min(spans[name][0] for name in first)
    halted = "the run halted: 2 failed target(s) exceed the failure budget of 1"
    for name in first + second:
        assert result.results[name].error == f"rolled back by rollback_all: {halted}"
    # the two that failed count against the budget; the five rolled back do not
    assert (result.failures, result.policy_rollbacks) == (2, 5)
    timeline = Timeline()
    for event in events:
        timeline(event)
    header = render_html_report(result, timeline, plan_path="plan.yaml").split("</header>")[0]
    assert "<dt>Failures</dt><dd>2 (budget 1)</dd>" in header
    assert "<dt>Rolled back by policy</dt><dd>5</dd>" in header


async def test_rollback_all_puts_a_dependant_back_before_what_it_depends_on(
    sim: Simulator, ecs: dict[str, ECSClient]
) -> None:
    text = plan(
        target("alpha", 0),
        target("beta", 0, depends_on="[alpha/svc00]"),
        target("gamma", 0),
        broken("gamma", 1),
        head="failure_budget: 0\non_failure: rollback_all",
    )
    result, _ = await deploy(sim, text)
    assert statuses(result) == {
        "alpha/svc00": "rolled_back",
        "beta/svc00": "rolled_back",
        "gamma/svc00": "rolled_back",
        "gamma/svc01": "failed",
    }
    spans = {
        name: await rollback_span(ecs, name) for name in statuses(result) if name != "gamma/svc01"
    }
    assert spans["beta/svc00"][1] <= spans["alpha/svc00"][0]
    assert overlap(spans["beta/svc00"], spans["gamma/svc00"])


async def test_cancellation_records_every_target(sim: Simulator, ecs: dict[str, ECSClient]) -> None:
    text = plan(
        target("alpha", 0),
        target("alpha", 1),
        target("alpha", 2, depends_on="[alpha/svc00]"),
        head="concurrency: {max_parallel: 2}",
    )
    both_under_way = anyio.Event()

    class Watch(list[TargetEvent]):
        def append(self, event: TargetEvent) -> None:
            super().append(event)
            if sum(e.event == "service_updated" for e in self) == 2:
                both_under_way.set()

    async with context(sim, Watch()) as ctx:
        run = FleetRun(parse_plan(text, environ={}), ctx)
        async with anyio.create_task_group() as group:
            group.start_soon(run.run)
            # cancel once both rollouts are under way, however loaded the machine is
            with anyio.fail_after(30):
                await both_under_way.wait()
            group.cancel_scope.cancel()
    result = run.result
    assert result.verdict is RunVerdict.INTERRUPTED
    assert statuses(result) == dict.fromkeys(
        ("alpha/svc00", "alpha/svc01", "alpha/svc02"), "interrupted"
    )
    first = result.results["alpha/svc00"]
    assert first.old_task_definition == original("alpha", 0)
    assert first.deployment_id is not None
    assert result.results["alpha/svc02"].started_at is None
    _, image, _ = await running(ecs, "alpha", 0)
    assert image == NEW  # the update went out; the wait was interrupted
    await assert_untouched(ecs, "alpha", 2)


async def test_a_service_that_regresses_during_the_bake_is_rolled_back_and_halts_the_run(
    sim: Simulator, ecs: dict[str, ECSClient]
) -> None:
    text = plan(
        target("alpha", 0, image="example/app:crashy", rollback="true"),
        target("alpha", 1),
        head="waves:\n  - {name: canary, targets: [alpha/svc00], bake: 120}\n"
        "  - {name: rest, targets: ['*']}",
    )
    result, events = await deploy(sim, text)
    assert result.verdict is RunVerdict.FAILED
    assert statuses(result) == {"alpha/svc00": "rolled_back", "alpha/svc01": "skipped"}
    canary = result.results["alpha/svc00"]
    assert canary.error is not None
    # A crash loop shows as tasks replaced or as too few running, whichever a poll sees
    # first; which one depends on where the polls fall, not on the deployer.
    assert canary.error.startswith("regressed during the 120 s bake: ")
    symptom = canary.error.removeprefix("regressed during the 120 s bake: ")
    assert re.match(r"tasks were replaced|0/1 tasks running", symptom), symptom
    assert [e.event for e in events if e.step == "bake"] == ["bake_regressed"]
    # the canary is back on exactly its previous revision; the rest never moved
    arn, image, deployments = await running(ecs, "alpha", 0)
    assert (arn, image) == (original("alpha", 0), "example/app:1")
    assert [d["rolloutState"] for d in deployments] == ["COMPLETED"]
    await assert_untouched(ecs, "alpha", 1)


async def test_a_healthy_wave_bakes_and_the_run_goes_on(
    sim: Simulator, ecs: dict[str, ECSClient]
) -> None:
    text = plan(
        target("alpha", 0),
        target("alpha", 1),
        head="waves:\n  - {name: canary, targets: [alpha/svc00], bake: 60}\n"
        "  - {name: rest, targets: ['*']}",
    )
    result, _ = await deploy(sim, text)
    assert result.verdict is RunVerdict.SUCCEEDED
    canary_done = span(result.results["alpha/svc00"])[1]
    assert span(result.results["alpha/svc01"])[0] >= canary_done + 60
    await assert_runs(ecs, "alpha", 1, NEW)
