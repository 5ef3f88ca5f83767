"""Throttling, latency, injected faults and the limits ECS puts on requests, as a client
of the simulator meets them."""

from __future__ import annotations

import base64
import io
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import anyio
import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.model import ListShape, MapShape, Shape, StructureShape

from ecs_deploy_many.core.quotas import MAX_TASKS_PER_SERVICE
from ecs_deploy_many.core.ratelimit import BucketSpec
from ecs_deploy_many.sim.server import MAX_BODY_BYTES, MAX_NESTING, Simulator
from tests.integration.helpers import CLUSTER, ecs_client

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

pytestmark = pytest.mark.anyio

Call = Callable[["ECSClient"], Awaitable[Any]]


async def outcomes(ecs: ECSClient, calls: int) -> list[str]:
    """Call ListClusters ``calls`` times; "ok" or the error code of each answer."""
    seen = []
    for _ in range(calls):
        try:
            await ecs.list_clusters()
            seen.append("ok")
        except ClientError as error:
            seen.append(error.response["Error"]["Code"])
    return seen


async def test_burst_then_rate_exceeded_then_refill() -> None:
    # One token per simulated second at speed 2: a token every 0.5 s of real time.
    small = {"cluster_read": BucketSpec(burst=5, refill_per_s=1)}
    async with (
        Simulator(speed=2, throttling="aws", buckets=small) as sim,
        ecs_client(sim.endpoint_url, attempts=1) as ecs,
    ):
        await ecs.create_cluster(clusterName="default")  # no bucket for CreateCluster
        assert await outcomes(ecs, 6) == ["ok"] * 5 + ["ThrottlingException"]
        with pytest.raises(ClientError) as throttled:
            await ecs.describe_clusters(clusters=["default"])
        assert throttled.value.response["Error"]["Message"] == "Rate exceeded"
        assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

        await sim.clock.sleep(1.2)
        assert await outcomes(ecs, 1) == ["ok"]

        # Other categories and other regions have buckets of their own.
        await ecs.describe_services(cluster="default", services=["api"])
        async with ecs_client(sim.endpoint_url, "us-west-2", attempts=1) as oregon:
            assert await outcomes(oregon, 5) == ["ok"] * 5
        assert sim.stats().throttled == {"DescribeClusters": 1, "ListClusters": 1}


async def test_documented_bucket_for_task_definition_registration() -> None:
    # 20 registrations at once, then 1 per second: the bottleneck of fleet rollouts.
    async with (
        Simulator(throttling="aws") as sim,
        ecs_client(sim.endpoint_url, attempts=1) as ecs,
    ):
        codes = []
        for n in range(21):
            try:
                await ecs.register_task_definition(
                    family=f"app{n}",
                    containerDefinitions=[{"name": "app", "image": "app:1", "memory": 128}],
                )
                codes.append("ok")
            except ClientError as error:
                codes.append(error.response["Error"]["Code"])
        assert codes == ["ok"] * 20 + ["ThrottlingException"]


async def test_botocore_retries_absorb_light_throttling() -> None:
    small = {"cluster_read": BucketSpec(burst=2, refill_per_s=2)}
    async with (
        Simulator(throttling="aws", buckets=small) as sim,
        ecs_client(sim.endpoint_url) as ecs,  # botocore's default retry policy
    ):
        assert await outcomes(ecs, 4) == ["ok"] * 4
        assert sim.stats().throttled["ListClusters"] >= 1


async def test_throttling_off_lets_everything_through(sim: Simulator, ecs: ECSClient) -> None:
    assert await outcomes(ecs, 120) == ["ok"] * 120


async def test_injected_errors_are_seeded_server_exceptions() -> None:
    async def pattern(seed: int) -> tuple[list[str], int]:
        async with (
            Simulator(error_rate=0.5, seed=seed) as sim,
            ecs_client(sim.endpoint_url, attempts=1) as ecs,
        ):
            seen = await outcomes(ecs, 30)
            return seen, sim.stats().injected_errors.get("ListClusters", 0)

    first, injected = await pattern(7)
    assert set(first) == {"ok", "ServerException"}
    assert first.count("ServerException") == injected
    assert (await pattern(7))[0] == first
    assert (await pattern(8))[0] != first


async def test_injected_error_is_http_500_and_changes_nothing() -> None:
    async with (
        Simulator(error_rate=1.0) as sim,
        ecs_client(sim.endpoint_url, attempts=1) as ecs,
    ):
        with pytest.raises(ClientError) as failed:
            await ecs.create_cluster(clusterName="never")
        assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert failed.value.response["Error"]["Code"] == "ServerException"
        assert sim.state.handle("ListClusters", "eu-west-1", {})["clusterArns"] == []


@pytest.mark.parametrize("speed", [1, 50])
async def test_latency_runs_on_the_simulated_clock(speed: float) -> None:
    # 250 ms of ECS latency: at speed 50 a call waits 5 ms of the loop's (virtual) time.
    async with (
        Simulator(latency_ms=250, speed=speed) as sim,
        ecs_client(sim.endpoint_url, attempts=1) as ecs,
    ):
        started, simulated = anyio.current_time(), sim.clock.now()
        await ecs.list_clusters()
        assert anyio.current_time() - started == pytest.approx(0.25 / speed, abs=1e-6)
        assert sim.clock.now() - simulated == pytest.approx(0.25, abs=1e-6)


@pytest.mark.parametrize(
    "options",
    [
        {"throttling": "sometimes"},
        {"buckets": {"service_reads": BucketSpec(1, 1)}},
        {"error_rate": 1.5},
        {"latency_ms": -1},
        {"speed": 0},
    ],
)
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each option words its own message
        Simulator(**options)  # type: ignore[arg-type]


