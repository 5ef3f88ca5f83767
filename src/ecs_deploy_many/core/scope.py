"""Where and as whom a target's AWS calls go."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AwsScope"]


@dataclass(frozen=True)
class AwsScope:
    """Where and as whom a target's calls go. Targets with equal scopes share a client."""

    region: str | None = None
    profile: str | None = None
    assume_role: str | None = None
    endpoint_url: str | None = None
