"""The simulator's HTTP front end: ECS's JSON-1.1 wire protocol, served by aiohttp.

One ``POST /`` per API call, the operation in ``X-Amz-Target``, the region in the SigV4
credential scope. Between the socket and the state model sit the parts of ECS a client
notices before any business logic: input validation against botocore's ECS model, the
documented throttling buckets, latency and injected server faults. ``/_sim/*`` routes
expose counters and the clock to tests and benchmarks.
"""

from __future__ import annotations

import functools
import json
import os
import random
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Self

import structlog
from aiohttp import web
from botocore.model import (
    ListShape,
    MapShape,
    OperationModel,
    Shape,
    StringShape,
    StructureShape,
)
from botocore.validate import ParamValidator

from ecs_deploy_many.core.clock import Clock, ScaledClock
from ecs_deploy_many.core.ecs_api import ecs_service_model
from ecs_deploy_many.core.ratelimit import BucketSpec
from ecs_deploy_many.sim.fleet import Fleet, load_fleet
from ecs_deploy_many.sim.state import SimError, SimState
from ecs_deploy_many.sim.stats import SimStats, StatsRecorder
from ecs_deploy_many.sim.throttling import Throttle

__all__ = [
    "DEFAULT_REGION",
    "TARGET_PREFIX",
    "Answer",
    "EcsServer",
    "InputChecker",
    "Simulator",
    "StateModel",
    "WireError",
    "region_of",
]

TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
CONTENT_TYPE = "application/x-amz-json-1.1"
# The endpoint of a simulator without a port: ".invalid" never resolves (RFC 6761).
IN_PROCESS_URL = "http://ecs-simulator.invalid"
# What the SDKs assume when nothing else names a region; unsigned calls land here.
DEFAULT_REGION = "us-east-1"
_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/[^/,\s]+/aws4_request")
_CALLER = re.compile(r"Credential=([^/,\s]+)/")

# Limits on what a request may hold before it is parsed. ECS documents neither, so these
# are the simulator's own, far above any valid request: the largest body ECS takes is a
# RegisterTaskDefinition of at most 64 KiB, and the deepest input in botocore's ECS model
# nests 9 levels. They keep one request's cost bounded (a deep body would otherwise end
# in a RecursionError, a huge one in memory).
MAX_BODY_BYTES = 1024 * 1024
MAX_NESTING = 32
# How much of a wrong value an error message repeats.
_SHOWN_CHARS = 80
_MESSAGE_CHARS = 2000
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
# The range of botocore's integer shapes: Java's int and long, as ECS's frontend reads them.
_INTEGER_RANGE = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}

log = structlog.get_logger(__name__)


class StateModel(Protocol):
    """What the server needs from the state model (``SimState`` in production)."""

    OPERATIONS: frozenset[str]
    account_id: str

    def handle(self, operation: str, region: str, params: dict[str, Any]) -> dict[str, Any]: ...


class WireError(Exception):
    """An answer other than 200, in ECS's error format."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def region_of(authorization: str) -> str:
    """The region a SigV4 signature was made for; ``DEFAULT_REGION`` if unsigned."""
    match = _SCOPE.search(authorization)
    return match.group(1) if match else DEFAULT_REGION


def caller_of(authorization: str) -> str:
    """The access key id that signed a request (not secret: it names the caller)."""
    match = _CALLER.search(authorization)
    return match.group(1) if match else "unsigned"


@functools.cache
def _ecs_operations() -> dict[str, OperationModel]:
    """botocore's ECS operations, read once per process from the shared model."""
    model = ecs_service_model()
    return {name: model.operation_model(name) for name in model.operation_names}


