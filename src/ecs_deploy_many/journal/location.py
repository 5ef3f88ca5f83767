"""Where run journals live: a local directory, or an S3 prefix for ephemeral runners.

The default is the user's state directory, so runs from any working directory are
listed together: ``$ECS_DEPLOY_MANY_STATE_DIR`` when set, else
``$XDG_STATE_HOME/ecs-deploy-many/runs``, else ``~/.local/state/ecs-deploy-many/runs``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ecs_deploy_many.core.errors import JournalError

__all__ = ["DirectoryLocation", "JournalLocation", "S3Location", "default_directory", "locate"]

STATE_DIR_VARIABLE = "ECS_DEPLOY_MANY_STATE_DIR"


@dataclass(frozen=True)
class DirectoryLocation:
    """Runs under a directory: ``<path>/<run id>/<shard>-<runner>.jsonl``."""

    path: Path

    def __str__(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class S3Location:
    """Runs under an S3 prefix: ``<prefix>/<run id>/<shard>-<runner>/<batch>.jsonl``."""

    bucket: str
    prefix: str
    """Without a trailing slash; may be empty."""

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


JournalLocation = DirectoryLocation | S3Location


def default_directory(environ: Mapping[str, str]) -> Path:
    """The default journal directory (see the module's docstring)."""
    if environ.get(STATE_DIR_VARIABLE):
        return Path(environ[STATE_DIR_VARIABLE])
    state = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "ecs-deploy-many" / "runs"


def locate(given: str | None, environ: Mapping[str, str]) -> JournalLocation:
    """The location ``--journal`` names (a path or ``s3://bucket/prefix``), or the default."""
    if given is None:
        return DirectoryLocation(default_directory(environ))
    if given.startswith("s3://"):
        bucket, _, prefix = given.removeprefix("s3://").partition("/")
        if not bucket:
            raise JournalError(f"--journal {given}: name a bucket, as in s3://bucket/prefix")
        return S3Location(bucket, prefix.strip("/"))
    return DirectoryLocation(Path(given).expanduser())
