"""SIGINT and SIGTERM while a command deploys and writes its outputs: held, never default.

Python's defaults (KeyboardInterrupt for SIGINT, death for SIGTERM) strike wherever the
process happens to be: in the live view's teardown, in a socket's close, half-way
through a report. ``HeldSignals`` replaces them for as long as its block runs: each
signal is recorded and queued, the run's watcher reads the queue while the run goes on
and decides what the signal means, and a signal that arrives at any other moment waits
until the outputs are written.

The previous handlers come back when the block ends, unless the process ends with the
command (a console script, marked by ``ProcessEnd`` as the click context's object): then
the signals stay held through the event loop's teardown and the interpreter's shutdown,
which would otherwise meet a late signal with a traceback or die by it.
"""

from __future__ import annotations

import asyncio
import math
import signal
import sys
import threading
from contextlib import suppress
from types import FrameType, TracebackType

import anyio
import asyncclick as click
from anyio.streams.memory import MemoryObjectReceiveStream

__all__ = ["HeldSignals", "ProcessEnd", "cancel_on_signal"]

HELD = (signal.SIGINT, signal.SIGTERM)


class ProcessEnd:
    """The click context object of a console script: the process ends with the command."""


class HeldSignals:
    """A ``with`` block (inside the event loop) during which SIGINT and SIGTERM are held.

    ``received`` lists every signal that arrived; iterating over the object yields them
    as they arrive, each once, to whichever task reads. ``until_exit``: keep holding them
    after the block, until the process exits.
    """

    def __init__(self, *, until_exit: bool = False) -> None:
        self.received: list[signal.Signals] = []
        self._until_exit = until_exit
        self._send, self._receive = anyio.create_memory_object_stream[signal.Signals](math.inf)
        self._previous: dict[signal.Signals, object] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> HeldSignals:
        self._loop = asyncio.get_running_loop()
        # Only the main thread may handle signals; elsewhere the defaults never apply.
        if threading.current_thread() is threading.main_thread():
            for signum in HELD:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._until_exit and self._previous:
            # Blocked, a late signal stays pending: interpreter shutdown resets handlers to
            # the defaults, and the process exits before it could be delivered.
            signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
        else:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)  # type: ignore[arg-type]
        self._send.close()
        self._receive.close()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        """Record the signal and hand it to the loop; nothing here may raise or print."""
        received = signal.Signals(signum)
        self.received.append(received)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._queue, received)

    def _queue(self, received: signal.Signals) -> None:
        with suppress(anyio.ClosedResourceError):  # the block ended: nothing reads now
            self._send.send_nowait(received)

    def __aiter__(self) -> MemoryObjectReceiveStream[signal.Signals]:
        return self._receive


async def cancel_on_signal(signals: HeldSignals, scope: anyio.CancelScope, what: str) -> None:
    """Cancel ``scope`` at the first signal; later ones are absorbed while ``what`` stops.

    The lines go to ``sys.stderr`` as it is now: above the live view while that is up.
    """
    async for received in signals:
        if scope.cancel_called:
            click.echo(f"{received.name} again: already stopping", file=sys.stderr)
        else:
            click.echo(f"{received.name}: stopping {what}", file=sys.stderr)
            scope.cancel()