class InputChecker:
    """Checks request bodies (and, in strict mode, responses) against botocore's ECS model.

    Error codes follow what ECS's JSON frontend answers [unconfirmed for every case]:
    a body that is not JSON, or a member of the wrong type, fails deserialization before
    ECS sees it (``SerializationException``); a missing required member, a value below
    its minimum or outside its enum is ECS's own validation (``InvalidParameterException``,
    the code real ECS uses for "Tasks cannot be empty." and friends), and so is an
    integer outside the 32- or 64-bit range of its shape [unconfirmed: the frontend may
    answer SerializationException there]. A body nested deeper than ``MAX_NESTING`` is
    not parsed at all (``SerializationException``). Unknown members and nulls are
    dropped, as the frontend ignores them, so newer clients keep working.
    """

    def __init__(self) -> None:
        self._operations = _ecs_operations()
        self._validator = ParamValidator()

    def knows(self, operation: str) -> bool:
        return operation in self._operations

    def parse(self, operation: str, body: bytes) -> dict[str, Any]:
        """The operation's parameters from a raw body, or a WireError saying what is wrong."""
        if _nesting(body) > MAX_NESTING:
            raise WireError(
                400,
                "SerializationException",
                f"The request body nests deeper than {MAX_NESTING} levels.",
            )
        try:
            params = json.loads(body) if body.strip() else {}
        except ValueError as error:
            raise WireError(400, "SerializationException", f"Malformed JSON: {error}") from None
        if not isinstance(params, dict):
            raise WireError(400, "SerializationException", "The request body must be an object.")
        shape = self._operations[operation].input_shape
        if shape is None:
            return {}
        problems: list[str] = []
        cleaned: dict[str, Any] = _known_members(params, shape, "", problems)
        report = self._validator.validate(cleaned, shape)
        if report.has_errors():
            problems[:0] = report.generate_report().splitlines()
        if problems:
            wrong_type = any(line.startswith("Invalid type") for line in problems)
            code = "SerializationException" if wrong_type else "InvalidParameterException"
            raise WireError(400, code, _shortened("; ".join(problems), _MESSAGE_CHARS))
        return cleaned

    def check_output(self, operation: str, result: dict[str, Any]) -> None:
        """Raise when a response strays from the model: catches state-model bugs in tests."""
        shape = self._operations[operation].output_shape
        if shape is None:
            return
        report = self._validator.validate(result, shape)
        if report.has_errors():
            problems = report.generate_report().replace("\n", "; ")
            raise WireError(500, "ServerException", f"Invalid {operation} response: {problems}")


def _nesting(body: bytes) -> int:
    """How deep a JSON body's objects and arrays nest, without parsing it (brackets in
    strings do not count); stops counting once past ``MAX_NESTING``."""
    depth = deepest = 0
    for token in _TOKENS.finditer(body):
        bracket = token[0]
        if bracket in (b"{", b"["):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_NESTING:
                break
        elif bracket in (b"}", b"]"):
            depth -= 1
    return deepest


def _shortened(text: str, limit: int = _SHOWN_CHARS) -> str:
    """``text``, cut to ``limit`` characters: an error never echoes a huge value back."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _known_members(value: Any, shape: Shape, path: str, problems: list[str]) -> Any:
    """A copy of ``value`` without members or nulls the model does not know; notes what
    breaks the model's bounds (botocore's validator checks only minimums)."""
    _check_bounds(value, shape, path or "input", problems)
    if isinstance(shape, StructureShape) and isinstance(value, dict) and not shape.is_document_type:
        members = shape.members
        return {
            key: _known_members(item, members[key], f"{path}.{key}".lstrip("."), problems)
            for key, item in value.items()
            if key in members and item is not None
        }
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [
            _known_members(item, shape.member, f"{path}[{i}]", problems)
            for i, item in enumerate(value)
        ]
    if isinstance(shape, MapShape) and isinstance(value, dict):
        return {
            key: _known_members(item, shape.value, f"{path}.{key}", problems)
            for key, item in value.items()
        }
    # JSON 1.1 timestamps are epoch seconds, which the validator already accepts as is.
    return value


def _check_bounds(value: Any, shape: Shape, path: str, problems: list[str]) -> None:
    """Enum values, maximum lengths and values, and the range of 32- and 64-bit integers."""
    enum = shape.enum if isinstance(shape, StringShape) else []
    if enum and isinstance(value, str) and value not in enum:
        problems.append(
            f"Invalid value for parameter {path}, value: {_shortened(value)}, "
            f"valid values: {', '.join(enum)}"
        )
    most = shape.metadata.get("max")
    if most is not None and isinstance(value, (str, list, dict)) and len(value) > most:
        problems.append(
            f"Invalid length for parameter {path}, value: {len(value)}, valid max length: {most}"
        )
    low, high = _INTEGER_RANGE.get(shape.type_name, (None, None))
    if isinstance(value, int) and low is not None and high is not None:
        high = min(high, most) if most is not None else high
        if not low <= value <= high:
            problems.append(
                f"Invalid value for parameter {path}, value: {_shortened(str(value))}, "
                f"valid range: {low} to {high}"
            )


async def _body(request: web.Request) -> bytes:
    """The request body, refused past ``MAX_BODY_BYTES`` without reading the rest.

    ECS's answer to an oversized body is not documented [unconfirmed]; an HTTP front end
    answers 413, here in ECS's error shape so the client reads a code and a message.
    """
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large() from None


def _too_large() -> WireError:
    return WireError(
        413,
        "RequestEntityTooLargeException",
        f"The request body is larger than {MAX_BODY_BYTES} bytes.",
    )


@dataclass(frozen=True)
class Answer:
    """ECS's answer to one call: the HTTP status and the JSON body."""

    status: int
    body: bytes
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


