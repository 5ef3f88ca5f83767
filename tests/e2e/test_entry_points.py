"""The installed console scripts start and say who they are."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ecs_deploy_many import __version__

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("script", ["ecs-deploy-many", "ecs-deploy"])
def test_version(script: str) -> None:
    out = subprocess.run(
        [BIN / script, "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == f"{script} {__version__}"


@pytest.mark.parametrize("script", ["ecs-deploy-many", "ecs-deploy"])
def test_help(script: str) -> None:
    result = subprocess.run([BIN / script, "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "Usage:" in result.stdout
