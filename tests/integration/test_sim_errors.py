"""What a caller gets for things that are not there, as botocore ClientError codes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.helpers import CLUSTER, REGION

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

pytestmark = pytest.mark.anyio

Call = Callable[["ECSClient"], Awaitable[Any]]


@pytest.mark.parametrize(
    ("call", "code", "message"),
    [
        (
            lambda ecs: ecs.describe_services(cluster="nowhere", services=["api"]),
            "ClusterNotFoundException",
            "Cluster not found.",
        ),
        (
            lambda ecs: ecs.list_tasks(cluster="nowhere"),
            "ClusterNotFoundException",
            "Cluster not found.",
        ),
        (
            lambda ecs: ecs.update_service(cluster=CLUSTER, service="nothing", desiredCount=1),
            "ServiceNotFoundException",
            "Service not found.",
        ),
        (
            lambda ecs: ecs.describe_task_definition(taskDefinition="nothing"),
            "ClientException",
            "Unable to describe task definition.",
        ),
        (
            lambda ecs: ecs.describe_task_definition(taskDefinition="web:99"),
            "ClientException",
            "Unable to describe task definition.",
        ),
        (
            lambda ecs: ecs.update_service(cluster=CLUSTER, service="api", taskDefinition="no:1"),
            "ClientException",
            None,
        ),
        (
            lambda ecs: ecs.run_task(cluster=CLUSTER, taskDefinition="nothing"),
            "ClientException",
            None,
        ),
    ],
    ids=[
        "describe-services-cluster",
        "list-tasks-cluster",
        "update-service",
        "describe-family",
        "describe-revision",
        "update-to-missing-taskdef",
        "run-missing-taskdef",
    ],
)
async def test_missing_resources_are_errors(
    fleet_ecs: ECSClient, call: Call, code: str, message: str | None
) -> None:
    with pytest.raises(ClientError) as failed:
        await call(fleet_ecs)
    error = failed.value.response["Error"]
    assert error["Code"] == code
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    if message is not None:
        assert error["Message"] == message


async def test_modelled_errors_are_typed_exceptions(fleet_ecs: ECSClient) -> None:
    with pytest.raises(fleet_ecs.exceptions.ServiceNotFoundException):
        await fleet_ecs.update_service(cluster=CLUSTER, service="nothing", desiredCount=1)


async def test_missing_services_are_failures_not_errors(fleet_ecs: ECSClient) -> None:
    described = await fleet_ecs.describe_services(cluster=CLUSTER, services=["api", "ghost"])
    assert [s["serviceName"] for s in described["services"]] == ["api"]
    assert described["failures"] == [
        {"arn": f"arn:aws:ecs:{REGION}:123456789012:service/{CLUSTER}/ghost", "reason": "MISSING"}
    ]


async def test_describe_services_takes_at_most_ten(fleet_ecs: ECSClient) -> None:
    ten = await fleet_ecs.describe_services(cluster=CLUSTER, services=["api"] * 10)
    assert len(ten["services"]) == 10
    with pytest.raises(ClientError) as refused:
        await fleet_ecs.describe_services(cluster=CLUSTER, services=["api"] * 11)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