class EcsServer:
    """Answers ECS API calls from a state model, with ECS's throttling, latency and faults.

    ``latency_ms`` is the latency of the ECS being modelled, in milliseconds at speed 1.
    It is slept on the simulator's clock, so at ``speed=S`` a call waits ``latency_ms / S``
    real milliseconds: API latency keeps its ratio to poll intervals, deadlines and
    bucket refills, which is what a sped-up rehearsal or benchmark needs to stay honest.
    ``error_rate`` answers that share of calls (drawn from a generator seeded with
    ``seed``) with a 500 ServerException before the state model sees them.
    """

    def __init__(
        self,
        state: StateModel,
        clock: Clock,
        throttle: Throttle,
        *,
        latency_ms: float = 0.0,
        error_rate: float = 0.0,
        seed: int = 0,
        strict_output: bool = False,
    ) -> None:
        if latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, got {latency_ms}")
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError(f"error_rate must be between 0 and 1, got {error_rate}")
        self.state = state
        self.clock = clock
        self.throttle = throttle
        self.stats = StatsRecorder()
        self._latency_s = latency_ms / 1000.0
        self._error_rate = error_rate
        self._faults = random.Random(seed)
        self._strict_output = strict_output
        self._checker = InputChecker()

    def app(self) -> web.Application:
        """The aiohttp application: the API at ``POST /``, the simulator's own routes beside it."""
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/", self._api)
        app.router.add_get("/_sim/stats", self._stats)
        app.router.add_post("/_sim/reset-stats", self._reset_stats)
        app.router.add_get("/_sim/clock", self._clock)
        return app

    async def _api(self, request: web.Request) -> web.Response:
        try:
            body = await _body(request)
        except WireError as error:
            answer = self._refused(error)
        else:
            answer = await self.answer(
                request.headers.get("X-Amz-Target", ""),
                request.headers.get("Authorization", ""),
                body,
            )
        return web.Response(
            status=answer.status,
            body=answer.body,
            content_type=CONTENT_TYPE,
            headers={"x-amzn-RequestId": answer.request_id},
        )

    async def answer(self, target: str, authorization: str, body: bytes) -> Answer:
        """One API call, from its ``X-Amz-Target`` and ``Authorization`` headers and body:
        the whole of ECS's answer, whether it came over HTTP or from an in-process client."""
        if len(body) > MAX_BODY_BYTES:
            return self._refused(_too_large())
        try:
            result = await self._result(target, authorization, body)
        except WireError as error:
            return self._refused(error)
        return Answer(200, json.dumps(result, separators=(",", ":")).encode())

    def _refused(self, error: WireError) -> Answer:
        self.stats.error(error.code)
        body = {"__type": error.code, "message": error.message}
        return Answer(error.status, json.dumps(body, separators=(",", ":")).encode())

    async def _result(self, target: str, authorization: str, body: bytes) -> dict[str, Any]:
        operation = self._operation(target)
        self.stats.call(operation, caller=caller_of(authorization))
        if self._latency_s:
            await self.clock.sleep(self._latency_s)
        region = region_of(authorization)
        if not self.throttle.allow(self.state.account_id, region, operation):
            self.stats.throttled(operation)
            raise WireError(400, "ThrottlingException", "Rate exceeded")
        if self._error_rate and self._faults.random() < self._error_rate:
            self.stats.injected(operation)
            raise WireError(500, "ServerException", "Injected fault: please try again later.")
        params = self._checker.parse(operation, body)
        try:
            result = self.state.handle(operation, region, params)
        except SimError as error:
            raise WireError(error.status, error.code, error.message) from None
        except Exception:
            log.exception("sim.unexpected_error", operation=operation, region=region)
            raise WireError(500, "ServerException", "Service unavailable.") from None
        if self._strict_output:
            self._checker.check_output(operation, result)
        if operation == "UpdateService":
            self.stats.updated(result["service"]["serviceArn"])
        return result

    def _operation(self, target: str) -> str:
        prefix, _, operation = target.rpartition(".")
        if f"{prefix}." != TARGET_PREFIX or not self._checker.knows(operation):
            raise WireError(400, "UnknownOperationException", f"Unknown operation {target!r}.")
        if operation not in self.state.OPERATIONS:
            raise WireError(
                400, "UnknownOperationException", f"The ECS simulator does not model {operation}."
            )
        return operation

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.snapshot().to_json())

    async def _reset_stats(self, request: web.Request) -> web.Response:
        self.stats.reset()
        return web.json_response(self.stats.snapshot().to_json())

    async def _clock(self, request: web.Request) -> web.Response:
        return web.json_response({"now": self.clock.now(), "speed": self.clock.speed})


