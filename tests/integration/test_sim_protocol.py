"""The wire protocol: what any ECS client sees before the state model answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from botocore.exceptions import ClientError
from structlog.testing import capture_logs

from ecs_deploy_many.core.clock import ScaledClock
from ecs_deploy_many.sim.server import TARGET_PREFIX, InputChecker, Simulator
from tests.clocks import START
from tests.integration.helpers import ecs_client

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

pytestmark = pytest.mark.anyio


async def raw_call(
    sim: Simulator, target: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], str]:
    """POST a request botocore would refuse to send: status, JSON body, request id."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            sim.endpoint_url,
            data=body,
            headers={
                "X-Amz-Target": target,
                "Content-Type": "application/x-amz-json-1.1",
                **(headers or {}),
            },
        ) as response,
    ):
        return (
            response.status,
            await response.json(content_type=None),
            response.headers.get("x-amzn-RequestId", ""),
        )


async def test_region_comes_from_the_signature(sim: Simulator, ecs: ECSClient) -> None:
    await ecs.create_cluster(clusterName="prod")
    async with ecs_client(sim.endpoint_url, "us-west-2") as oregon:
        assert (await oregon.list_clusters())["clusterArns"] == []
        described = await oregon.describe_clusters(clusters=["prod"])
        assert described["failures"][0]["reason"] == "MISSING"
        await oregon.create_cluster(clusterName="prod")
        (oregon_arn,) = (await oregon.list_clusters())["clusterArns"]
    (ireland_arn,) = (await ecs.list_clusters())["clusterArns"]
    assert ireland_arn.startswith("arn:aws:ecs:eu-west-1:")
    assert oregon_arn.startswith("arn:aws:ecs:us-west-2:")


async def test_unsigned_calls_land_in_us_east_1(sim: Simulator) -> None:
    status, body, _ = await raw_call(
        sim, TARGET_PREFIX + "CreateCluster", b'{"clusterName": "anon"}'
    )
    assert status == 200
    assert body["cluster"]["clusterArn"].startswith("arn:aws:ecs:us-east-1:")
    async with ecs_client(sim.endpoint_url, "us-east-1") as virginia:
        assert (await virginia.list_clusters())["clusterArns"] == [body["cluster"]["clusterArn"]]


async def test_every_answer_carries_a_request_id(ecs: ECSClient) -> None:
    ok = await ecs.list_clusters()
    with pytest.raises(ClientError) as failed:
        await ecs.describe_services(cluster="nowhere", services=["api"])
    ids = {
        ok["ResponseMetadata"]["RequestId"],
        failed.value.response["ResponseMetadata"]["RequestId"],
    }
    assert len(ids) == 2
    assert "" not in ids


@pytest.mark.parametrize(
    "target",
    [
        TARGET_PREFIX + "Frobnicate",
        "AmazonEC2ContainerServiceV20141113",
        "DynamoDB_20120810.ListTables",
        "",
    ],
)
async def test_unknown_operation(sim: Simulator, target: str) -> None:
    status, body, request_id = await raw_call(sim, target, b"{}")
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    assert request_id


async def test_operation_the_simulator_does_not_model(sim: Simulator) -> None:
    checker = InputChecker()
    missing = sorted(
        op
        for op in ("CreateCapacityProvider", "PutAccountSetting", "SubmitTaskStateChange")
        if checker.knows(op) and op not in sim.state.OPERATIONS
    )
    status, body, _ = await raw_call(sim, TARGET_PREFIX + missing[0], b"{}")
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    assert "does not model" in body["message"]


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        # Not JSON, or JSON of the wrong types: ECS's deserializer rejects it.
        (b'{"services": ["api"', "SerializationException", "Malformed JSON"),
        (b'["api"]', "SerializationException", "must be an object"),
        (b'{"services": "api"}', "SerializationException", "Invalid type for parameter services"),
        (b'{"services": ["api"], "cluster": 7}', "SerializationException", "parameter cluster"),
        # Well-formed but invalid: ECS's own validation.
        (b"{}", "InvalidParameterException", 'Missing required parameter in input: "services"'),
        (
            b'{"services": ["api"], "include": ["EVERYTHING"]}',
            "InvalidParameterException",
            "include[0]",
        ),
    ],
)
async def test_malformed_input_is_rejected_like_ecs(
    sim: Simulator, body: bytes, code: str, says: str
) -> None:
    status, answer, _ = await raw_call(sim, TARGET_PREFIX + "DescribeServices", body)
    assert (status, answer["__type"]) == (400, code)
    assert says in answer["message"]


