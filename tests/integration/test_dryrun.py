"""Dry runs against the simulator: what a plan would change, and proof that nothing changed.

Previews run in-process with the real client over HTTP; the simulator's counters show
which operations were called, and its state shows nothing was registered or updated.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ecs_deploy_many.deploy.dryrun import TargetPreview, format_preview, preview_plan
from ecs_deploy_many.deploy.taskdef import ContainerChange
from ecs_deploy_many.plan import parse_plan
from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import REGION, ecs_client, sim_pool

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]

SECRET = "hunter2-db-password"
NEW_SECRET = "correct-horse-battery"
ACCOUNT_ARN = f"arn:aws:ecs:{REGION}:123456789012:task-definition"


def container(name: str, image: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": image, "memory": 128, **extra}


FLEET = Fleet.model_validate(
    {
        "region": REGION,
        "task_definitions": {
            "api": {
                "containerDefinitions": [
                    container(
                        "app",
                        "repo/app:1.0",
                        environment=[{"name": "DB_PASSWORD", "value": SECRET}],
                    ),
                    container("proxy", "envoyproxy/envoy:v1.30"),
                ],
                "tags": [{"key": "team", "value": "payments"}],
            },
            "checkout": {
                "cpu": "256",
                "memory": "512",
                "containerDefinitions": [
                    container(
                        "checkout",
                        "repo/checkout:1",
                        environment=[{"name": "DB_PASSWORD", "value": SECRET}],
                    )
                ],
            },
            "worker": {
                "revisions": [
                    {"containerDefinitions": [container("w", "repo/worker:1")]},
                    {"containerDefinitions": [container("w", "repo/worker:1", cpu=128)]},
                ]
            },
            "search": {"containerDefinitions": [container("s", "repo/search:3")]},
            "cart": {"containerDefinitions": [container("c", "repo/cart:1")]},
            "migrate": {"containerDefinitions": [container("m", "repo/migrate:1")]},
        },
        "clusters": [
            {
                "name": "web",
                "services": [
                    {"name": "api", "task_definition": "api"},
                    {"name": "checkout", "task_definition": "checkout"},
                    {"name": "worker", "task_definition": "worker:1"},
                ],
            },
            {
                "name": "shop",
                "services": [
                    {"name": "search", "task_definition": "search"},
                    {"name": "cart", "task_definition": "cart"},
                ],
            },
        ],
    }
)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(FLEET, speed=100, strict_output=True, listen=False) as running:
        yield running


@pytest.fixture
async def ecs(sim: Simulator) -> AsyncIterator[ECSClient]:
    async with ecs_client(sim) as client:
        yield client


async def preview(sim: Simulator, text: str, base_dir: Path | None = None) -> list[TargetPreview]:
    plan = parse_plan(text, environ={}, base_dir=base_dir)
    async with sim_pool(sim) as pool:
        return await preview_plan(plan, pool, max_parallel=3)


def arn(family_revision: str) -> str:
    return f"{ACCOUNT_ARN}/{family_revision}"


async def fleet_state(ecs: ECSClient) -> tuple[list[str], dict[str, list[dict[str, Any]]]]:
    """Every registered revision, and every service's deployments."""
    revisions = (await ecs.list_task_definitions())["taskDefinitionArns"]
    deployments: dict[str, list[dict[str, Any]]] = {}
    for cluster, names in (("web", ["api", "checkout", "worker"]), ("shop", ["search", "cart"])):
        described = await ecs.describe_services(cluster=cluster, services=names)
        for svc in described["services"]:
            deployments[f"{cluster}/{svc['serviceName']}"] = [dict(d) for d in svc["deployments"]]
    return revisions, deployments


PLAN = """\
version: 1
defaults: {region: eu-west-1}
targets:
  - {cluster: web, service: api, image: repo/app:1.1}
  - cluster: web
    service: checkout
    task_definition_file: checkout.json
    containers: {checkout: repo/checkout:2}
  - {cluster: web, service: worker, image: repo/worker:2, use_latest_task_def: true}
  - {cluster: shop, service: search, image: repo/search:3}
  - {cluster: shop, service: missing, image: repo/search:4}
  - {cluster: shop, service: cart, image: other/thing:1}
  - {cluster: nowhere, service: api, image: repo/app:1.1}
  - {task_definition: migrate, image: repo/migrate:2}
"""


