"""Fixtures shared by every test: a clean AWS environment, journals kept in the test's
directory, and the anyio backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from ecs_deploy_many.core.clock import VirtualTimeLoop


@pytest.fixture(autouse=True)
def _clean_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may see the developer's AWS credentials, profile or endpoint."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(autouse=True)
def _journals_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs journal into the test's own directory, never the developer's state directory."""
    monkeypatch.setenv("ECS_DEPLOY_MANY_STATE_DIR", str(tmp_path / "runs"))


@pytest.fixture
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """asyncio on virtual time, so no test's outcome depends on the machine's speed or load.

    Tests marked ``real_time`` wait on another process (a subprocess, moto's server),
    whose answers take real time the virtual loop would not wait for.
    """
    if request.node.get_closest_marker("real_time"):
        return "asyncio", {}
    return "asyncio", {"loop_factory": VirtualTimeLoop}


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Example keys and the region, as a deployer finds them in its environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Each test ends with structlog's defaults back: a command run in-process logs to
    the stream the test captured, which is closed once that test is over."""
    yield
    structlog.reset_defaults()
