"""Task definitions: re-registration keys, rendering, files, fingerprints, comparing, diffs."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecs_deploy_many.core.ecs_api import READ_ONLY_KEYS, registerable_keys, registration_input
from ecs_deploy_many.core.errors import ImageError, TaskDefinitionError
from ecs_deploy_many.deploy.taskdef import (
    ContainerChange,
    diff_task_definitions,
    fingerprint,
    render_task_definition,
    same_content,
)
from ecs_deploy_many.plan.taskdef_file import parse_task_definition_file

DIGEST = "sha256:" + "ab" * 32
ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
ARN = "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:7"

# Keys the original's whitelist dropped; RegisterTaskDefinition takes them all.
EXOTIC: dict[str, Any] = {
    "cpu": "512",
    "memory": "1024",
    "pidMode": "task",
    "ipcMode": "none",
    "inferenceAccelerators": [{"deviceName": "d1", "deviceType": "eia2.medium"}],
    "ephemeralStorage": {"sizeInGiB": 30},
    "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
    "proxyConfiguration": {"type": "APPMESH", "containerName": "envoy"},
    "placementConstraints": [{"type": "memberOf", "expression": "attribute:x == y"}],
    "volumes": [{"name": "data", "host": {"sourcePath": "/data"}}],
    "enableFaultInjection": True,
    "taskRoleArn": "arn:aws:iam::123456789012:role/task",
    "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
    "requiresCompatibilities": ["FARGATE"],
}

READ_ONLY: dict[str, Any] = {
    "taskDefinitionArn": ARN,
    "revision": 7,
    "status": "ACTIVE",
    "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"}],
    "compatibilities": ["EC2", "FARGATE"],
    "registeredAt": 1700000000.0,
    "registeredBy": "arn:aws:iam::123456789012:user/ci",
    "deregisteredAt": 1700000100.0,
    "deleteRequestedAt": 1700000200.0,
}


def container(name: str, image: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": image, **extra}


def taskdef(*containers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"family": "web", "containerDefinitions": list(containers), **extra}


def images_of(definition: dict[str, Any]) -> dict[str, Any]:
    return {c["name"]: c.get("image") for c in definition["containerDefinitions"]}


def described(**overrides: Any) -> dict[str, Any]:
    """A revision shaped like DescribeTaskDefinition's answer, ECS defaults filled in."""
    revision = {
        **READ_ONLY,
        "family": "web",
        "networkMode": "awsvpc",
        "cpu": "256",
        "memory": "512",
        "requiresCompatibilities": ["FARGATE"],
        "volumes": [],
        "placementConstraints": [],
        "containerDefinitions": [
            {
                "name": "app",
                "image": f"{ECR}/app:1",
                "cpu": 0,
                "essential": True,
                "portMappings": [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}],
                "environment": [{"name": "APP_KEY", "value": "hunter2"}],
                "secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:::parameter/db"}],
                "mountPoints": [],
                "volumesFrom": [],
                "systemControls": [],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {"awslogs-group": "/ecs/web"},
                },
            },
            {
                "name": "envoy",
                "image": "envoyproxy/envoy:v1.29",
                "cpu": 0,
                "essential": False,
                "portMappings": [],
                "environment": [],
                "mountPoints": [],
                "volumesFrom": [],
            },
        ],
    }
    revision.update(overrides)
    return revision


def registered_form() -> dict[str, Any]:
    """What a person writes to get ``described()``: no defaults, no read-only keys."""
    return {
        "family": "web",
        "networkMode": "awsvpc",
        "cpu": "256",
        "memory": "512",
        "requiresCompatibilities": ["FARGATE"],
        "containerDefinitions": [
            {
                "name": "app",
                "image": f"{ECR}/app:1",
                "portMappings": [{"containerPort": 8080}],
                "environment": [{"name": "APP_KEY", "value": "hunter2"}],
                "secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:::parameter/db"}],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {"awslogs-group": "/ecs/web"},
                },
            },
            {"name": "envoy", "image": "envoyproxy/envoy:v1.29", "essential": False},
        ],
    }


# --- registerable keys ------------------------------------------------------------------


def test_registerable_keys_come_from_the_botocore_model() -> None:
    keys = registerable_keys()
    assert {"family", "containerDefinitions", "tags", *EXOTIC} <= keys
    assert not keys & READ_ONLY_KEYS
    assert registerable_keys() is keys  # loaded once


