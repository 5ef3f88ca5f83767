"""A fault-injecting HTTP proxy in front of the simulator, for faults a test must place.

The simulator's ``error_rate`` fails calls at random; some tests need one operation to
fail at a chosen moment (five DescribeServices in a row, every read until a simulated
time). The real client talks HTTP to this proxy, which answers those calls with ECS's
error shape and forwards everything else to the simulator untouched.
"""

from __future__ import annotations

import json
import math
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from ecs_deploy_many.core.clock import Clock

_TARGET = "X-Amz-Target"
_HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection"}


@dataclass
class _Fault:
    operation: str
    remaining: float
    until: float
    status: int
    code: str
    carried_out: bool


class FaultProxy:
    """Forwards ECS calls to ``upstream`` except those a fault rule answers."""

    def __init__(self, upstream: str, clock: Clock) -> None:
        self._upstream = upstream
        self._clock = clock
        self._faults: list[_Fault] = []
        self.failed: Counter[str] = Counter()
        self.url = ""

    def fail(
        self,
        operation: str,
        *,
        times: int | None = None,
        until: float = math.inf,
        status: int = 500,
        code: str = "ServerException",
        carried_out: bool = False,
    ) -> None:
        """Answer the next ``times`` calls of ``operation`` (all, when None) made before
        simulated time ``until`` with ``code``; with ``carried_out``, only after the
        simulator has carried the call out (the answer is lost, the change is made)."""
        remaining = math.inf if times is None else float(times)
        self._faults.append(_Fault(operation, remaining, until, status, code, carried_out))

    def heal(self) -> None:
        """Forward every call again."""
        self._faults.clear()

    def _fault_for(self, operation: str) -> _Fault | None:
        now = self._clock.now()
        for fault in self._faults:
            if fault.operation == operation and fault.remaining > 0 and now < fault.until:
                fault.remaining -= 1
                return fault
        return None

    async def _handle(self, request: web.Request) -> web.Response:
        operation = request.headers.get(_TARGET, "").rpartition(".")[2]
        body = await request.read()
        fault = self._fault_for(operation)
        if fault is not None and not fault.carried_out:
            return self._error(operation, fault)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._session.post(self._upstream, data=body, headers=headers) as answer:
            if fault is not None:
                return self._error(operation, fault)
            return web.Response(
                status=answer.status,
                body=await answer.read(),
                content_type=answer.content_type,
                headers={"x-amzn-RequestId": answer.headers.get("x-amzn-RequestId", "")},
            )

    def _error(self, operation: str, fault: _Fault) -> web.Response:
        self.failed[operation] += 1
        return web.Response(
            status=fault.status,
            body=json.dumps({"__type": fault.code, "message": "Injected by the test"}),
            content_type="application/x-amz-json-1.1",
            headers={"x-amzn-RequestId": str(uuid.uuid4())},
        )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FaultProxy]:
        app = web.Application()
        app.router.add_post("/", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        async with aiohttp.ClientSession() as self._session:
            try:
                await web.TCPSite(runner, "127.0.0.1", 0).start()
                host, port = runner.addresses[0][:2]
                self.url = f"http://{host}:{port}"
                yield self
            finally:
                await runner.cleanup()