class Simulator:
    """A running simulator on a local port, for tests, ``sim serve`` and rehearsals.

    ``async with Simulator(speed=100) as sim:`` serves on an ephemeral port of 127.0.0.1
    until the block ends; with ``listen=False`` it opens no port, and clients reach it
    only in-process (``sim.transport.in_process(sim.server)``). ``sim.clock`` is the
    clock the state model runs on (``speed`` times real time, or the ``clock`` given, e.g.
    one a test moves by hand); hand it to an in-process engine so both agree on time.
    ``buckets`` overrides ECS's bucket sizes per category (tests use small ones);
    ``strict_output`` turns any response that strays from the ECS model into a
    ServerException, so tests catch state-model drift.
    """

    def __init__(
        self,
        fleet: Fleet | str | os.PathLike[str] | None = None,
        *,
        speed: float = 1.0,
        seed: int = 0,
        throttling: Literal["aws", "off"] = "off",
        buckets: Mapping[str, BucketSpec] | None = None,
        latency_ms: float = 0.0,
        error_rate: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        strict_output: bool = False,
        clock: Clock | None = None,
        listen: bool = True,
    ) -> None:
        if throttling not in ("aws", "off"):
            raise ValueError(f"throttling must be 'aws' or 'off', got {throttling!r}")
        self.clock = clock or ScaledClock(speed)
        if isinstance(fleet, (str, os.PathLike)):
            fleet = load_fleet(fleet)
        self.state = SimState(self.clock, fleet, seed=seed)
        self.server = EcsServer(
            self.state,
            self.clock,
            Throttle(self.clock, buckets, enabled=throttling == "aws"),
            latency_ms=latency_ms,
            error_rate=error_rate,
            seed=seed,
            strict_output=strict_output,
        )
        self._host = host
        self._port = port
        self._listen = listen
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def endpoint_url(self) -> str:
        """``http://HOST:PORT`` of the running server, for ``endpoint_url=``; without a
        port, a name that resolves nowhere, so only the in-process session reaches it."""
        if self._url is None:
            raise RuntimeError("the simulator is not running")
        return self._url

    def stats(self) -> SimStats:
        return self.server.stats.snapshot()

    def reset_stats(self) -> None:
        self.server.stats.reset()

    async def __aenter__(self) -> Self:
        if not self._listen:
            self._url = IN_PROCESS_URL
            return self
        # No access log: it would cost more than answering the call.
        runner = web.AppRunner(self.server.app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        host, port = runner.addresses[0][:2]
        self._runner = runner
        self._url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        runner, self._runner, self._url = self._runner, None, None
        if runner is not None:
            await runner.cleanup()
