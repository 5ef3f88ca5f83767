"""One clock for every sleep, deadline, poll interval and rate limit.

The simulator and the engine share a clock. At ``speed=20`` one real second is twenty
simulated seconds, so a rehearsal or a benchmark keeps every ratio of a real-time run
(deadlines, bake times, token-bucket refills) while finishing twenty times sooner.
All durations given to and returned by a clock are in simulated seconds.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

import anyio

__all__ = ["Clock", "ScaledClock", "real_clock", "utc_iso"]


class Clock(Protocol):
    """What the engine and the simulator need from time."""

    @property
    def speed(self) -> float:
        """Simulated seconds per real second."""
        ...

    def now(self) -> float:
        """Simulated wall time, in epoch seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` of simulated time."""
        ...

    def fail_after(self, seconds: float | None) -> anyio.CancelScope:
        """A cancel scope raising TimeoutError after ``seconds`` of simulated time."""
        ...

    def move_on_after(self, seconds: float | None, *, shield: bool = False) -> anyio.CancelScope:
        """A cancel scope that gives up quietly after ``seconds`` of simulated time."""
        ...


class ScaledClock:
    """Real time sped up by a constant factor, anchored at construction."""

    def __init__(self, speed: float = 1.0, *, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError(f"clock speed must be positive, got {speed}")
        self._speed = float(speed)
        self._start_real = time.monotonic()
        self._start_sim = time.time() if start is None else start

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        return self._start_sim + (time.monotonic() - self._start_real) * self._speed

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds) / self._speed)

    def _real(self, seconds: float | None) -> float | None:
        return None if seconds is None else max(0.0, seconds) / self._speed

    def fail_after(self, seconds: float | None) -> anyio.CancelScope:
        # anyio.fail_after returns a context manager wrapping a CancelScope; typed loosely
        # upstream, so we expose the documented CancelScope behaviour.
        return anyio.fail_after(self._real(seconds))  # type: ignore[return-value]

    def move_on_after(self, seconds: float | None, *, shield: bool = False) -> anyio.CancelScope:
        return anyio.move_on_after(self._real(seconds), shield=shield)

    def __repr__(self) -> str:
        return f"ScaledClock(speed={self._speed:g})"


def real_clock() -> ScaledClock:
    """The clock of a run against real AWS."""
    return ScaledClock(1.0)


def utc_iso(epoch: float, *, timespec: str = "milliseconds") -> str:
    """``epoch`` as ISO 8601 in UTC with a ``Z``: how every output writes a moment."""
    moment = datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec=timespec)
    return moment.replace("+00:00", "Z")
