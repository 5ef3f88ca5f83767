"""The fleet a rehearsal runs against: everything the plan names, one release behind."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from tests.unit.test_deploy_plans import ENVIRON

from ecs_deploy_many.cli.rehearsal import (
    DEFAULT_DESIRED_COUNT,
    MAX_REVISION,
    PREVIOUS_TAG,
    fleet_for_plan,
)
from ecs_deploy_many.core.errors import FleetError
from ecs_deploy_many.core.images import same_repository
from ecs_deploy_many.core.scope import AwsScope
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.deploy.taskdef import render_task_definition
from ecs_deploy_many.plan import Plan, load_plan, parse_plan
from ecs_deploy_many.sim.fleet import Fleet, ServiceSpec, Timings

PLANS = Path(__file__).resolve().parents[2] / "deploy-plans"


def plan_of(text: str, base_dir: Path | None = None) -> Plan:
    return parse_plan(textwrap.dedent(text), environ=ENVIRON, base_dir=base_dir)


def services_of(fleet: Fleet) -> dict[tuple[str, str, str], ServiceSpec]:
    """Every service by (region, cluster, service)."""
    return {
        (cluster.region or fleet.region, cluster.name, service.name): service
        for cluster in fleet.clusters
        for service in cluster.services
    }


def body_of(fleet: Fleet, family: str, revision: int = 1) -> dict[str, Any]:
    return fleet.task_definitions[family].revisions[revision - 1]


def images(body: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["image"] for c in body["containerDefinitions"]}


def service_body(fleet: Fleet, region: str, cluster: str, service: str) -> dict[str, Any]:
    return body_of(fleet, services_of(fleet)[region, cluster, service].task_definition)


def changes(target: Target, body: dict[str, Any]) -> dict[str, str]:
    """What the target's deploy does to ``body``: new image by container name."""
    rendered = render_task_definition(
        target.task_definition_body or body,
        image=target.image,
        containers=target.containers or None,
        tag_only=target.tag_only,
    )
    return {change.name: change.new_image for change in rendered.changes}


def test_clusters_land_in_each_targets_region_or_the_fleets() -> None:
    plan = plan_of("""\
        version: 1
        defaults: {image: "shop/app:2.0"}
        targets:
          - {cluster: prod-eu, service: api, region: eu-west-1}
          - {cluster: prod-us, service: api, region: us-east-2}
          - {cluster: lab, service: api}
    """)
    assert {(c.region, c.name) for c in fleet_for_plan(plan).clusters} == {
        ("eu-west-1", "prod-eu"),
        ("us-east-2", "prod-us"),
        ("us-east-1", "lab"),  # the Fleet default region
    }
    based = fleet_for_plan(plan, Fleet(region="ap-south-1"))
    assert ("ap-south-1", "lab") in {(c.region, c.name) for c in based.clusters}


def test_image_target_runs_the_same_repository_at_a_previous_tag() -> None:
    plan = plan_of("""\
        version: 1
        targets:
          - cluster: prod
            service: api
            region: eu-west-1
            image: registry.example.com:5000/team/api-server:2.0
    """)
    fleet = fleet_for_plan(plan)
    service = services_of(fleet)["eu-west-1", "prod", "api"]
    assert service.task_definition == "api"
    assert service.desired_count == DEFAULT_DESIRED_COUNT
    assert not service.circuit_breaker.enable
    assert service.launch_type == "FARGATE"
    body = body_of(fleet, "api")
    assert images(body) == {
        "api-server": f"registry.example.com:5000/team/api-server:{PREVIOUS_TAG}"
    }
    assert body["networkMode"] == "awsvpc"
    assert changes(plan.targets[0], body) == {
        "api-server": "registry.example.com:5000/team/api-server:2.0"
    }


def test_a_plan_deploying_the_previous_tag_still_changes_something() -> None:
    plan = plan_of("""\
        version: 1
        targets:
          - {cluster: prod, service: api, image: "team/app:previous"}
          - {cluster: prod, service: web, tag_only: previous}
    """)
    fleet = fleet_for_plan(plan)
    for target in plan.targets:
        body = service_body(fleet, "us-east-1", "prod", str(target.service))
        assert changes(target, body)


