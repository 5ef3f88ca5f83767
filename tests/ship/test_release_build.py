"""The release build: ``make dist`` builds the sdist and the wheel and twine accepts them;
the wheel, installed into a fresh virtual environment, works outside the source tree
(its entry points, its modules, the version) and rehearses an example plan."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.ship.once import built_once

# What the tests share is built once per session (pip installs from the package index).
pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_time,
    pytest.mark.timeout(600),
]

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
# What the installed commands run with: nothing of this test run's Python settings.
ENV = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}


def _make_dist(directory: Path) -> None:
    """``make dist`` into ``directory/dist``, with the tools of this test run; its output
    in ``directory/make.log``."""
    done = subprocess.run(
        ["make", "--no-print-directory", "dist", f"BIN={Path(sys.executable).parent}", "DEV=",
         f"DIST_DIR={directory / 'dist'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (directory / "make.log").write_text(done.stdout)


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_once(tmp_path_factory, "dist", _make_dist) / "dist"


@pytest.fixture(scope="session")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment holding the wheel and its dependencies: its bin."""

    def install(directory: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", directory / "venv"], check=True, env=ENV)
        subprocess.run(
            [directory / "venv" / "bin" / "python", "-m", "pip", "install", "--quiet",
             "--disable-pip-version-check", next(dist.glob("*.whl"))],
            check=True, env=ENV, timeout=600,
        )  # fmt: skip

    return built_once(tmp_path_factory, "installed-wheel", install) / "venv" / "bin"


def test_make_dist_builds_one_sdist_and_one_wheel_of_the_version(dist: Path) -> None:
    assert (dist.parent / "make.log").read_text().count("PASSED") == 2  # twine, each file
    assert sorted(p.name for p in dist.iterdir()) == [
        f"ecs_deploy_many-{VERSION}-py3-none-any.whl",
        f"ecs_deploy_many-{VERSION}.tar.gz",
    ]


def test_wheel_holds_the_package_its_type_marker_and_both_commands(dist: Path) -> None:
    with zipfile.ZipFile(next(dist.glob("*.whl"))) as wheel:
        names = set(wheel.namelist())
        entry_points = wheel.read(f"ecs_deploy_many-{VERSION}.dist-info/entry_points.txt")
    assert "ecs_deploy_many/py.typed" in names
    assert "ecs_deploy_many/cli/completion.py" in names
    assert not any(n.startswith(("tests/", "bench/", "deploy-plans/")) for n in names)
    assert "ecs-deploy-many = ecs_deploy_many.cli.many:main" in entry_points.decode()
    assert "ecs-deploy = ecs_deploy_many.cli.single:main" in entry_points.decode()


@pytest.mark.parametrize("command", ["ecs-deploy-many", "ecs-deploy"])
def test_installed_commands_say_the_pyproject_version(installed: Path, command: str) -> None:
    done = subprocess.run(
        [installed / command, "--version"], capture_output=True, text=True, env=ENV, check=True
    )
    assert done.stdout.strip() == f"{command} {VERSION}"


def test_installed_wheel_rehearses_an_example_plan_outside_the_source_tree(
    installed: Path, tmp_path: Path
) -> None:
    shutil.copy(ROOT / "deploy-plans" / "demo.yaml", tmp_path / "plan.yaml")
    shutil.copy(ROOT / "deploy-plans" / "sim" / "demo-fleet.yaml", tmp_path / "fleet.yaml")
    where = subprocess.run(
        [installed / "python", "-c", "import ecs_deploy_many; print(ecs_deploy_many.__file__)"],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert Path(where).is_relative_to(installed.parent)
    done = subprocess.run(
        [installed / "ecs-deploy-many", "plan.yaml", "--simulate", "--speed", "1000",
         "--fleet", "fleet.yaml", "--no-journal", "--report", "report.json",
         "--log-format", "json"],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["result"] == "succeeded"
    assert report["counts"]["succeeded"] == 11