async def test_a_plan_preview_reads_only_and_shows_what_would_change(
    sim: Simulator, ecs: ECSClient, tmp_path: Path
) -> None:
    described = (await ecs.describe_task_definition(taskDefinition="checkout"))["taskDefinition"]
    from_file: dict[str, Any] = {**described, "cpu": "512"}
    from_file["containerDefinitions"][0]["environment"] = [
        {"name": "DB_PASSWORD", "value": NEW_SECRET},
        {"name": "LOG_LEVEL", "value": "debug"},
    ]
    (tmp_path / "checkout.json").write_text(json.dumps({"taskDefinition": from_file}, default=str))
    before = await fleet_state(ecs)
    sim.reset_stats()

    previews = await preview(sim, PLAN, tmp_path)

    calls = sim.stats().calls
    assert set(calls) == {"DescribeServices", "DescribeTaskDefinition"}, calls
    assert await fleet_state(ecs) == before  # no revision registered, no service updated

    by_name = {p.name: p for p in previews}
    assert [p.name for p in previews] == [
        "web/api",
        "web/checkout",
        "web/worker",
        "shop/search",
        "shop/missing",
        "shop/cart",
        "nowhere/api",
        "migrate",
    ]

    api = by_name["web/api"]
    assert (api.kind, api.cluster, api.service, api.region) == ("service", "web", "api", REGION)
    assert api.current_task_definition == arn("api:1")
    assert api.changes == (ContainerChange("app", "repo/app:1.0", "repo/app:1.1"),)
    assert api.differences == (
        "container app: image repo/app:1.0 -> repo/app:1.1",
        "tags team: payments -> (none)",  # the new revision would not copy them
    )
    assert not api.unchanged
    assert api.error is None

    checkout = by_name["web/checkout"]
    assert checkout.changes == (ContainerChange("checkout", "repo/checkout:1", "repo/checkout:2"),)
    assert checkout.differences == (
        "container checkout: image repo/checkout:1 -> repo/checkout:2",
        "container checkout: environment DB_PASSWORD changed",
        "container checkout: environment LOG_LEVEL added",
        "cpu: 256 -> 512",
    )

    # The base is the family's newest (worker:2, cpu 128); the service runs worker:1.
    worker = by_name["web/worker"]
    assert worker.current_task_definition == arn("worker:1")
    assert worker.differences == (
        "container w: image repo/worker:1 -> repo/worker:2",
        "container w: cpu (none) -> 128",
    )

    search = by_name["shop/search"]
    assert (search.unchanged, search.changes, search.differences) == (True, (), ())
    assert search.current_task_definition == arn("search:1")

    assert by_name["shop/missing"].error == "service missing not found in cluster shop"
    cart = by_name["shop/cart"]
    assert cart.error is not None
    assert "no container of task definition 'cart' runs repository" in cart.error
    assert cart.current_task_definition == arn("cart:1")
    assert "ClusterNotFoundException" in (by_name["nowhere/api"].error or "")

    migrate = by_name["migrate"]
    assert (migrate.kind, migrate.task_definition) == ("task_definition", "migrate")
    assert migrate.current_task_definition == arn("migrate:1")
    assert migrate.differences == ("container m: image repo/migrate:1 -> repo/migrate:2",)

    text = format_preview(previews)
    lines = text.splitlines()
    assert lines[:3] == [
        "web/api  (cluster web, service api, eu-west-1)",
        f"  task definition {arn('api:1')} -> new revision",
        "  container app: image repo/app:1.0 -> repo/app:1.1",
    ]
    assert "  cpu: 256 -> 512" in lines
    assert "shop/search  unchanged" in lines
    assert "shop/missing  error: service missing not found in cluster shop" in lines
    assert "migrate  (task definition migrate, eu-west-1)" in lines
    for shown in (text, repr(previews)):
        assert SECRET not in shown
        assert NEW_SECRET not in shown