@pytest.mark.parametrize("key", sorted(READ_ONLY))
def test_registration_input_drops_read_only_keys(key: str) -> None:
    assert key not in registration_input(described())


@pytest.mark.parametrize(("key", "value"), sorted(EXOTIC.items()))
def test_registration_input_keeps_every_registerable_key(key: str, value: Any) -> None:
    assert registration_input({**described(), key: value})[key] == value


def test_registration_input_drops_keys_ecs_does_not_register() -> None:
    result = registration_input({**described(), "ResponseMetadata": {}, "somethingNew": 1})
    assert "ResponseMetadata" not in result
    assert "somethingNew" not in result


def test_registration_input_is_a_deep_copy() -> None:
    source = described()
    result = registration_input(source)
    result["containerDefinitions"][0]["image"] = "changed"
    result["containerDefinitions"][0]["environment"].clear()
    assert source == described()


# --- rendering: image mode ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("containers", "image", "expected"),
    [
        pytest.param(
            [container("app", "repo/app:1")], "repo/app:2", {"app": "repo/app:2"}, id="one"
        ),
        pytest.param(
            [container("app", "repo/app:1"), container("log", "fluent-bit:2")],
            "repo/app:2",
            {"app": "repo/app:2", "log": "fluent-bit:2"},
            id="only-matching",
        ),
        pytest.param(
            [container("web", "repo/app:1"), container("worker", "repo/app:0.9")],
            "repo/app:2",
            {"web": "repo/app:2", "worker": "repo/app:2"},
            id="multi-container",
        ),
        pytest.param(
            [container("app", "repo/app")], "repo/app:2", {"app": "repo/app:2"}, id="no-tag"
        ),
        pytest.param(
            [container("app", f"repo/app@{DIGEST}")],
            "repo/app:2",
            {"app": "repo/app:2"},
            id="digest",
        ),
        pytest.param(
            [container("app", "repo/app:1")],
            f"repo/app@{DIGEST}",
            {"app": f"repo/app@{DIGEST}"},
            id="to-digest",
        ),
        pytest.param(
            [container("app", f"{ECR}/app:1")], "app:2", {"app": "app:2"}, id="registry-differs"
        ),
        pytest.param(
            [container("app", "localhost:5000/web:1")],
            "localhost:5000/web:2",
            {"app": "localhost:5000/web:2"},
            id="registry-port",
        ),
        pytest.param(
            [{"essential": True, "name": "app", "image": "repo/app:1"}],
            "repo/app:2",
            {"app": "repo/app:2"},
            id="image-key-last",
        ),
        pytest.param(
            [container("app", "repo/app:1"), container("app-worker", "repo/app-worker:1")],
            "repo/app:2",
            {"app": "repo/app:2", "app-worker": "repo/app-worker:1"},
            id="prefix-is-not-a-match",
        ),
    ],
)
def test_render_image(
    containers: list[dict[str, Any]], image: str, expected: dict[str, str]
) -> None:
    rendered = render_task_definition(taskdef(*containers), image=image)
    assert images_of(rendered.definition) == expected


def test_render_reports_changes_in_container_order() -> None:
    base = taskdef(
        container("web", "repo/app:1"), container("log", "fluent:1"), container("job", "repo/app")
    )
    rendered = render_task_definition(base, image="repo/app:2")
    assert rendered.changes == (
        ContainerChange("web", "repo/app:1", "repo/app:2"),
        ContainerChange("job", "repo/app", "repo/app:2"),
    )


def test_render_same_image_changes_nothing() -> None:
    base = taskdef(container("app", "repo/app:2"))
    rendered = render_task_definition(base, image="repo/app:2")
    assert rendered.changes == ()
    assert rendered.definition == base


def test_render_no_match_names_the_repository_and_the_images() -> None:
    base = taskdef(container("app", "repo/app:1"), container("log", "fluent:1"))
    with pytest.raises(TaskDefinitionError) as caught:
        render_task_definition(base, image="other/api:2")
    message = str(caught.value)
    assert "'other/api'" in message
    assert "app=repo/app:1" in message
    assert "log=fluent:1" in message
    assert "'web'" in message


