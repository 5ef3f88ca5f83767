"""`ecs-deploy` as a new user meets it: the help teaches, and no arguments show it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def test_help_has_the_original_examples_and_image_notes() -> None:
    result = subprocess.run([BIN / "ecs-deploy", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    help_text = result.stdout
    assert "Image format: [domain[:port]/][repo/...]image[:tag|@sha256:digest]" in help_text
    assert "private.registry.com:8000/repo/image:tag" in help_text
    assert 'else "latest"' in help_text
    assert "ecs-deploy -c staging -n core-service -to 0.1.899 -i ignore" in help_text
    assert "ecs-deploy -d open-door-task -i docker.repo.com/doorman:17" in help_text
    assert "130 interrupted" in help_text


def test_no_arguments_show_the_help_and_exit_3() -> None:
    """As the original: the whole usage on stderr, exit 3, nothing else happens."""
    result = subprocess.run([BIN / "ecs-deploy"], capture_output=True, text=True)
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.startswith("Usage: ecs-deploy [OPTIONS]")
    assert "Examples:" in result.stderr
    assert "-n, --service-name" in result.stderr