def test_containers_keep_their_names_and_image_gets_a_container_of_its_own() -> None:
    plan = plan_of("""\
        version: 1
        targets:
          - cluster: prod
            service: storefront
            image: shop/storefront:2.0
            containers:
              nginx: public.ecr.aws/nginx/nginx:1.27
              storefront: other/thing:3   # the name the image's container would take
    """)
    fleet = fleet_for_plan(plan)
    body = service_body(fleet, "us-east-1", "prod", "storefront")
    assert images(body) == {
        "nginx": f"public.ecr.aws/nginx/nginx:{PREVIOUS_TAG}",
        "storefront": f"other/thing:{PREVIOUS_TAG}",
        "storefront-2": f"shop/storefront:{PREVIOUS_TAG}",
    }
    assert changes(plan.targets[0], body) == {
        "nginx": "public.ecr.aws/nginx/nginx:1.27",
        "storefront": "other/thing:3",
        "storefront-2": "shop/storefront:2.0",
    }


def test_tag_only_gets_a_placeholder_container() -> None:
    plan = plan_of("""\
        version: 1
        targets:
          - {cluster: prod, service: search, tag_only: "${RELEASE}"}
    """)
    fleet = fleet_for_plan(plan)
    body = service_body(fleet, "us-east-1", "prod", "search")
    assert images(body) == {"search": f"example/search:{PREVIOUS_TAG}"}
    assert changes(plan.targets[0], body) == {"search": "example/search:2024.06.1"}


def test_task_definition_file_is_revision_one(tmp_path: Path) -> None:
    definition = {
        "family": "worker-family",
        "cpu": "128",
        "memory": "256",
        "containerDefinitions": [{"name": "worker", "image": "team/worker:1"}],
    }
    (tmp_path / "worker.json").write_text(json.dumps(definition))
    plan = plan_of(
        """\
        version: 1
        targets:
          - cluster: prod
            service: worker
            task_definition_file: worker.json
            containers: {worker: "team/worker:2"}
        """,
        base_dir=tmp_path,
    )
    fleet = fleet_for_plan(plan)
    service = services_of(fleet)["us-east-1", "prod", "worker"]
    assert body_of(fleet, service.task_definition) == {
        key: value for key, value in definition.items() if key != "family"
    }
    assert service.launch_type == "EC2"  # the file's definition is not Fargate-compatible


def test_desired_count_comes_from_the_target() -> None:
    plan = plan_of("""\
        version: 1
        defaults: {image: "team/app:2"}
        targets:
          - {cluster: prod, service: api, desired_count: 5}
          - {cluster: prod, service: idle, desired_count: 0}
    """)
    found = services_of(fleet_for_plan(plan))
    assert found["us-east-1", "prod", "api"].desired_count == 5
    assert found["us-east-1", "prod", "idle"].desired_count == 0


def test_families_are_distinct_across_clusters_and_regions() -> None:
    plan = plan_of("""\
        version: 1
        defaults: {image: "team/app:2"}
        targets:
          - {cluster: prod, service: api, region: eu-west-1}
          - {name: us-api, cluster: prod, service: api, region: us-east-1}
          - {cluster: staging, service: api, region: eu-west-1}
          - {cluster: prod, service: web, region: eu-west-1}
          - {name: migrate, task_definition: web}
    """)
    fleet = fleet_for_plan(plan)
    families = {key: spec.task_definition for key, spec in services_of(fleet).items()}
    assert families == {
        ("eu-west-1", "prod", "api"): "eu-west-1-prod-api",
        ("us-east-1", "prod", "api"): "us-east-1-prod-api",
        ("eu-west-1", "staging", "api"): "staging-api",
        ("eu-west-1", "prod", "web"): "web-2",  # "web" is the task-definition target's
    }
    assert fleet_for_plan(plan) == fleet  # the same plan always gives the same fleet


def test_targets_sharing_a_service_share_it() -> None:
    plan = plan_of("""\
        version: 1
        targets:
          - {name: app, cluster: prod, service: api, image: "team/app:2"}
          - {name: sidecar, cluster: prod, service: api, containers: {envoy: "envoy/envoy:v2"}}
          - name: latest
            cluster: prod
            service: api
            image: "team/app:3"
            use_latest_task_def: true
    """)
    fleet = fleet_for_plan(plan)
    [cluster] = fleet.clusters
    [service] = cluster.services
    body = body_of(fleet, service.task_definition)
    assert len(fleet.task_definitions[service.task_definition].revisions) == 1
    assert images(body) == {
        "app": f"team/app:{PREVIOUS_TAG}",
        "envoy": f"envoy/envoy:{PREVIOUS_TAG}",
    }
    for target in plan.targets:
        assert changes(target, body)


def test_task_definition_targets_register_their_family() -> None:
    plan = plan_of("""\
        version: 1
        defaults: {cluster: prod, image: "team/orders:2"}
        targets:
          - {name: plain, task_definition: orders-plain}
          - name: pinned
            task_definition: "arn:aws:ecs:us-east-1:123456789012:task-definition/orders-pinned:3"
          - {name: bridge, task_definition: orders-bridge, run_task: {wait_for_success: true}}
          - name: vpc
            task_definition: orders-vpc
            run_task:
              network_configuration: {awsvpcConfiguration: {subnets: [subnet-1]}}
    """)
    fleet = fleet_for_plan(plan)
    assert set(fleet.task_definitions) == {
        "orders-plain",
        "orders-pinned",
        "orders-bridge",
        "orders-vpc",
    }
    assert len(fleet.task_definitions["orders-pinned"].revisions) == 3  # so :3 resolves
    assert "networkMode" not in body_of(fleet, "orders-bridge")  # runs without a network
    assert body_of(fleet, "orders-vpc")["networkMode"] == "awsvpc"
    assert [(c.region, c.name, c.services) for c in fleet.clusters] == [("us-east-1", "prod", [])]
    for target in plan.targets:
        family = str(target.task_definition).rsplit("/", 1)[-1].partition(":")[0]
        assert changes(target, body_of(fleet, family)) == {"orders": "team/orders:2"}


def test_the_base_fleet_wins() -> None:
    plan = plan_of("""\
        version: 1
        defaults: {image: "team/app:2", region: eu-west-1}
        targets:
          - {cluster: prod, service: api}
          - {cluster: prod, service: web}
          - {cluster: lab, service: web, region: us-west-2}
          - {cluster: other, service: web, region: us-west-2}
    """)
    real_api = {"containerDefinitions": [{"name": "app", "image": "team/app:1", "memory": 64}]}
    base = Fleet.model_validate(
        {
            "account_id": "210987654321",
            "region": "eu-west-1",
            "timings": {"pending": 1},
            "task_definitions": {
                "real-api": real_api,
                "other-web": {
                    "containerDefinitions": [{"name": "x", "image": "x:1", "memory": 64}]
                },
            },
            "clusters": [
                {
                    "name": "prod",  # region: the fleet's, eu-west-1, so the plan's prod
                    "services": [
                        {"name": "api", "task_definition": "real-api", "desired_count": 7}
                    ],
                },
                {"name": "lab", "services": []},  # eu-west-1: not the plan's lab
            ],
            "behaviour": {"images": [{"match": "*:2", "outcome": "crash"}]},
        }
    )
    fleet = fleet_for_plan(plan, base)
    assert fleet.account_id == "210987654321"
    assert fleet.region == "eu-west-1"
    assert fleet.timings == Timings(pending=1)
    assert fleet.outcome_of("team/app:2").kind == "crash"
    assert fleet.task_definitions["real-api"].revisions == [real_api]
    assert "api" not in fleet.task_definitions  # nothing generated for a service base has
    found = services_of(fleet)
    assert found["eu-west-1", "prod", "api"].desired_count == 7
    assert found["eu-west-1", "prod", "web"].task_definition == "prod-web"
    assert ("eu-west-1", "lab", "web") not in found
    assert found["us-west-2", "lab", "web"].task_definition == "lab-web"
    # a base task definition named like a generated family replaces it
    other = found["us-west-2", "other", "web"]
    assert images(body_of(fleet, other.task_definition)) == {"x": "x:1"}
    assert [(c.region, c.name) for c in fleet.clusters] == [
        (None, "prod"),
        (None, "lab"),
        ("us-west-2", "lab"),
        ("us-west-2", "other"),
    ]


