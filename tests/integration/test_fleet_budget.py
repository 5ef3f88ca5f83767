"""Spending the ECS API budget well: batched polls, shared registrations, unchanged targets,
client-side buckets that keep a throttled account free of throttling errors.

Every claim is checked in the simulator's own counters, not in the engine's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from ecs_deploy_many.aws.session import ClientPool
from ecs_deploy_many.core.ratelimit import BucketSpec
from ecs_deploy_many.core.scope import AwsScope
from ecs_deploy_many.deploy.engine import RunResult, RunVerdict, run_plan
from ecs_deploy_many.deploy.pipeline import RunContext
from ecs_deploy_many.plan import parse_plan
from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import FAST_TIMINGS, ecs_client, sim_pool

pytestmark = pytest.mark.anyio

REGION = "eu-west-1"
SERVICES = 30


def fleet(*, shared_family: bool) -> Fleet:
    """SERVICES services in one cluster, each on its own family or all on one."""
    families = ["shared"] if shared_family else [f"svc{i:02d}" for i in range(SERVICES)]
    container = {"name": "app", "image": "example/app:1", "memory": 128}
    return Fleet.model_validate(
        {
            "region": REGION,
            "timings": FAST_TIMINGS,
            "task_definitions": {f: {"containerDefinitions": [container]} for f in families},
            "clusters": [
                {
                    "name": "prod",
                    "services": [
                        {
                            "name": f"svc{i:02d}",
                            "task_definition": families[0] if shared_family else families[i],
                        }
                        for i in range(SERVICES)
                    ],
                }
            ],
        }
    )


def plan_text(*extra_target_keys: str, head: str = "") -> str:
    keys = "".join(f", {key}" for key in extra_target_keys)
    targets = "\n".join(
        f"  - {{cluster: prod, service: svc{i:02d}, image: 'example/app:2'{keys}}}"
        for i in range(SERVICES)
    )
    return (
        f"version: 1\n{head}\ndefaults: {{region: {REGION}, timeout: 600}}\n"
        f"concurrency: {{max_parallel: {SERVICES}}}\ntargets:\n{targets}\n"
    )


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")


@asynccontextmanager
async def running(sim: Simulator, text: str) -> AsyncIterator[tuple[RunResult, ClientPool]]:
    plan = parse_plan(text, environ={})
    async with sim_pool(sim, bucket_specs=plan.rate_limits) as pool:
        yield await run_plan(plan, RunContext(pool, sim.clock, lambda event: None)), pool


async def task_definitions_in_use(sim: Simulator) -> set[str]:
    async with ecs_client(sim, REGION) as ecs:
        names = [f"svc{i:02d}" for i in range(SERVICES)]
        arns: set[str] = set()
        for start in range(0, SERVICES, 10):
            described = await ecs.describe_services(
                cluster="prod", services=names[start : start + 10]
            )
            arns.update(s["taskDefinition"] for s in described["services"])
        return arns


async def test_polls_are_batched_ten_services_a_call() -> None:
    async with Simulator(fleet(shared_family=False), speed=40, listen=False) as sim:
        async with running(sim, plan_text()) as (result, pool):
            rounds = (await pool.watcher(AwsScope(region=REGION), "prod")).rounds
        assert result.verdict is RunVerdict.SUCCEEDED
        calls = sim.stats().calls["DescribeServices"]
        # one watcher for the cluster, at most ceil(30 / 10) calls a round; one call per
        # target per round would have been 30
        assert rounds >= 5
        assert calls <= 3 * rounds
        assert calls < SERVICES * 2


async def test_identical_definitions_are_registered_once() -> None:
    async with Simulator(fleet(shared_family=True), speed=40, listen=False) as sim:
        async with running(sim, plan_text()) as (result, _):
            pass
        assert result.verdict is RunVerdict.SUCCEEDED
        stats = sim.stats()
        assert stats.calls["RegisterTaskDefinition"] == 1
        assert stats.calls["UpdateService"] == SERVICES
        assert stats.calls["DescribeTaskDefinition"] == 1  # a revision is described once
        assert await task_definitions_in_use(sim) == {
            f"arn:aws:ecs:{REGION}:123456789012:task-definition/shared:2"
        }


async def test_a_second_run_finds_everything_unchanged() -> None:
    async with Simulator(fleet(shared_family=False), speed=40, listen=False) as sim:
        async with running(sim, plan_text()) as (first, _):
            pass
        assert first.statistics()["succeeded"] == SERVICES
        before = await task_definitions_in_use(sim)
        sim.reset_stats()
        async with running(sim, plan_text()) as (second, _):
            pass
        assert second.verdict is RunVerdict.SUCCEEDED
        assert second.statistics()["unchanged"] == SERVICES
        calls = sim.stats().calls
        assert "RegisterTaskDefinition" not in calls
        assert "UpdateService" not in calls
        assert await task_definitions_in_use(sim) == before


async def test_force_new_deployment_redeploys_an_unchanged_service() -> None:
    async with Simulator(fleet(shared_family=True), speed=40, listen=False) as sim:
        async with running(sim, plan_text()):
            pass
        sim.reset_stats()
        async with running(sim, plan_text("force_new_deployment: true")) as (second, _):
            pass
        assert second.statistics()["succeeded"] == SERVICES
        assert sim.stats().calls["UpdateService"] == SERVICES


@pytest.mark.parametrize("share", ["all of it", "half of it"])
async def test_client_buckets_keep_a_throttled_account_clean(share: str) -> None:
    """With the account's buckets known, nothing is throttled; when another caller spends
    half of them, throttled calls are retried and no target fails."""
    tight = {
        "task_definition_modify": BucketSpec(burst=6, refill_per_s=1),
        "service_modify": BucketSpec(burst=6, refill_per_s=2),
        "service_read": BucketSpec(burst=8, refill_per_s=4),
        "task_definition_read": BucketSpec(burst=8, refill_per_s=4),
    }
    ours = (
        tight
        if share == "all of it"
        else {
            name: BucketSpec(spec.burst * 2, spec.refill_per_s * 2) for name, spec in tight.items()
        }
    )
    head = "rate_limits:\n" + "".join(
        f"  {name}: {{burst: {spec.burst:g}, refill_per_s: {spec.refill_per_s:g}}}\n"
        for name, spec in ours.items()
    )
    # On virtual time a busy machine cannot bunch the calls: buckets refill only as the
    # engine's own waits let simulated time pass.
    async with Simulator(
        fleet(shared_family=False), speed=40, throttling="aws", buckets=tight, listen=False
    ) as sim:
        async with running(sim, plan_text(head=head)) as (result, _):
            pass
        assert result.statistics()["succeeded"] == SERVICES
        stats = sim.stats()
        assert stats.calls["RegisterTaskDefinition"] >= SERVICES
        if share == "all of it":
            assert stats.total_throttled == 0
        else:
            assert stats.total_throttled > 0  # the engine met throttling and rode it out


async def test_cleanups_spare_every_revision_the_run_uses_and_deregister_once() -> None:
    """Two services of one family on different revisions, cleaned up side by side."""
    container = {"name": "app", "image": "example/app:1", "memory": 128}
    revisions = [{"containerDefinitions": [{**container, "cpu": cpu}]} for cpu in (1, 2, 3)]
    fleet = Fleet.model_validate(
        {
            "region": REGION,
            "timings": FAST_TIMINGS,
            "task_definitions": {"shared": {"revisions": revisions}},
            "clusters": [
                {
                    "name": "prod",
                    "services": [
                        {"name": "svc00", "task_definition": "shared:1"},
                        {"name": "svc01", "task_definition": "shared:1"},
                        {"name": "svc02", "task_definition": "shared:2"},
                    ],
                }
            ],
        }
    )
    text = (
        f"version: 1\ndefaults: {{region: {REGION}, timeout: 600, max_definitions: 1,"
        " use_latest_task_def: true}\ntargets:\n"
        + "".join(
            f"  - {{cluster: prod, service: svc0{i}, image: 'example/app:2'}}\n" for i in range(3)
        )
    )
    async with Simulator(fleet, speed=40, listen=False) as sim:
        async with running(sim, text) as (result, _):
            pass
        assert result.verdict is RunVerdict.SUCCEEDED
        stats = sim.stats()
        assert stats.calls["RegisterTaskDefinition"] == 1  # all three render shared:3 + image
        assert stats.calls["DeregisterTaskDefinition"] == 1  # shared:3, once
        async with ecs_client(sim, REGION) as ecs:
            active = (await ecs.list_task_definitions(familyPrefix="shared"))["taskDefinitionArns"]
    arn = f"arn:aws:ecs:{REGION}:123456789012:task-definition/shared"
    # the new revision, and both revisions a rollback could return to
    assert sorted(active) == [f"{arn}:1", f"{arn}:2", f"{arn}:4"]
