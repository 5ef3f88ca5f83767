"""The virtual-time loop: time jumps only when every task waits on a timer."""

from __future__ import annotations

import socket
import time

import anyio
import pytest

from ecs_deploy_many.core.clock import ScaledClock, VirtualTimeLoop

VIRTUAL = {"loop_factory": VirtualTimeLoop}


def run_virtual(main: object) -> object:
    return anyio.run(main, backend_options=VIRTUAL)  # type: ignore[arg-type]


def test_a_day_of_sleeps_takes_no_real_time_and_keeps_its_order() -> None:
    woke: list[tuple[float, str]] = []

    async def sleeper(seconds: float, name: str) -> None:
        await anyio.sleep(seconds)
        woke.append((anyio.current_time(), name))

    async def main() -> float:
        started = anyio.current_time()
        async with anyio.create_task_group() as group:
            for seconds, name in [(86_400, "day"), (60, "minute"), (3_600, "hour")]:
                group.start_soon(sleeper, seconds, name)
        return started

    # On a real-time loop this would wait a day (pytest's timeout ends it first).
    started = run_virtual(main)
    assert [name for _, name in woke] == ["minute", "hour", "day"]
    assert [round(at - started, 6) for at, _ in woke] == [60, 3_600, 86_400]  # type: ignore[operator]


def test_deadlines_fire_on_virtual_time() -> None:
    clock = ScaledClock(10.0)

    async def main() -> tuple[float, float]:
        started = clock.now()
        with clock.move_on_after(50) as scope:  # 5 s of the loop's time at speed 10
            await clock.sleep(100)
        assert scope.cancelled_caught
        gave_up = clock.now() - started
        with pytest.raises(TimeoutError), clock.fail_after(30):
            await clock.sleep(31)
        return gave_up, clock.now() - started

    gave_up, failed = run_virtual(main)  # type: ignore[misc]
    assert gave_up == pytest.approx(50)
    assert failed == pytest.approx(80)


def test_time_stands_still_while_a_socket_has_data() -> None:
    """A ready socket is work to do: no timer may fire before it is read."""

    async def main() -> tuple[bytes, float]:
        left, right = socket.socketpair()
        with left, right:
            left.setblocking(False)
            right.setblocking(False)
            right.send(b"ready")
            started = anyio.current_time()
            async with anyio.create_task_group() as group:
                group.start_soon(anyio.sleep, 3_600)  # a timer the loop could jump to
                await anyio.wait_readable(left)
                received = left.recv(16)
                elapsed = anyio.current_time() - started
                group.cancel_scope.cancel()
            return received, elapsed

    received, elapsed = run_virtual(main)  # type: ignore[misc]
    assert received == b"ready"
    assert elapsed == 0


def test_without_timers_it_waits_for_real_io() -> None:
    """Nothing to jump to: the loop blocks on the socket as any loop would."""

    async def main() -> bytes:
        left, right = socket.socketpair()
        with left, right:
            left.setblocking(False)

            async def send_later() -> None:
                await anyio.to_thread.run_sync(lambda: (time.sleep(0.05), right.send(b"late")))

            async with anyio.create_task_group() as group:
                group.start_soon(send_later)
                await anyio.wait_readable(left)
                return left.recv(16)

    assert run_virtual(main) == b"late"