def test_render_rejects_a_bad_new_image() -> None:
    with pytest.raises(ImageError):
        render_task_definition(taskdef(container("app", "repo/app:1")), image="Repo/App:2")


# --- rendering: per-container and tag-only -------------------------------------------------


def test_render_containers_sets_named_containers() -> None:
    base = taskdef(container("app", "repo/app:1"), container("envoy", "envoy:1"))
    rendered = render_task_definition(base, containers={"envoy": "envoy:2"})
    assert images_of(rendered.definition) == {"app": "repo/app:1", "envoy": "envoy:2"}
    assert rendered.changes == (ContainerChange("envoy", "envoy:1", "envoy:2"),)


def test_render_containers_win_over_image() -> None:
    base = taskdef(container("web", "repo/app:1"), container("worker", "repo/app:1"))
    rendered = render_task_definition(
        base, image="repo/app:2", containers={"worker": "repo/app:1-hotfix"}
    )
    assert images_of(rendered.definition) == {"web": "repo/app:2", "worker": "repo/app:1-hotfix"}


def test_render_unknown_container_names_the_available_ones() -> None:
    base = taskdef(container("app", "repo/app:1"), container("envoy", "envoy:1"))
    with pytest.raises(TaskDefinitionError, match=r"no container named nginx; .*app, envoy"):
        render_task_definition(base, containers={"nginx": "nginx:1"})


def test_render_containers_rejects_a_bad_image() -> None:
    with pytest.raises(ImageError):
        render_task_definition(taskdef(container("app", "a:1")), containers={"app": "a:"})


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        ("repo/app:1", "repo/app:v2"),
        ("repo/app", "repo/app:v2"),
        (f"repo/app@{DIGEST}", "repo/app:v2"),
        (f"repo/app:1@{DIGEST}", "repo/app:v2"),
        ("localhost:5000/web:1", "localhost:5000/web:v2"),
        (f"{ECR}/team/app:1", f"{ECR}/team/app:v2"),
    ],
)
def test_render_tag_only(current: str, expected: str) -> None:
    base = taskdef(container("app", current), container("envoy", "envoy:1.29"))
    rendered = render_task_definition(base, tag_only="v2")
    assert images_of(rendered.definition) == {"app": expected, "envoy": "envoy:v2"}
    assert [change.name for change in rendered.changes] == ["app", "envoy"]


def test_render_tag_only_rejects_a_bad_tag() -> None:
    with pytest.raises(ImageError):
        render_task_definition(taskdef(container("app", "a:1")), tag_only="-bad")


def test_render_tag_only_needs_an_image_in_every_container() -> None:
    base = taskdef(container("app", "a:1"), {"name": "broken"})
    with pytest.raises(TaskDefinitionError, match=r"'broken'.*has no image"):
        render_task_definition(base, tag_only="2")


@pytest.mark.parametrize(
    "modes",
    [{"image": "a:2"}, {"containers": {"app": "a:2"}}],
)
def test_render_tag_only_combines_with_nothing(modes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="tag_only"):
        render_task_definition(taskdef(container("app", "a:1")), tag_only="2", **modes)


@pytest.mark.parametrize(
    "base",
    [
        {"family": "web"},
        {"family": "web", "containerDefinitions": []},
        {"family": "web", "containerDefinitions": [{"image": "a:1"}]},
        {"family": "web", "containerDefinitions": ["a:1"]},
    ],
)
def test_render_needs_named_containers(base: dict[str, Any]) -> None:
    with pytest.raises(TaskDefinitionError, match="'web'"):
        render_task_definition(base, image="a:2")


def test_render_without_changes_is_the_registration_input() -> None:
    rendered = render_task_definition(described())
    assert rendered.definition == registration_input(described())
    assert rendered.changes == ()


def test_render_keeps_exotic_keys_and_drops_read_only_ones() -> None:
    base = described(**EXOTIC)
    definition = render_task_definition(base, image="app:2").definition
    assert {key: definition[key] for key in EXOTIC} == EXOTIC
    assert not definition.keys() & READ_ONLY_KEYS


def test_render_sets_tags_when_given() -> None:
    tags = [{"key": "team", "value": "web"}]
    rendered = render_task_definition(described(), image="app:2", tags=tags)
    tags[0]["value"] = "changed later"
    assert rendered.definition["tags"] == [{"key": "team", "value": "web"}]


