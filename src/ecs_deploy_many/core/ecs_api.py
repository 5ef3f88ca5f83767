"""ECS's API as botocore models it: what RegisterTaskDefinition accepts, and what not.

The model ships with botocore, so a new ECS feature is accepted the day botocore knows
it. Loaded on first use: reading it costs tens of milliseconds.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from typing import Any

import botocore.session
from botocore.model import ServiceModel

__all__ = ["READ_ONLY_KEYS", "ecs_service_model", "registerable_keys", "registration_input"]

READ_ONLY_KEYS = frozenset(
    {
        "taskDefinitionArn",
        "revision",
        "status",
        "requiresAttributes",
        "compatibilities",
        "registeredAt",
        "registeredBy",
        "deregisteredAt",
        "deleteRequestedAt",
    }
)
"""Keys DescribeTaskDefinition returns that RegisterTaskDefinition rejects."""


@functools.cache
def ecs_service_model() -> ServiceModel:
    """ECS's API model as botocore ships it, loaded on first use rather than at import."""
    return botocore.session.get_session().get_service_model("ecs")


@functools.cache
def registerable_keys() -> frozenset[str]:
    """Every key RegisterTaskDefinition accepts, so no new ECS feature is silently dropped."""
    shape = ecs_service_model().operation_model("RegisterTaskDefinition").input_shape
    assert shape is not None  # the operation has had an input since ECS began
    return frozenset(shape.members)


def registration_input(described: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``described`` holding only what RegisterTaskDefinition accepts."""
    keys = registerable_keys()
    return {key: copy.deepcopy(value) for key, value in described.items() if key in keys}
