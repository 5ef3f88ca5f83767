"""One clock for every sleep, deadline, poll interval and rate limit.

The simulator and the engine share a clock. At ``speed=20`` one real second is twenty
simulated seconds, so a rehearsal or a benchmark keeps every ratio of a real-time run
(deadlines, bake times, token-bucket refills) while finishing twenty times sooner.
All durations given to and returned by a clock are in simulated seconds.

A clock measures real time by its event loop's ``time()``. On ``VirtualTimeLoop`` that
time is virtual: it jumps to the next timer whenever nothing is ready to run, so a run
of simulated hours takes only the CPU it needs, and its outcome never depends on how
fast or how loaded the machine is (tests and instant rehearsals run on it).
"""

from __future__ import annotations

import asyncio
import selectors
import time
from datetime import UTC, datetime
from typing import Protocol

import anyio

__all__ = ["Clock", "ScaledClock", "VirtualTimeLoop", "real_clock", "utc_iso"]


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
        self._start_real = _loop_time()
        self._start_sim = time.time() if start is None else start

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        return self._start_sim + (_loop_time() - self._start_real) * self._speed

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


def _loop_time() -> float:
    """The running event loop's time (virtual on ``VirtualTimeLoop``); outside a loop,
    the monotonic clock every standard loop reads."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


class _IdleSelector(selectors.DefaultSelector):
    """A selector that, instead of blocking until the next timer, lets its loop jump there.

    The loop asks it to wait ``timeout`` seconds only when no callback is ready. If no
    file descriptor is ready either, every task is waiting on a timer (or on I/O that
    has not arrived), so virtual time moves to the earliest timer at once. With no
    timer at all (``timeout=None``) it blocks for real, e.g. on a subprocess's pipe.
    """

    def __init__(self) -> None:
        super().__init__()
        self.jumped = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            return super().select(None)
        self.jumped += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on virtual time, which advances only when every task waits on it.

    Like trio's autojumping ``MockClock``: sleeps, deadlines and cancel scopes keep their
    order and their simulated durations, but take no real time. Real I/O still works;
    time stands still while a callback or a readable socket is ready. Work in threads or
    other processes is not waited for: time may jump while it runs, so code run on this
    loop keeps its waits on the loop (the project runs no threads while deploying).
    """

    def __init__(self) -> None:
        self._idle = _IdleSelector()
        self._start = time.monotonic()
        super().__init__(self._idle)

    def time(self) -> float:
        return self._start + self._idle.jumped


def real_clock() -> ScaledClock:
    """The clock of a run against real AWS."""
    return ScaledClock(1.0)


def utc_iso(epoch: float, *, timespec: str = "milliseconds") -> str:
    """``epoch`` as ISO 8601 in UTC with a ``Z``: how every output writes a moment."""
    moment = datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec=timespec)
    return moment.replace("+00:00", "Z")