def test_render_keeps_the_base_tags_without_new_ones() -> None:
    base = taskdef(container("app", "a:1"), tags=[{"key": "k", "value": "v"}])
    assert render_task_definition(base, image="a:2").definition["tags"] == base["tags"]


@pytest.mark.parametrize(
    "modes",
    [
        {"image": f"{ECR}/app:2"},
        {"containers": {"envoy": "envoy:2"}},
        {"tag_only": "2"},
        {"image": "app:2", "containers": {"envoy": "e:2"}, "tags": [{"key": "a", "value": "b"}]},
    ],
)
def test_render_never_mutates_its_input(modes: dict[str, Any]) -> None:
    base = described(**EXOTIC)
    snapshot = copy.deepcopy(base)
    rendered = render_task_definition(base, **modes)
    rendered.definition["containerDefinitions"][0]["environment"].append({"name": "X"})
    rendered.definition["volumes"].clear()
    assert base == snapshot


# --- task definition files ----------------------------------------------------------------

BARE = registered_form()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(json.dumps(BARE, separators=(",", ":")), id="compact"),
        pytest.param(json.dumps(BARE, indent=4), id="pretty"),
        pytest.param(json.dumps({"taskDefinition": BARE}), id="wrapper"),
        pytest.param(json.dumps({"taskDefinition": {**BARE, **READ_ONLY}}), id="described"),
    ],
)
def test_parse_file(text: str) -> None:
    assert parse_task_definition_file(text, "td.json") == BARE


def test_parse_file_takes_the_wrappers_tags() -> None:
    tags = [{"key": "team", "value": "web"}]
    text = json.dumps({"taskDefinition": {**BARE, **READ_ONLY}, "tags": tags})
    assert parse_task_definition_file(text, "td.json") == {**BARE, "tags": tags}


def test_parse_file_keeps_exotic_keys() -> None:
    text = json.dumps({**BARE, **EXOTIC})
    assert parse_task_definition_file(text, "td.json") == {**BARE, **EXOTIC}


def test_parse_compact_file_then_render() -> None:
    text = '{"family":"web","containerDefinitions":[{"name":"app","image":"repo/app:1"}]}'
    definition = parse_task_definition_file(text, "td.json")
    rendered = render_task_definition(definition, image="repo/app:2")
    assert images_of(rendered.definition) == {"app": "repo/app:2"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not valid JSON"),
        ("{", "not valid JSON: .* line 1 column 2"),
        ('{"family": "web",}', "not valid JSON"),
        ("[]", "expected a JSON object"),
        ('"web"', "expected a JSON object"),
        ('{"containerDefinitions": [{"name": "a", "image": "a"}]}', "no family"),
        ('{"family": "", "containerDefinitions": [{"name": "a", "image": "a"}]}', "no family"),
        ('{"family": 3, "containerDefinitions": [{"name": "a", "image": "a"}]}', "no family"),
        ('{"family": "web"}', "no containerDefinitions"),
        ('{"family": "web", "containerDefinitions": []}', "no containerDefinitions"),
        ('{"family": "web", "containerDefinitions": {}}', "no containerDefinitions"),
        ('{"family": "web", "containerDefinitions": [{"image": "a"}]}', "without a name"),
        ('{"taskDefinition": {"family": "web"}}', "no containerDefinitions"),
        (
            '{"family": "web", "cpus": "1", "containerDefinitions": [{"name": "a"}]}',
            "does not accept: cpus",
        ),
    ],
)
def test_parse_file_errors_name_the_file(text: str, message: str) -> None:
    with pytest.raises(TaskDefinitionError, match=f"^deploy/td.json: .*{message}"):
        parse_task_definition_file(text, "deploy/td.json")


# --- fingerprints -------------------------------------------------------------------------


def _reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(item) for item in value]
    return value


def test_fingerprint_ignores_key_order_at_every_depth() -> None:
    definition = registration_input(described(**EXOTIC))
    assert fingerprint(definition) == fingerprint(_reversed_keys(definition))


def test_fingerprint_is_sha256_of_canonical_json() -> None:
    expected = hashlib.sha256(b'{"a":[1,"\xc3\xa9"],"b":{"c":null}}').hexdigest()
    assert fingerprint({"b": {"c": None}, "a": [1, "é"]}) == expected


