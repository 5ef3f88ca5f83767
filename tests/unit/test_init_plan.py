"""The plan ``init`` writes from the services it found: valid, and as they run."""

from __future__ import annotations

import yaml

from ecs_deploy_many import __version__
from ecs_deploy_many.cli.init import plan_text
from ecs_deploy_many.deploy.discover import FoundService
from ecs_deploy_many.plan import parse_plan

SERVICES = [
    FoundService("prod", "api", "arn:api:1", (("api", "example/api:1.10"),)),
    FoundService("prod", "bare", "arn:bare:1", (("nginx", "nginx"),)),
    FoundService(
        "prod",
        "pair",
        "arn:pair:1",
        (("app", "example/app@sha256:" + "a" * 64), ("envoy", "envoyproxy/envoy:v1.31")),
    ),
    FoundService("prod", "legacy", "arn:legacy:1", (("x", "x:1"),), controller="CODE_DEPLOY"),
    FoundService("prod", "on", "arn:on:1", (("on", "example/on:1"),)),
]


def test_one_target_per_service_with_its_images_and_what_was_left_out() -> None:
    text = plan_text(SERVICES, "clusters prod in eu-west-1", "2026-12-02T05:00:00.000Z",
                     "eu-west-1", "ops")  # fmt: skip
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert (
        header[0] == f"# Written by ecs-deploy-many init {__version__} at 2026-12-02T05:00:00.000Z"
    )
    assert "# prod/legacy: left out: deployment controller CODE_DEPLOY" in header
    assert "# prod/bare: container nginx runs nginx, written nginx:latest" in header
    data = yaml.safe_load(text)
    assert data["defaults"] == {"region": "eu-west-1", "profile": "ops"}
    assert data["images"] == {"pin_digests": False}
    assert data["targets"] == [
        {"cluster": "prod", "service": "api", "image": "example/api:1.10"},
        {"cluster": "prod", "service": "bare", "image": "nginx:latest"},
        {
            "cluster": "prod",
            "service": "pair",
            "containers": {
                "app": "example/app@sha256:" + "a" * 64,
                "envoy": "envoyproxy/envoy:v1.31",
            },
        },
        {"cluster": "prod", "service": "on", "image": "example/on:1"},
    ]
    plan = parse_plan(text, environ={})
    assert [t.name for t in plan.targets] == ["prod/api", "prod/bare", "prod/pair", "prod/on"]
    assert plan.target("prod/api").image == "example/api:1.10"