async def test_forced_deployment_and_file_for_a_new_family(
    sim: Simulator, ecs: ECSClient, tmp_path: Path
) -> None:
    (tmp_path / "report.json").write_text(
        json.dumps({"family": "report", "containerDefinitions": [container("r", "repo/r:1")]})
    )
    text = """\
version: 1
defaults: {region: eu-west-1}
targets:
  - {cluster: shop, service: search, force_new_deployment: true}
  - {cluster: shop, service: cart, image: repo/cart:1, force_new_deployment: true}
  - {task_definition_file: report.json, image: repo/r:2}
"""
    sim.reset_stats()
    search, cart, report = await preview(sim, text, tmp_path)

    assert set(sim.stats().calls) == {"DescribeServices", "DescribeTaskDefinition"}
    assert arn("report:1") not in (await ecs.list_task_definitions())["taskDefinitionArns"]
    assert search.unchanged
    assert cart.unchanged
    assert report.error is None
    assert report.current_task_definition is None
    assert report.changes == (ContainerChange("r", "repo/r:1", "repo/r:2"),)
    assert format_preview([search, cart, report]).splitlines() == [
        "shop/search  (cluster shop, service search, eu-west-1)",
        f"  task definition {arn('search:1')} unchanged, new deployment forced",
        "shop/cart  (cluster shop, service cart, eu-west-1)",
        f"  task definition {arn('cart:1')} unchanged, new deployment forced",
        "report  (task definition report, eu-west-1)",
        "  task definition (new family) -> new revision",
    ]


def vault(marker: str, *, environment_value: Any = None) -> dict[str, Any]:
    """A revision holding ``marker`` (suffixed) in every place a definition holds a secret."""
    return {
        "containerDefinitions": [
            container(
                "app",
                "repo/app:1.0",
                secrets=[{"name": "DB_URL", "valueFrom": f"{marker}-reference"}],
                environment=[
                    {"name": "DB_PASSWORD", "value": environment_value or f"{marker}-env"},
                    {"name": "KEY", "value": "value"},
                ],
                repositoryCredentials={"credentialsParameter": f"{marker}-registry"},
                logConfiguration={
                    "logDriver": "awsfirelens",
                    "options": {"Name": "datadog", "apikey": f"{marker}-apikey"},
                    "secretOptions": [{"name": "password", "valueFrom": f"{marker}-log"}],
                },
                dockerLabels={"com.example.token": f"{marker}-label"},
            ),
            container(
                "router",
                "fluent/fluent-bit:3",
                firelensConfiguration={"type": "fluentbit", "options": {"key": f"{marker}-fl"}},
            ),
        ],
        "proxyConfiguration": {
            "type": "APPMESH",
            "containerName": "app",
            "properties": [{"name": "AuthToken", "value": f"{marker}-proxy"}],
        },
        "tags": [{"key": "api_token", "value": f"{marker}-tag"}],
    }


async def test_a_preview_shows_which_secrets_change_and_none_of_them(tmp_path: Path) -> None:
    # The revision running holds old secrets, one wrongly typed; the file holds new ones.
    running = vault("mk-old", environment_value=["mk-old-typed"])
    fleet = Fleet.model_validate(
        {
            "region": REGION,
            "task_definitions": {"vault": running},
            "clusters": [
                {"name": "secure", "services": [{"name": "vault", "task_definition": "vault"}]}
            ],
        }
    )
    (tmp_path / "vault.json").write_text(json.dumps({"family": "vault", **vault("mk-new")}))
    plan = """\
version: 1
defaults: {region: eu-west-1}
targets:
  - {cluster: secure, service: vault, task_definition_file: vault.json, image: repo/app:1.1}
"""
    async with Simulator(fleet, speed=100, listen=False) as sim:
        [shown] = await preview(sim, plan, tmp_path)

    text = format_preview([shown])
    for leaked in ("mk-old", "mk-new"):
        assert leaked not in text
        assert leaked not in repr(shown)
    # Equal numbers for equal values: what changed shows, not what it holds.
    assert shown.differences == (
        "container app: image repo/app:1.0 -> repo/app:1.1",
        "container app: dockerLabels.com.example.token ***5 -> ***16",
        "container app: environment DB_PASSWORD changed",
        "container app: logConfiguration.options.apikey ***6 -> ***14",
        "container app: logConfiguration.secretOptions password changed",
        "container app: repositoryCredentials.credentialsParameter ***1 -> ***13",
        "container app: secrets DB_URL changed",
        "container router: firelensConfiguration.options.key ***8 -> ***17",
        "proxyConfiguration.properties: "
        '[{"name": "AuthToken", "value": "***9"}] -> [{"name": "AuthToken", "value": "***18"}]',
        "tags api_token: ***10 -> (none)",  # the new revision would not copy them
    )