@pytest.mark.parametrize(
    "other",
    [
        {"family": "web", "containerDefinitions": [{"name": "app", "image": "a:2"}]},
        {"family": "api", "containerDefinitions": [{"name": "app", "image": "a:1"}]},
        {"family": "web", "containerDefinitions": [{"name": "app", "image": "a:1"}], "cpu": "1"},
    ],
)
def test_fingerprint_differs_for_different_content(other: dict[str, Any]) -> None:
    base = {"family": "web", "containerDefinitions": [{"name": "app", "image": "a:1"}]}
    assert fingerprint(base) != fingerprint(other)


def test_fingerprint_keeps_list_order() -> None:
    a, b = {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}
    assert fingerprint(taskdef(a, b)) != fingerprint(taskdef(b, a))


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=8), _json, max_size=6))
def test_fingerprint_is_stable_under_reordering(definition: dict[str, Any]) -> None:
    assert fingerprint(definition) == fingerprint(_reversed_keys(definition))


# --- same content -------------------------------------------------------------------------


def test_same_content_of_a_described_revision_and_its_rendering() -> None:
    revision = described()
    assert same_content(revision, render_task_definition(revision, image=f"{ECR}/app:1").definition)


def test_same_content_of_a_described_revision_and_what_was_registered() -> None:
    assert same_content(described(), registered_form())


def test_same_content_ignores_tags() -> None:
    rendered = {**registered_form(), "tags": [{"key": "team", "value": "web"}]}
    assert same_content(described(), rendered)


def _with_app(change: dict[str, Any], **task: Any) -> dict[str, Any]:
    """The registered form with its app container (and task keys) changed."""
    definition = {**registered_form(), **task}
    definition["containerDefinitions"][0].update(change)
    return definition


@pytest.mark.parametrize(
    "rendered",
    [
        # Filled in by ECS, or meaning the same as leaving the key out.
        pytest.param(_with_app({"essential": True}), id="essential-true"),
        pytest.param(_with_app({"cpu": 0}), id="cpu-0"),
        pytest.param(_with_app({"mountPoints": [], "volumesFrom": []}), id="empty-lists"),
        pytest.param(_with_app({"systemControls": [], "dockerLabels": {}}), id="empty-object"),
        pytest.param(_with_app({"healthCheck": None}), id="none"),
        pytest.param(_with_app({"versionConsistency": "enabled"}), id="version-consistency"),
        pytest.param(
            _with_app({"portMappings": [{"containerPort": 8080, "protocol": "tcp"}]}), id="tcp"
        ),
        pytest.param(
            _with_app({"portMappings": [{"containerPort": 8080, "hostPort": 8080}]}),
            id="awsvpc-host-port",
        ),
        pytest.param(_with_app({}, volumes=[], placementConstraints=[]), id="task-empty-lists"),
        pytest.param(_with_app({}, **READ_ONLY), id="read-only"),
    ],
)
def test_same_content_ignores_defaults(rendered: dict[str, Any]) -> None:
    assert same_content(described(), rendered)


@pytest.mark.parametrize(
    "rendered",
    [
        pytest.param(_with_app({"image": f"{ECR}/app:2"}), id="image"),
        pytest.param(_with_app({"essential": False}), id="essential-false"),
        pytest.param(_with_app({"cpu": 128}), id="container-cpu"),
        pytest.param(_with_app({}, cpu="512"), id="task-cpu"),
        pytest.param(_with_app({}, pidMode="task"), id="pid-mode"),
        pytest.param(_with_app({"environment": [{"name": "APP_KEY", "value": "x"}]}), id="env"),
        pytest.param(_with_app({"environment": []}), id="env-removed"),
        pytest.param(
            _with_app({"portMappings": [{"containerPort": 8080, "protocol": "udp"}]}), id="udp"
        ),
        pytest.param(_with_app({"versionConsistency": "disabled"}), id="version-consistency"),
        pytest.param(_with_app({}, networkMode="bridge"), id="network-mode"),
    ],
)
def test_same_content_sees_real_changes(rendered: dict[str, Any]) -> None:
    assert not same_content(described(), rendered)


