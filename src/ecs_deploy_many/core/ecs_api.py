"""ECS's API as botocore models it: what RegisterTaskDefinition accepts, and what not.

The model ships with botocore, so a new ECS feature is accepted the day botocore knows
it. Loaded on first use: reading it costs tens of milliseconds.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping
from typing import Any

import botocore.session
from botocore.model import ServiceModel

__all__ = [
    "READ_ONLY_KEYS",
    "ecs_service_model",
    "registerable_keys",
    "registration_input",
    "task_size",
    "task_size_rule",
]

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


_TASK_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(vcpu|gb)?\s*", re.IGNORECASE)
_PER_UNIT = {"cpu": ("vcpu", "vCPU"), "memory": ("gb", "GB")}


def task_size(text: str, kind: str) -> str | None:
    """A task's ``cpu`` or ``memory`` as DescribeTaskDefinition gives it back: units or
    MiB as digits. ECS takes ``"1 vCPU"`` and ``"2 GB"`` too but converts them when it
    registers, so a definition written that way would never equal the registered one.
    None when ``text`` is not a size of ``kind``."""
    found = _TASK_SIZE.fullmatch(text)
    unit = _PER_UNIT[kind][0]
    if found is None or (found[2] is not None and found[2].lower() != unit):
        return None
    amount = float(found[1]) * (1024 if found[2] else 1)
    return str(int(amount)) if amount == int(amount) and amount > 0 else None


def task_size_rule(kind: str) -> str:
    """How ``task_size`` takes a size of ``kind``, for an error message."""
    word = _PER_UNIT[kind][1]
    return f"a whole number ({'cpu units' if kind == 'cpu' else 'MiB'}) or '<n> {word}'"
