"""The simulator reached without a socket: an HTTP session class for aiobotocore.

botocore still builds, signs and serializes each request and parses each answer; only
the HTTP hop is left out, the way httpx's ASGI transport calls an app in-process. The
request goes to ``EcsServer.answer``, the code the HTTP front end runs, so throttling,
latency, faults and validation are the same. Without sockets an event loop knows when
every task waits on time, which is what lets ``VirtualTimeLoop`` jump ahead safely.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from typing import Any

from aiobotocore.awsrequest import AioAWSResponse
from botocore.awsrequest import AWSPreparedRequest
from botocore.compat import HTTPHeaders

from ecs_deploy_many.sim.server import CONTENT_TYPE, EcsServer

__all__ = ["InProcessSession", "in_process"]


class _Body:
    """The part of aiohttp's response aiobotocore reads: the whole body, once."""

    def __init__(self, content: bytes) -> None:
        self._content = content

    async def read(self) -> bytes:
        return self._content


class InProcessSession:
    """aiobotocore's HTTP session interface, answered by one simulator's ``EcsServer``.

    aiobotocore creates it with its connection options, which mean nothing here.
    """

    def __init__(self, server: EcsServer, **_connection_options: Any) -> None:
        self._server = server

    async def __aenter__(self) -> InProcessSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def close(self) -> None:
        return None

    async def send(self, request: AWSPreparedRequest) -> AioAWSResponse:
        answer = await self._server.answer(
            _header(request, "X-Amz-Target"), _header(request, "Authorization"), _body(request)
        )
        headers = HTTPHeaders()
        headers["content-type"] = CONTENT_TYPE
        headers["x-amzn-requestid"] = answer.request_id
        return AioAWSResponse(request.url, answer.status, headers, _Body(answer.body))


def in_process(server: EcsServer) -> Callable[..., InProcessSession]:
    """For ``AioConfig(http_session_cls=...)``: clients whose every call ``server``
    answers in-process, whatever their endpoint URL."""
    return functools.partial(InProcessSession, server)


def _header(request: AWSPreparedRequest, name: str) -> str:
    value = request.headers.get(name, "")
    return value.decode() if isinstance(value, bytes) else str(value)


def _body(request: AWSPreparedRequest) -> bytes:
    body: Any = request.body
    if isinstance(body, io.IOBase):
        body = body.read()
    if isinstance(body, str):
        return body.encode()
    return bytes(body or b"")