@pytest.mark.parametrize(
    ("described_port", "rendered_port", "expected"),
    [
        ({"containerPort": 80, "hostPort": 0, "protocol": "tcp"}, {"containerPort": 80}, True),
        ({"containerPort": 80, "hostPort": 8080}, {"containerPort": 80, "hostPort": 8080}, True),
        ({"containerPort": 80, "hostPort": 80}, {"containerPort": 80}, False),  # fixed, not dynamic
    ],
)
def test_same_content_host_ports_in_bridge_mode(
    described_port: dict[str, Any], rendered_port: dict[str, Any], expected: bool
) -> None:
    old = {**READ_ONLY, **taskdef(container("app", "a:1", portMappings=[described_port]))}
    new = taskdef(container("app", "a:1", portMappings=[rendered_port]))
    assert same_content({**old, "networkMode": "bridge"}, new) is expected


# --- diffs --------------------------------------------------------------------------------


def test_diff_of_identical_definitions_is_empty() -> None:
    assert diff_task_definitions(described(), registered_form()) == []


def test_diff_shows_images_and_other_keys() -> None:
    new = _with_app({"image": f"{ECR}/app:2", "memory": 1024}, cpu="512", pidMode="task")
    new["containerDefinitions"][0]["logConfiguration"]["options"]["awslogs-group"] = "/ecs/new"
    assert diff_task_definitions(described(), new) == [
        f"container app: image {ECR}/app:1 -> {ECR}/app:2",
        "container app: logConfiguration.options.awslogs-group /ecs/web -> /ecs/new",
        "container app: memory (none) -> 1024",
        "cpu: 256 -> 512",
        "pidMode: (none) -> task",
    ]


def test_diff_containers_added_and_removed() -> None:
    new = registered_form()
    new["containerDefinitions"] = [
        new["containerDefinitions"][0],
        container(
            "xray", "amazon/aws-xray-daemon:3", environment=[{"name": "K", "value": "s3cr3t"}]
        ),
    ]
    assert diff_task_definitions(described(), new) == [
        "container envoy: removed",
        "container xray: added, image amazon/aws-xray-daemon:3",
    ]


def test_diff_shows_tag_values() -> None:
    old = {**registered_form(), "tags": [{"key": "team", "value": "a"}]}
    new = {**registered_form(), "tags": [{"key": "team", "value": "b"}, {"key": "x", "value": "y"}]}
    assert diff_task_definitions(old, new) == ["tags team: a -> b", "tags x: (none) -> y"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"environment": [{"name": "APP_KEY", "value": "NEW-SECRET"}]},
            ["container app: environment APP_KEY changed"],
        ),
        (
            {
                "environment": [
                    {"name": "APP_KEY", "value": "hunter2"},
                    {"name": "TOKEN", "value": "NEW-SECRET"},
                ]
            },
            ["container app: environment TOKEN added"],
        ),
        ({"environment": []}, ["container app: environment APP_KEY removed"]),
        ({"environment": "NEW-SECRET"}, ["container app: environment changed"]),
        (
            {"secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:NEW-SECRET"}]},
            ["container app: secrets DB_PASSWORD changed"],
        ),
        (
            {
                "logConfiguration": {
                    "logDriver": "splunk",
                    "secretOptions": [{"name": "splunk-token", "valueFrom": "arn:NEW-SECRET"}],
                }
            },
            [
                "container app: logConfiguration.logDriver awslogs -> splunk",
                "container app: logConfiguration.options.awslogs-group /ecs/web -> (none)",
                "container app: logConfiguration.secretOptions splunk-token added",
            ],
        ),
    ],
)
def test_diff_never_shows_environment_or_secret_values(
    change: dict[str, Any], expected: list[str]
) -> None:
    lines = diff_task_definitions(described(), _with_app(change))
    assert lines == expected
    assert "NEW-SECRET" not in "\n".join(lines)
    assert "hunter2" not in "\n".join(lines)


def test_diff_of_a_new_log_configuration_hides_its_secrets() -> None:
    old = taskdef(container("app", "a:1"))
    new = taskdef(
        container(
            "app",
            "a:1",
            logConfiguration={
                "logDriver": "splunk",
                "secretOptions": [{"name": "t", "valueFrom": "SECRET"}],
            },
        )
    )
    lines = diff_task_definitions(old, new)
    assert lines == [
        "container app: logConfiguration.logDriver (none) -> splunk",
        "container app: logConfiguration.secretOptions t added",
    ]
