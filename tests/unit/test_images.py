"""Image references: the grammar, the -e rules, tag-only retagging, and container matching."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecs_deploy_many.core.errors import ImageError
from ecs_deploy_many.core.images import (
    ImageRef,
    parse_image,
    resolve_image,
    same_repository,
    with_tag,
)

HEX = "0123456789abcdef" * 4
DIGEST = f"sha256:{HEX}"
ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


@pytest.mark.parametrize(
    ("ref", "registry", "path", "tag", "digest"),
    [
        ("app", None, "app", None, None),
        ("app:1.2.3", None, "app", "1.2.3", None),
        ("team/app:v1", None, "team/app", "v1", None),
        ("a/b/c/d:x", None, "a/b/c/d", "x", None),
        ("org/app", None, "org/app", None, None),  # no "." ":" or localhost: not a registry
        ("localhost/app", "localhost", "app", None, None),
        ("localhost:5000/web:1", "localhost:5000", "web", "1", None),
        ("registry.example.com/team/app:2", "registry.example.com", "team/app", "2", None),
        ("registry.example.com:443/app", "registry.example.com:443", "app", None, None),
        ("Registry.Example.COM/app", "Registry.Example.COM", "app", None, None),
        ("my_registry.local/app", "my_registry.local", "app", None, None),
        (f"{ECR}/app:release-1", ECR, "app", "release-1", None),
        ("public.ecr.aws/nginx/nginx:1.25", "public.ecr.aws", "nginx/nginx", "1.25", None),
        (f"ghcr.io/owner/repo@{DIGEST}", "ghcr.io", "owner/repo", None, DIGEST),
        (f"app@{DIGEST}", None, "app", None, DIGEST),
        (f"app:1.0@{DIGEST}", None, "app", "1.0", DIGEST),
        (f"localhost:5000/web:2@{DIGEST}", "localhost:5000", "web", "2", DIGEST),
        ("my_org/app", None, "my_org/app", None, None),
        ("my__org/app.v2/x-y--z", None, "my__org/app.v2/x-y--z", None, None),
        ("app:V1_Latest", None, "app", "V1_Latest", None),  # tags may be uppercase
        ("app:_private", None, "app", "_private", None),
        ("app:" + "a" * 128, None, "app", "a" * 128, None),
        ("localhost:5000", None, "localhost", "5000", None),  # Docker reads a tag here
        ("a.b/c", "a.b", "c", None, None),
        ("host:5000/app", "host:5000", "app", None, None),
        ("1app/2", None, "1app/2", None, None),
    ],
)
def test_parse_valid(
    ref: str, registry: str | None, path: str, tag: str | None, digest: str | None
) -> None:
    image = parse_image(ref)
    assert image == ImageRef(registry, path, tag, digest)
    assert str(image) == ref


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("", "empty"),
        ("/app", "starts with '/'"),
        ("/reg.io/app", "starts with '/'"),
        ("app/", "ends with '/'"),
        ("team/app/:1", "ends with '/'"),
        ("reg.io/", "ends with '/'"),
        ("team//app", "contains '//'"),
        ("reg.io//app", "contains '//'"),
        ("reg.io:abc/app", "port 'abc' must be digits"),
        ("reg.io:/app", "port '' must be digits"),
        ("reg.io:50a0/app", "port '50a0' must be digits"),
        ("reg.io:5000:1/app", "port '5000:1' must be digits"),
        ("-reg.io/app", "registry host '-reg.io'"),
        ("reg..io/app", "registry host 'reg..io'"),
        ("_app", "component '_app'"),
        ("team/_app", "component '_app'"),
        ("_team/app", "component '_team'"),
        ("app_", "component 'app_'"),
        ("team/-app", "component '-app'"),
        (".app", "component '.app'"),
        ("a..b", "component 'a..b'"),
        ("a___b", "component 'a___b'"),
        ("app!", "component 'app!'"),
        ("te$am/app", "component 'te$am'"),
        ("app:1:2", "component 'app:1'"),
        ("App", "must be lowercase"),
        ("Team/app", "must be lowercase"),
        ("reg.io/Team/app:1", "'Team/app' must be lowercase"),
        ("app:", "tag is empty"),
        ("app:-1", "tag '-1'"),
        ("app:.1", "tag '.1'"),
        ("app:a+b", "tag 'a+b'"),
        ("app:" + "a" * 129, "at most 128"),
        ("app@", "digest"),
        ("app@sha256:abc", "digest"),
        ("app@sha256:" + HEX.upper(), "lowercase hex"),
        ("app@md5:" + HEX, "digest"),
        (f"app@{DIGEST}@x", "digest"),
        (f"app@{DIGEST}0", "digest"),
        ("my app", "whitespace"),
        (" app", "whitespace"),
        ("app:1 ", "whitespace"),
        ("app\t", "whitespace"),
        ("app\n", "whitespace"),
    ],
)
def test_parse_invalid(ref: str, reason: str) -> None:
    with pytest.raises(ImageError, match="cannot parse image") as caught:
        parse_image(ref)
    assert caught.value.image == ref
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("ref", "repository"),
    [
        ("app:1", "app"),
        ("localhost:5000/web:1", "localhost:5000/web"),
        (f"{ECR}/team/app@{DIGEST}", f"{ECR}/team/app"),
        (f"app:1@{DIGEST}", "app"),
    ],
)
def test_repository_has_no_tag_or_digest(ref: str, repository: str) -> None:
    assert parse_image(ref).repository == repository


@pytest.mark.parametrize(
    ("image", "var", "environ", "expected"),
    [
        # No tag, no digest: the variable's value, else latest.
        ("app", None, {}, "app:latest"),
        ("app", None, {"TAG": "9"}, "app:latest"),
        ("app", "TAG", {"TAG": "1.2"}, "app:1.2"),
        ("app", "TAG", {}, "app:latest"),
        ("app", "TAG", {"TAG": ""}, "app:latest"),
        ("app", "", {"": "x"}, "app:latest"),
        ("localhost:5000/web", "TAG", {"TAG": "3"}, "localhost:5000/web:3"),
        (
            f"{ECR}/team/app",
            "CI_TIMESTAMP",
            {"CI_TIMESTAMP": "1700000000"},
            f"{ECR}/team/app:1700000000",
        ),
        # An explicit tag is never overridden.
        ("app:1", "TAG", {"TAG": "2"}, "app:1"),
        ("app:1", None, {}, "app:1"),
        ("localhost:5000/web:1", "TAG", {"TAG": "2"}, "localhost:5000/web:1"),
        (f"app:1@{DIGEST}", "TAG", {"TAG": "2"}, f"app:1@{DIGEST}"),
        # A digest is replaced by the variable's tag, and kept when there is none.
        (f"app@{DIGEST}", "TAG", {"TAG": "2"}, "app:2"),
        (f"localhost:5000/web@{DIGEST}", "TAG", {"TAG": "2"}, "localhost:5000/web:2"),
        (f"app@{DIGEST}", "TAG", {}, f"app@{DIGEST}"),
        (f"app@{DIGEST}", "TAG", {"TAG": ""}, f"app@{DIGEST}"),
        (f"app@{DIGEST}", None, {"TAG": "2"}, f"app@{DIGEST}"),
    ],
)
def test_resolve_image(image: str, var: str | None, environ: dict[str, str], expected: str) -> None:
    assert resolve_image(image, tag_env_var=var, environ=environ) == expected


@pytest.mark.parametrize("bad_tag", ["-1", "has space", "a/b", "x" * 129])
def test_resolve_image_rejects_a_bad_tag_from_the_variable(bad_tag: str) -> None:
    with pytest.raises(ImageError, match=r"from \$TAG"):
        resolve_image("app", tag_env_var="TAG", environ={"TAG": bad_tag})


@pytest.mark.parametrize("image", ["", "/app", "App", "app:"])
def test_resolve_image_rejects_a_bad_image(image: str) -> None:
    with pytest.raises(ImageError):
        resolve_image(image, tag_env_var="TAG", environ={"TAG": "1"})


@pytest.mark.parametrize(
    ("image", "tag", "expected"),
    [
        ("localhost:5000/web:1", "NEW", "localhost:5000/web:NEW"),
        ("localhost:5000/web", "NEW", "localhost:5000/web:NEW"),
        ("app:1", "2", "app:2"),
        ("app", "2", "app:2"),
        (f"app@{DIGEST}", "2", "app:2"),
        (f"app:1@{DIGEST}", "2", "app:2"),
        (f"{ECR}/team/app:1", "0.1.899", f"{ECR}/team/app:0.1.899"),
        ("registry.example.com:443/a/b/c:old", "new", "registry.example.com:443/a/b/c:new"),
        # Current images are whatever ECS accepted: retagged without being judged.
        ("Team/App:1", "2", "Team/App:2"),
    ],
)
def test_with_tag(image: str, tag: str, expected: str) -> None:
    assert with_tag(image, tag) == expected


@pytest.mark.parametrize("tag", ["", "-x", ".x", "a b", "a:b", "a@b", "x" * 129])
def test_with_tag_rejects_a_bad_tag(tag: str) -> None:
    with pytest.raises(ImageError, match="tag"):
        with_tag("localhost:5000/web:1", tag)


@pytest.mark.parametrize("image", ["", " ", ":1", f"@{DIGEST}", "a b:1"])
def test_with_tag_needs_a_repository(image: str) -> None:
    with pytest.raises(ImageError, match="no repository"):
        with_tag(image, "2")


@pytest.mark.parametrize(
    ("current", "new", "expected"),
    [
        ("app:1", "app:2", True),
        ("app", "app:2", True),  # no tag
        (f"app@{DIGEST}", "app:2", True),  # a digest
        (f"app:1@{DIGEST}", "app:2", True),
        ("app:1", f"app@{DIGEST}", True),
        ("reg.io/app:1", "app:2", True),  # a registry prefix on the current image
        (f"{ECR}/team/app:1", "team/app:2", True),
        ("team/app:1", f"{ECR}/team/app:2", True),
        ("reg-a.io/app:1", "reg-b.io/app:2", True),  # registries may differ
        ("localhost:5000/app:1", "app:2", True),
        ("nginx:1", "docker.io/library/nginx:2", True),  # Docker Hub's aliases
        ("library/nginx", "nginx:2", True),
        ("index.docker.io/nginx", "registry-1.docker.io/library/nginx:2", True),
        ("app:1", "app-worker:2", False),
        ("app-worker:1", "app:2", False),
        ("team/app:1", "app:2", False),  # a different path, not a registry
        ("app:1", "team/app:2", False),
        ("reg.io/library/nginx", "nginx:2", False),
        ("Team/App:1", "team/app:2", False),
        ("", "app:2", False),  # current images that cannot be read just do not match
        (":1", "app:2", False),
        (f"@{DIGEST}", "app:2", False),
        ("not an image", "app:2", False),
    ],
)
def test_same_repository(current: str, new: str, expected: bool) -> None:
    assert same_repository(current, new) is expected


def test_same_repository_rejects_a_bad_new_image() -> None:
    with pytest.raises(ImageError):
        same_repository("app:1", "App:2")


_components = st.from_regex(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*", fullmatch=True)
_hosts = st.one_of(
    st.just("localhost"),
    st.builds("{}.{}".format, _components, st.from_regex(r"[a-z]{2,5}", fullmatch=True)),
)
_registries = st.one_of(
    st.none(),
    _hosts,
    st.builds("{}:{}".format, _hosts, st.integers(min_value=1, max_value=65535)),
)
_paths = st.lists(_components, min_size=1, max_size=4).map("/".join)
_tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True)
_digests = st.from_regex(r"[a-f0-9]{64}", fullmatch=True).map("sha256:{}".format)


def _reads_back(ref: ImageRef) -> bool:
    """Without a registry, a first path component that looks like a host is read as one."""
    first, slash, _ = ref.path.partition("/")
    return ref.registry is not None or not slash or ("." not in first and first != "localhost")


_images = st.builds(
    ImageRef,
    registry=_registries,
    path=_paths,
    tag=st.none() | _tags,
    digest=st.none() | _digests,
).filter(_reads_back)


@given(_images)
def test_valid_references_round_trip(ref: ImageRef) -> None:
    assert parse_image(str(ref)) == ref


@given(_images, _tags)
def test_retagged_images_keep_their_repository(ref: ImageRef, tag: str) -> None:
    retagged = parse_image(with_tag(str(ref), tag))
    assert retagged == ImageRef(ref.registry, ref.path, tag, None)
    assert same_repository(str(ref), str(retagged))