def refusal(caught: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    """HTTP status, error code and message, as the real client parsed them."""
    response = caught.value.response
    error = response["Error"]
    return response["ResponseMetadata"]["HTTPStatusCode"], error["Code"], error["Message"]


@contextmanager
def body_replaced(ecs: ECSClient, operation: str, body: bytes) -> Iterator[None]:
    """The real client sends ``body`` instead of what it serialized (signed as usual)."""

    def replace(request: Any, **_: Any) -> None:
        request.data = io.BytesIO(body)  # streamed: aiohttp refuses large raw bytes

    event = f"request-created.ecs.{operation}"
    ecs.meta.events.register_first(event, replace, unique_id="body_replaced")
    try:
        yield
    finally:
        ecs.meta.events.unregister(event, unique_id="body_replaced")


# ECS's "Tasks per service" quota is 5,000: the largest desired count. A count the
# simulator tried to start (10**20 tasks) used to hold its event loop for good.
OVER_QUOTA = [99_999_999_999_999_999_999, 100_000, MAX_TASKS_PER_SERVICE + 1, -1]


@pytest.mark.parametrize("count", OVER_QUOTA)
async def test_create_service_beyond_the_tasks_per_service_quota_is_refused(
    fleet_ecs: ECSClient, count: int
) -> None:
    with pytest.raises(ClientError) as refused:
        await fleet_ecs.create_service(
            cluster=CLUSTER, serviceName="huge", taskDefinition="web", desiredCount=count
        )
    status, code, _ = refusal(refused)
    assert (status, code) == (400, "InvalidParameterException")
    # The next request is answered, and nothing was created.
    described = await fleet_ecs.describe_services(cluster=CLUSTER, services=["huge"])
    assert described["failures"][0]["reason"] == "MISSING"


@pytest.mark.parametrize("count", OVER_QUOTA)
async def test_update_service_beyond_the_tasks_per_service_quota_is_refused(
    fleet_ecs: ECSClient, count: int
) -> None:
    with pytest.raises(ClientError) as refused:
        await fleet_ecs.update_service(cluster=CLUSTER, service="api", desiredCount=count)
    status, code, message = refusal(refused)
    assert (status, code) == (400, "InvalidParameterException")
    assert "desiredCount" in message
    (api,) = (await fleet_ecs.describe_services(cluster=CLUSTER, services=["api"]))["services"]
    assert api["desiredCount"] == 2
    assert len(api["deployments"]) == 1


async def test_a_service_at_the_quota_starts_and_the_simulator_keeps_answering(
    fleet_ecs: ECSClient,
) -> None:
    created = await fleet_ecs.create_service(
        cluster=CLUSTER,
        serviceName="biggest",
        taskDefinition="web",
        desiredCount=MAX_TASKS_PER_SERVICE,
    )
    assert created["service"]["desiredCount"] == MAX_TASKS_PER_SERVICE
    listed = await fleet_ecs.list_tasks(cluster=CLUSTER, serviceName="biggest", maxResults=100)
    assert len(listed["taskArns"]) == 100
    scaled = await fleet_ecs.update_service(cluster=CLUSTER, service="biggest", desiredCount=0)
    assert scaled["service"]["desiredCount"] == 0


async def test_deeply_nested_body_is_a_serialization_exception(ecs: ECSClient) -> None:
    # 200 KB of brackets: parsing it used to end in a RecursionError and a raw 500.
    deep = b"[" * 100_000 + b"]" * 100_000
    with body_replaced(ecs, "ListClusters", deep), pytest.raises(ClientError) as refused:
        await ecs.list_clusters()
    assert refusal(refused) == (
        400,
        "SerializationException",
        f"The request body nests deeper than {MAX_NESTING} levels.",
    )
    assert (await ecs.list_clusters())["clusterArns"] == []


async def test_brackets_inside_strings_are_not_nesting(ecs: ECSClient) -> None:
    name = "[{" * 40
    with pytest.raises(ClientError) as refused:
        await ecs.create_cluster(clusterName=name)
    assert refusal(refused)[1] == "InvalidParameterException"  # a bad name, not a bad body


async def test_oversized_body_is_refused_before_it_is_read(ecs: ECSClient) -> None:
    huge = b'{"clusterName": "' + b"a" * MAX_BODY_BYTES + b'"}'
    with body_replaced(ecs, "CreateCluster", huge), pytest.raises(ClientError) as refused:
        await ecs.create_cluster(clusterName="small")
    status, code, _ = refusal(refused)
    assert (status, code) == (413, "RequestEntityTooLargeException")
    assert (await ecs.list_clusters())["clusterArns"] == []


async def test_malformed_json_is_a_serialization_exception(ecs: ECSClient) -> None:
    with (
        body_replaced(ecs, "ListClusters", b'{"maxResults": '),
        pytest.raises(ClientError) as refused,
    ):
        await ecs.list_clusters()
    assert refusal(refused)[:2] == (400, "SerializationException")


def _env(chars: int) -> list[dict[str, str]]:
    return [{"name": "BLOB", "value": "x" * chars}]


async def _stop_with_a_long_reason(ecs: ECSClient) -> Any:
    task = (await ecs.list_tasks(cluster=CLUSTER, serviceName="api"))["taskArns"][0]
    return await ecs.stop_task(cluster=CLUSTER, task=task, reason="x" * 256)


async def _tag_past_fifty(ecs: ECSClient) -> Any:
    arn = (await ecs.describe_clusters(clusters=[CLUSTER]))["clusters"][0]["clusterArn"]
    await ecs.tag_resource(resourceArn=arn, tags=[{"key": f"a{n}", "value": ""} for n in range(30)])
    return await ecs.tag_resource(
        resourceArn=arn, tags=[{"key": f"b{n}", "value": ""} for n in range(21)]
    )


def _token(text: bytes) -> str:
    return base64.b64encode(text).decode()


@pytest.mark.parametrize(
    ("call", "code", "words"),
    [
        (
            lambda ecs: ecs.describe_clusters(clusters=["prod"] * 101),
            "InvalidParameterException",
            "at most 100",
        ),
        (
            lambda ecs: ecs.create_service(
                cluster=CLUSTER, serviceName="api v2", taskDefinition="web", desiredCount=1
            ),
            "InvalidParameterException",
            "serviceName",
        ),
        (
            lambda ecs: ecs.create_service(
                cluster=CLUSTER, serviceName="s" * 500_000, taskDefinition="web", desiredCount=1
            ),
            "InvalidParameterException",
            "serviceName",
        ),
        (
            lambda ecs: ecs.create_cluster(clusterName="prod\n"),
            "InvalidParameterException",
            "clusterName",
        ),
        (
            lambda ecs: ecs.create_cluster(
                clusterName="tagged", tags=[{"key": f"k{n}", "value": "v"} for n in range(51)]
            ),
            "InvalidParameterException",
            "tags, value: 51, valid max length: 50",
        ),
        (_tag_past_fifty, "InvalidParameterException", "at most 50 tags"),
        (
            lambda ecs: ecs.create_cluster(
                clusterName="tagged", tags=[{"key": "k" * 129, "value": "v"}]
            ),
            "InvalidParameterException",
            "valid max length: 128",
        ),
        (
            lambda ecs: ecs.register_task_definition(
                family="web",
                containerDefinitions=[
                    {"name": "web", "image": "app:1", "memory": 128, "environment": _env(70_000)}
                ],
            ),
            "ClientException",
            "Max allowed length is '65536' bytes.",
        ),
        (
            lambda ecs: ecs.register_task_definition(
                family="web",
                containerDefinitions=[
                    {"name": f"c{n}", "image": "app:1", "memory": 128} for n in range(11)
                ],
            ),
            "ClientException",
            "at most 10 containers",
        ),
        (
            lambda ecs: ecs.run_task(
                cluster=CLUSTER,
                taskDefinition="web",
                overrides={"containerOverrides": [{"name": "web", "environment": _env(9_000)}]},
            ),
            "InvalidParameterException",
            "Container Overrides length must be at most 8192",
        ),
        (
            lambda ecs: ecs.run_task(cluster=CLUSTER, taskDefinition="web", startedBy="x" * 129),
            "InvalidParameterException",
            "startedBy",
        ),
        (_stop_with_a_long_reason, "InvalidParameterException", "reason"),
        (
            lambda ecs: ecs.update_service(
                cluster=CLUSTER,
                service="api",
                deploymentConfiguration={"minimumHealthyPercent": -1},
            ),
            "InvalidParameterException",
            "minimumHealthyPercent",
        ),
        (
            lambda ecs: ecs.update_service(
                cluster=CLUSTER, service="api", healthCheckGracePeriodSeconds=2**40
            ),
            "InvalidParameterException",
            "healthCheckGracePeriodSeconds",
        ),
        (
            lambda ecs: ecs.describe_task_definition(taskDefinition="web:" + "9" * 5_000),
            "ClientException",
            "Unable to describe task definition.",
        ),
        (
            lambda ecs: ecs.list_services(cluster=CLUSTER, nextToken=_token(b"[" * 50_000)),
            "InvalidParameterException",
            "Invalid token.",
        ),
        (
            lambda ecs: ecs.list_services(cluster=CLUSTER, nextToken=_token(b'{"offset": -5}')),
            "InvalidParameterException",
            "Invalid token.",
        ),
        (
            lambda ecs: ecs.list_services(cluster=CLUSTER, nextToken="jeton-é"),
            "InvalidParameterException",
            "Invalid token.",
        ),
    ],
    ids=[
        "describe-101-clusters",
        "service-name-with-space",
        "service-name-of-500k",
        "cluster-name-with-newline",
        "51-tags",
        "51-tags-in-two-calls",
        "tag-key-of-129",
        "task-definition-over-64k",
        "11-containers",
        "overrides-over-8192",
        "started-by-of-129",
        "stop-reason-of-256",
        "negative-percent",
        "integer-over-32-bits",
        "revision-of-5000-digits",
        "token-nested-deep",
        "token-negative-offset",
        "token-not-ascii",
    ],
)
async def test_what_ecs_refuses_is_refused_in_its_words(
    fleet_ecs: ECSClient, call: Call, code: str, words: str
) -> None:
    with pytest.raises(ClientError) as refused:
        await call(fleet_ecs)
    status, got_code, message = refusal(refused)
    assert (status, got_code) == (400, code)
    assert words in message
    assert len(message) < 2_100  # a huge value is never echoed back whole
    # Nothing changed: the fleet's services are as they were.
    (api,) = (await fleet_ecs.describe_services(cluster=CLUSTER, services=["api"]))["services"]
    assert (api["desiredCount"], len(api["deployments"])) == (2, 1)


def test_the_nesting_limit_is_above_every_valid_request() -> None:
    def depth(shape: Shape, seen: frozenset[str] = frozenset()) -> int:
        if shape.name in seen:
            return 0
        inner = seen | {shape.name}
        if isinstance(shape, StructureShape):
            return 1 + max((depth(m, inner) for m in shape.members.values()), default=0)
        if isinstance(shape, ListShape):
            return 1 + depth(shape.member, inner)
        if isinstance(shape, MapShape):
            return 1 + depth(shape.value, inner)
        return 0

    model = botocore.session.get_session().get_service_model("ecs")
    inputs = [model.operation_model(name).input_shape for name in model.operation_names]
    assert max(depth(shape) for shape in inputs if shape is not None) < MAX_NESTING
