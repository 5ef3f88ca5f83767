"""Selector targets and ``init``'s reads: services found on the simulator, in batches."""

from __future__ import annotations

import math
from typing import Any

import pytest

from ecs_deploy_many.core.scope import AwsScope
from ecs_deploy_many.core.target import Selector
from ecs_deploy_many.deploy.discover import (
    FoundService,
    discover_selectors,
    find_services,
    matching,
)
from ecs_deploy_many.plan import parse_plan
from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import FAST_TIMINGS, REGION, sim_pool

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]

AGENT = "datadog/agent:7.50"
# cluster -> service -> its containers' images. Of these, the services running the
# repository datadog/agent (Docker Hub's) in a prod-* cluster are prod-eu/api,
# prod-us/api (as docker.io/datadog/agent) and prod-ap/agent; not prod-ap/mirrored, whose
# agent comes from a mirror, nor those running datadog/agent-extra.
SERVICES: dict[str, dict[str, list[str]]] = {
    "prod-eu": {
        "api": ["example/api:1", AGENT],
        "web": ["example/web:1"],
        "batch": ["example/batch:1", "datadog/agent-extra:7.50"],
    },
    "prod-us": {
        "api": ["example/api:1", "docker.io/datadog/agent:7.50"],
        "shop": ["example/shop:1", "datadog/agent-extra:7.50"],
    },
    "prod-ap": {
        "agent": [AGENT],
        "web": ["example/web:1"],
        "mirrored": ["example/app:1", "mirror.example/datadog/agent:7.50"],
    },
    "staging": {"api": ["example/api:1", AGENT]},
}
SELECTED = {("prod-ap", "agent"), ("prod-eu", "api"), ("prod-us", "api")}


def fleet_of(services: dict[str, dict[str, list[str]]]) -> Fleet:
    """Each service on a family of its own, ``<cluster>-<service>``, one container per
    image (named after the repository's last component)."""
    families: dict[str, Any] = {}
    clusters = []
    for cluster, named in services.items():
        specs = []
        for service, images in named.items():
            family = f"{cluster}-{service}"
            families[family] = {
                "containerDefinitions": [
                    {"name": image.split(":")[0].rsplit("/", 1)[-1], "image": image, "memory": 128}
                    for image in images
                ]
            }
            specs.append({"name": service, "task_definition": family, "desired_count": 1})
        clusters.append({"name": cluster, "services": specs})
    return Fleet.model_validate(
        {
            "region": REGION,
            "timings": FAST_TIMINGS,
            "task_definitions": families,
            "clusters": clusters,
        }
    )


def selector_plan(select: str, extra: str = "") -> str:
    return f"""\
version: 1
defaults: {{region: {REGION}}}
targets:
  - name: datadog
    select: {select}
    image: datadog/agent:7.60
{extra}"""


async def test_selector_over_three_clusters_matches_exactly_the_services_running_it() -> None:
    plan = parse_plan(selector_plan('{clusters: ["prod-*"], runs: datadog/agent}'), environ={})
    async with Simulator(fleet_of(SERVICES), listen=False) as sim, sim_pool(sim) as pool:
        expansion = await discover_selectors(plan, pool, max_parallel=10)
    found = {(t.cluster, t.service) for t in expansion.plan.targets}
    assert found == SELECTED
    names = [t.name for t in expansion.plan.targets]
    assert names == ["datadog/prod-ap/agent", "datadog/prod-eu/api", "datadog/prod-us/api"]
    assert all(t.image == "datadog/agent:7.60" and not t.unexpanded for t in expansion.plan.targets)
    assert expansion.plan.waves[0].targets == tuple(names)


async def test_selector_reads_are_batched_per_cluster_and_per_revision() -> None:
    """60 services in each of 3 clusters, half running the agent: ListClusters once,
    ListServices in pages of 100, DescribeServices ten at a time, each revision once."""
    services = {
        f"prod-{region}": {
            f"svc{i:02}": ["example/app:1", *([AGENT] if i % 2 else [])] for i in range(60)
        }
        for region in ("eu", "us", "ap")
    }
    plan = parse_plan(selector_plan('{clusters: ["prod-*"], runs: datadog/agent}'), environ={})
    async with Simulator(fleet_of(services), listen=False) as sim, sim_pool(sim) as pool:
        sim.reset_stats()
        expansion = await discover_selectors(plan, pool, max_parallel=10)
        calls = dict(sim.stats().calls)
    assert len(expansion.plan.targets) == 90
    assert calls == {
        "ListClusters": 1,
        "ListServices": 3,
        "DescribeServices": 3 * math.ceil(60 / 10),
        "DescribeTaskDefinition": 180,
    }


async def test_a_revision_shared_by_services_is_described_once() -> None:
    fleet = fleet_of({"prod": {"api": [AGENT]}})
    shared = fleet.model_copy(
        update={
            "clusters": [
                fleet.clusters[0].model_copy(
                    update={
                        "services": [
                            fleet.clusters[0].services[0].model_copy(update={"name": f"s{i}"})
                            for i in range(25)
                        ]
                    }
                )
            ]
        }
    )
    async with Simulator(shared, listen=False) as sim, sim_pool(sim) as pool:
        gateway = await pool.gateway(AwsScope(region=REGION))
        sim.reset_stats()
        found = await find_services(gateway, ["prod"])
        calls = dict(sim.stats().calls)
    assert len(found) == 25
    # An exact cluster name needs no ListClusters.
    assert calls == {"ListServices": 1, "DescribeServices": 3, "DescribeTaskDefinition": 1}


@pytest.mark.parametrize(
    ("runs", "image", "selected"),
    [
        ("datadog/agent", "datadog/agent:7.50", True),
        ("datadog/agent", "docker.io/datadog/agent:7.50", True),
        ("datadog/agent", "mirror.example/datadog/agent:7.50", False),
        ("mirror.example/datadog/agent", "mirror.example/datadog/agent:7.50", True),
        ("mirror.example/datadog/agent", "datadog/agent:7.50", False),
        ("datadog/agent", "registry-1.docker.io/datadog/agent:7.50", True),
        ("datadog/agent", "datadog/agent-extra:7.50", False),
        ("datadog/agent", "datadog/agent@sha256:" + "a" * 64, True),
        ("datadog/agent", "other/datadog/agent:1", False),
        ("nginx", "library/nginx:1", True),
        ("nginx", "docker.io/library/nginx:1", True),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/app", "app:1", False),
    ],
)
def test_which_images_a_repository_selects(runs: str, image: str, selected: bool) -> None:
    service = FoundService("prod", "api", "arn", (("c", image),))
    assert bool(matching(Selector("s", ("prod",), (runs,)), [service])) is selected