def test_the_demo_plan_is_three_clusters_of_services_one_release_behind() -> None:
    plan = load_plan(PLANS / "demo.yaml", environ=ENVIRON)
    fleet = fleet_for_plan(plan)
    assert {(c.region, c.name) for c in fleet.clusters} == {
        ("eu-west-1", "shop-edge"),
        ("eu-west-1", "shop-core"),
        ("eu-west-1", "shop-jobs"),
    }
    found = services_of(fleet)
    assert len(found) == len(plan.targets) == 12
    for target in plan.targets:
        assert target.image is not None
        [image] = images(
            service_body(fleet, "eu-west-1", str(target.cluster), str(target.service))
        ).values()
        assert image != target.image
        assert same_repository(image, target.image)


@pytest.mark.parametrize("path", sorted(PLANS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_plan_gets_a_fleet_its_deploys_change(path: Path) -> None:
    plan = load_plan(path, environ=ENVIRON)
    fleet = Fleet.model_validate(fleet_for_plan(plan).model_dump())  # valid as a fleet file too
    found = services_of(fleet)
    for target in plan.targets:
        if target.unexpanded:
            continue  # a selector selects among --fleet's services; none are made for it
        scaled = False
        if target.service is None:
            family = str(target.task_definition).partition(":")[0]
            body = body_of(fleet, family)
        else:
            key = (target.scope.region or fleet.region, str(target.cluster), target.service)
            body = body_of(fleet, found[key].task_definition)
            scaled = target.desired_count not in (None, found[key].desired_count)
        assert changes(target, body) or scaled, f"{target.name}'s deploy would change nothing"


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        ({"service": "api v2"}, "target api: service", "'api v2' is not a name ECS accepts"),
        ({"cluster": "prod east"}, "target api: cluster", "'prod east' is not a name"),
        ({"desired_count": 99_999_999}, "target api: desired_count", "between 0 and 5000"),
        (
            {"scope": AwsScope(region="eu west 1")},
            "target api: region",
            "'eu west 1' is not an AWS region name",
        ),
        (
            {"task_definition_body": {"containerDefinitions": [{"name": "a", "image": "a"}]}},
            "target api: task_definition_file",
            "'memory' or 'memoryReservation' must be specified",
        ),
        (
            {"task_definition_body": {"containerDefinitions": "web"}},
            "target api: task_definition_file",
            "containerDefinitions must be a list",
        ),
    ],
    ids=[
        "service-name",
        "cluster-name",
        "desired-count",
        "region",
        "unregistrable-file",
        "wrong-shape",
    ],
)
def test_what_ecs_would_refuse_names_the_plan_and_the_target(
    change: dict[str, Any], key: str, words: str
) -> None:
    # Built past the plan loader: the rehearsal holds its own line, whatever the loader lets by.
    plan = plan_of("""\
        version: 1
        targets:
          - {name: api, cluster: prod, service: api, image: "team/app:2"}
    """)
    plan = replace(
        plan, source=Path("plans/release.yaml"), targets=(replace(plan.targets[0], **change),)
    )
    with pytest.raises(FleetError) as caught:
        fleet_for_plan(plan)
    assert (caught.value.file, caught.value.key) == ("plans/release.yaml", key)
    assert words in caught.value.message


def test_task_definition_revisions_are_bounded() -> None:
    plan = plan_of("""\
        version: 1
        targets:
          - {name: migrate, cluster: prod, task_definition: "migrate:99999999999", image: "a:2"}
    """)
    with pytest.raises(FleetError) as caught:
        fleet_for_plan(plan)
    assert caught.value.key == "target migrate: task_definition"
    assert f"at most {MAX_REVISION}" in caught.value.message


def test_a_fleet_too_large_to_hold_names_the_plan() -> None:
    targets = "".join(
        f'  - {{name: s{n}, cluster: prod, service: s{n}, image: "a:2", desired_count: 5000}}\n'
        for n in range(21)
    )
    plan = plan_of("version: 1\ntargets:\n" + targets)
    with pytest.raises(FleetError) as caught:
        fleet_for_plan(plan)
    assert (caught.value.file, caught.value.key) == ("<plan>", "rehearsal fleet clusters")
    assert "105000 tasks" in caught.value.message