async def test_unknown_members_and_nulls_are_ignored(sim: Simulator) -> None:
    # ECS's frontend drops members it does not know, so newer clients keep working.
    status, body, _ = await raw_call(
        sim,
        TARGET_PREFIX + "CreateCluster",
        b'{"clusterName": "c", "fromTheFuture": 1, "tags": null}',
    )
    assert status == 200
    assert body["cluster"]["clusterName"] == "c"


async def test_a_bug_in_the_state_model_is_a_logged_server_exception(
    sim: Simulator, ecs: ECSClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(operation: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("state model bug")

    monkeypatch.setattr(sim.state, "handle", broken)
    with capture_logs() as logs, pytest.raises(ClientError) as failed:
        await ecs.list_clusters()
    assert failed.value.response["Error"]["Code"] == "ServerException"
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert logs[0]["event"] == "sim.unexpected_error"
    assert logs[0]["operation"] == "ListClusters"


async def test_strict_output_catches_responses_outside_the_model(
    sim: Simulator, ecs: ECSClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sim.state, "handle", lambda *args: {"clusterArns": [], "surprise": 1})
    with pytest.raises(ClientError, match="surprise"):
        await ecs.list_clusters()


async def test_binds_loopback_on_an_ephemeral_port() -> None:
    async with Simulator() as one, Simulator() as two:
        assert one.endpoint_url.startswith("http://127.0.0.1:")
        assert one.endpoint_url != two.endpoint_url
    with pytest.raises(RuntimeError, match="not running"):
        _ = one.endpoint_url


async def test_the_in_process_transport_answers_as_http_does() -> None:
    """The same calls, one simulator over HTTP and its twin in-process: equal answers,
    errors included, and no port opened for the in-process one."""

    async def session(ecs: ECSClient) -> list[Any]:
        answers: list[Any] = []
        calls: list[Any] = [
            lambda: ecs.create_cluster(clusterName="prod"),
            lambda: ecs.register_task_definition(
                family="api",
                containerDefinitions=[{"name": "api", "image": "api:1", "memory": 256}],
            ),
            lambda: ecs.create_service(
                cluster="prod", serviceName="api", taskDefinition="api:1", desiredCount=2
            ),
            lambda: ecs.describe_services(cluster="prod", services=["api", "gone"]),
            lambda: ecs.describe_services(cluster="nowhere", services=["api"]),
            lambda: ecs.update_service(cluster="prod", service="api", desiredCount=-1),
        ]
        for call in calls:
            try:
                answer = await call()
            except ClientError as error:
                answers.append(
                    (error.response["Error"], error.response["ResponseMetadata"]["HTTPStatusCode"])
                )
            else:
                answer.pop("ResponseMetadata")
                answers.append(answer)
        return answers

    async with (
        Simulator(seed=7, strict_output=True, clock=ScaledClock(start=START)) as over_http,
        ecs_client(over_http.endpoint_url, attempts=1) as http_client,
    ):
        via_http = await session(http_client)
    async with (
        Simulator(
            seed=7, strict_output=True, clock=ScaledClock(start=START), listen=False
        ) as in_process,
        ecs_client(in_process, attempts=1) as in_process_client,
    ):
        via_transport = await session(in_process_client)
        assert in_process.stats().total_calls == len(via_transport)
    assert via_transport == via_http
    assert [type(answer) for answer in via_http].count(tuple) == 2  # both refusals compared
