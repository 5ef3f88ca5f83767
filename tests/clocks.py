"""A clock for tests of code that takes one: time moves only when the test (or a sleep) moves it."""

from __future__ import annotations

START = 1_700_000_000.0


class ManualClock:
    """Simulated time under the test's control; ``sleep`` advances it instantly."""

    def __init__(self, start: float = START, speed: float = 1.0) -> None:
        self.t = start
        self.speed = speed

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds
