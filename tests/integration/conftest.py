"""A simulator on an ephemeral port and the real aioboto3 client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.server import Simulator
from tests.integration.helpers import REGION, SPEED, ecs_client, fleet_spec

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

# Tests may import the client helper from here as well as from helpers.
__all__ = ["REGION", "ecs_client"]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    # strict_output: a response the real client would not expect fails the test loudly.
    async with Simulator(speed=SPEED, strict_output=True) as running:
        yield running


@pytest.fixture
async def ecs(sim: Simulator) -> AsyncIterator[ECSClient]:
    async with ecs_client(sim.endpoint_url, attempts=1) as client:
        yield client


@pytest.fixture
async def fleet_sim() -> AsyncIterator[Simulator]:
    """A simulator holding the steady services of ``fleet_spec()``."""
    fleet = Fleet.model_validate(fleet_spec())
    async with Simulator(fleet, speed=SPEED, strict_output=True) as running:
        yield running


@pytest.fixture
async def fleet_ecs(fleet_sim: Simulator) -> AsyncIterator[ECSClient]:
    async with ecs_client(fleet_sim.endpoint_url, attempts=1) as client:
        yield client
