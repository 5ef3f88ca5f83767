"""What the simulator was asked and how it answered, for tests and benchmarks.

Benchmarks compare tools by the API budget they spend, so every request that names an
operation counts as a call, throttled and failed ones included: AWS counts them too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["SimStats", "StatsRecorder"]


def _frozen(counter: Counter[str]) -> Mapping[str, int]:
    return MappingProxyType(dict(sorted(counter.items())))


@dataclass(frozen=True)
class SimStats:
    """A snapshot of the counters.

    ``calls``, ``throttled`` and ``injected_errors`` are keyed by operation; ``errors``
    by error code, counting every non-200 answer (throttling and injected faults too);
    ``callers`` by the access key id that signed the call (shows which credentials a
    tool really used, e.g. an assumed role's); ``updates`` by service ARN, counting the
    UpdateService calls ECS accepted (shows that a service got each change once).
    """

    calls: Mapping[str, int] = field(default_factory=dict)
    throttled: Mapping[str, int] = field(default_factory=dict)
    injected_errors: Mapping[str, int] = field(default_factory=dict)
    errors: Mapping[str, int] = field(default_factory=dict)
    callers: Mapping[str, int] = field(default_factory=dict)
    updates: Mapping[str, int] = field(default_factory=dict)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def total_throttled(self) -> int:
        return sum(self.throttled.values())

    @property
    def total_injected_errors(self) -> int:
        return sum(self.injected_errors.values())

    @property
    def total_errors(self) -> int:
        return sum(self.errors.values())

    def to_json(self) -> dict[str, Any]:
        """The body of ``GET /_sim/stats``."""
        return {
            "calls": dict(self.calls),
            "throttled": dict(self.throttled),
            "injected_errors": dict(self.injected_errors),
            "errors": dict(self.errors),
            "callers": dict(self.callers),
            "updates": dict(self.updates),
            "totals": {
                "calls": self.total_calls,
                "throttled": self.total_throttled,
                "injected_errors": self.total_injected_errors,
                "errors": self.total_errors,
            },
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> SimStats:
        """Read a ``GET /_sim/stats`` body back, e.g. in a benchmark talking to a server."""
        return cls(
            calls=dict(body["calls"]),
            throttled=dict(body["throttled"]),
            injected_errors=dict(body["injected_errors"]),
            errors=dict(body["errors"]),
            callers=dict(body.get("callers", {})),
            updates=dict(body.get("updates", {})),
        )


class StatsRecorder:
    """Counters the server bumps as it answers; cheap enough for every request."""

    def __init__(self) -> None:
        self._calls: Counter[str] = Counter()
        self._throttled: Counter[str] = Counter()
        self._injected: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._callers: Counter[str] = Counter()
        self._updates: Counter[str] = Counter()

    def call(self, operation: str, *, caller: str = "unsigned") -> None:
        self._calls[operation] += 1
        self._callers[caller] += 1

    def throttled(self, operation: str) -> None:
        self._throttled[operation] += 1

    def injected(self, operation: str) -> None:
        self._injected[operation] += 1

    def error(self, code: str) -> None:
        self._errors[code] += 1

    def updated(self, service_arn: str) -> None:
        self._updates[service_arn] += 1

    def snapshot(self) -> SimStats:
        return SimStats(
            calls=_frozen(self._calls),
            throttled=_frozen(self._throttled),
            injected_errors=_frozen(self._injected),
            errors=_frozen(self._errors),
            callers=_frozen(self._callers),
            updates=_frozen(self._updates),
        )

    def reset(self) -> None:
        for counter in (
            self._calls,
            self._throttled,
            self._injected,
            self._errors,
            self._callers,
            self._updates,
        ):
            counter.clear()
