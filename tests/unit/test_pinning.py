"""Which images are pinned, the ``images:`` plan key, and rendering with pins."""

from __future__ import annotations

import pytest

from ecs_deploy_many.core.errors import PlanError
from ecs_deploy_many.deploy.taskdef import render_task_definition
from ecs_deploy_many.jobs.pinning import EcrImage, ecr_image
from ecs_deploy_many.plan import parse_plan

REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (
            f"{REGISTRY}/team/app:release",
            EcrImage(f"{REGISTRY}/team/app:release", "123456789012", "eu-west-1", "team/app",
                     "release", REGISTRY),
        ),
        (
            "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com/app",
            EcrImage("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com/app", "123456789012",
                     "us-east-1", "app", "latest",
                     "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com"),
        ),
        (f"{REGISTRY}/app@{DIGEST}", None),  # pinned already
        (f"{REGISTRY}/app:1@{DIGEST}", None),
        ("public.ecr.aws/nginx/nginx:1", None),  # ECR Public: not BatchGetImage's
        ("ghcr.io/org/app:1", None),
        ("nginx:1", None),
    ],
)  # fmt: skip
def test_ecr_images(image: str, expected: EcrImage | None) -> None:
    assert ecr_image(image) == expected


def test_pins_replace_only_the_images_the_rendering_sets() -> None:
    base = {
        "family": "app",
        "containerDefinitions": [
            {"name": "app", "image": f"{REGISTRY}/app:1"},
            {"name": "agent", "image": f"{REGISTRY}/agent:release"},
        ],
    }
    pinned = f"{REGISTRY}/app@{DIGEST}"
    rendered = render_task_definition(
        base,
        image=f"{REGISTRY}/app:release",
        pins={f"{REGISTRY}/app:release": pinned, f"{REGISTRY}/agent:release": "not-this"},
    )
    images = [c["image"] for c in rendered.definition["containerDefinitions"]]
    assert images == [pinned, f"{REGISTRY}/agent:release"]
    assert rendered.images == (pinned,)


def test_pin_digests_is_on_unless_the_plan_says_otherwise() -> None:
    target = "targets: [{cluster: prod, service: api, image: app:1}]\n"
    assert parse_plan(f"version: 1\n{target}", environ={}).images.pin_digests
    off = parse_plan(f"version: 1\nimages: {{pin_digests: false}}\n{target}", environ={})
    assert not off.images.pin_digests
    with pytest.raises(PlanError) as raised:
        parse_plan(f"version: 1\nimages: {{pin_digests: maybe, pin: true}}\n{target}", environ={})
    problems = [str(issue) for issue in raised.value.issues]
    assert len(problems) == 2
    assert all("<plan>:2" in problem for problem in problems)
    assert any("images.pin_digests" in problem for problem in problems)
