"""Webhook notifications of a run: its start, its finish, each target that failed.

The run never waits on a webhook. Events are queued (``Notifier`` is an ``Observer``)
and a background task per webhook posts them in order with aiohttp. An attempt is
bounded (``ATTEMPT_TIMEOUT``), a failed one (a 5xx or 429 answer, a connection error, a
timeout) is retried with exponential backoff while the delivery's budget
(``DELIVERY_BUDGET``) lasts, and once the run is over the pending deliveries get at
most ``DRAIN_TIMEOUT`` before they are dropped. These are I/O bounds on the event loop's
time, not the run's clock, which a rehearsal speeds up. A failed delivery is logged,
never raised: a webhook cannot change a run's result or exit code.

A webhook URL is a secret (a Slack incoming-webhook URL is its own credential): the
caller adds it to the run's ``Redactor``, and here a webhook is only ever called
``notification #1 (slack)``.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import anyio
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ecs_deploy_many.core.events import EventName, TargetEvent
from ecs_deploy_many.core.redact import Redactor
from ecs_deploy_many.core.result import Status
from ecs_deploy_many.plan.model import Notification, NotificationEvent

__all__ = [
    "ATTEMPT_TIMEOUT",
    "DELIVERY_BUDGET",
    "DRAIN_TIMEOUT",
    "SCHEMA",
    "FailedTarget",
    "Notifier",
]

SCHEMA = "ecs-deploy-many/notification/1"
ATTEMPT_TIMEOUT = 5.0
"""Seconds one POST may take, connecting included."""
DELIVERY_BUDGET = 20.0
"""Seconds one message may take, every attempt and backoff included."""
DRAIN_TIMEOUT = 10.0
"""Seconds the end of a run waits for the deliveries still pending."""
FIRST_BACKOFF = 0.5
_RETRIED_STATUSES = frozenset({429})  # and every 5xx


@dataclass(frozen=True)
class FailedTarget:
    """A target of ``failed_targets``: its name, final status and why."""

    name: str
    status: str
    reason: str


@dataclass(frozen=True)
class _Message:
    """What one notification says; each webhook's format makes a body of it."""

    event: NotificationEvent
    verdict: str | None = None
    counts: Mapping[str, int] | None = None
    failed: Sequence[FailedTarget] = ()
    halted: str | None = None
    report: str | None = None


class Notifier:
    """Queues the run's notifications; ``delivering`` posts them in the background."""

    def __init__(
        self,
        webhooks: Sequence[Notification],
        *,
        run_id: str,
        plan: str,
        targets: int,
        now: Callable[[], str],
        redactor: Redactor,
    ) -> None:
        self._webhooks = list(webhooks)
        self._run_id, self._plan, self._targets = run_id, plan, targets
        self._now = now
        self._redactor = redactor
        self._queues: list[tuple[MemoryObjectSendStream[Any], MemoryObjectReceiveStream[Any]]]
        self._queues = [anyio.create_memory_object_stream(math.inf) for _ in self._webhooks]
        self._failed_targets: set[str] = set()
        self._log = structlog.get_logger("ecs_deploy_many")

    # -- what the run says ------------------------------------------------------------

    def started(self) -> None:
        self._send(_Message("start"))

    def __call__(self, event: TargetEvent) -> None:
        """The run's observer: a target's failure, once per target."""
        if event.event is not EventName.TARGET_FINISHED:
            return
        status = Status(event.facts["status"])
        name = event.target.name
        if not status.counts_as_failure or name in self._failed_targets:
            return
        self._failed_targets.add(name)
        reason = str(event.facts.get("error") or status)
        self._send(_Message("target_failed", failed=[FailedTarget(name, str(status), reason)]))

    def finished(
        self,
        verdict: str,
        counts: Mapping[str, int] | None,
        failed: Sequence[FailedTarget],
        *,
        halted: str | None,
        report: str | None,
    ) -> None:
        self._send(_Message("finish", verdict, counts, failed, halted, report))

    def _send(self, message: _Message) -> None:
        for webhook, (send, _) in zip(self._webhooks, self._queues, strict=True):
            if message.event in webhook.on:
                send.send_nowait(message)

    # -- bodies -----------------------------------------------------------------------

    def _body(self, message: _Message, kind: str) -> dict[str, Any]:
        """The JSON posted for ``message``: the documented schema, or Slack's."""
        failed = [
            {"name": f.name, "status": f.status, "reason": self._redactor.scrub(f.reason)}
            for f in message.failed
        ]
        document: dict[str, Any] = {
            "schema": SCHEMA,
            "event": message.event,
            "run_id": self._run_id,
            "plan": self._plan,
            "timestamp": self._now(),
            "targets": self._targets,
            "verdict": message.verdict,
            "counts": dict(message.counts) if message.counts is not None else None,
            "failed_targets": failed,
            "halted": self._redactor.scrub(message.halted),
            "report": message.report,
        }
        return document if kind == "json" else _slack(document)

    # -- delivery ---------------------------------------------------------------------

    async def _deliver_all(self, index: int, http: aiohttp.ClientSession) -> None:
        webhook = self._webhooks[index]
        _, receive = self._queues[index]
        name = f"notification #{index + 1} ({webhook.format})"
        async with receive:
            async for message in receive:
                try:
                    await self._deliver(name, webhook, message, http)
                except Exception as error:  # a bug here must not reach the run
                    self._log.error(
                        "notification_failed",
                        webhook=name,
                        notification=message.event,
                        error=type(error).__name__,
                    )

    async def _deliver(
        self, name: str, webhook: Notification, message: _Message, http: aiohttp.ClientSession
    ) -> None:
        """Post ``message``, retrying while the delivery budget lasts; log how it ended."""
        event, body = message.event, self._body(message, webhook.format)
        attempts, backoff, problem = 0, FIRST_BACKOFF, ""

        def failed(why: str) -> None:
            self._log.warning(
                "notification_failed",
                webhook=name,
                notification=event,
                attempts=attempts,
                error=why,
            )

        try:
            with anyio.move_on_after(DELIVERY_BUDGET):
                while True:
                    attempts += 1
                    retry, problem = await _attempt(http, webhook.url, body)
                    if not problem:
                        self._log.debug("notification_sent", webhook=name, notification=event)
                        return
                    if not retry:
                        break
                    self._log.debug(
                        "notification_retried", webhook=name, notification=event, error=problem
                    )
                    await anyio.sleep(backoff)
                    backoff *= 2
        except anyio.get_cancelled_exc_class():
            failed(f"{problem or 'no answer yet'}; dropped as the run ended")
            raise
        failed(problem or f"no answer within {DELIVERY_BUDGET:g} s")

    @asynccontextmanager
    async def delivering(self) -> AsyncIterator[Notifier]:
        """Deliver the messages while the block runs; then give the pending ones at most
        ``DRAIN_TIMEOUT`` seconds, even when the block was cancelled, and drop the rest."""
        done = anyio.Event()

        async def deliver_everything(http: aiohttp.ClientSession) -> None:
            async with anyio.create_task_group() as workers:
                for index in range(len(self._webhooks)):
                    workers.start_soon(self._deliver_all, index, http)
            done.set()

        async with aiohttp.ClientSession() as http, anyio.create_task_group() as group:
            group.start_soon(deliver_everything, http)
            try:
                yield self
            finally:
                for send, _ in self._queues:
                    send.close()
                with anyio.CancelScope(shield=True), anyio.move_on_after(DRAIN_TIMEOUT):
                    await done.wait()
                if not done.is_set():
                    self._log.warning(
                        "notifications_dropped",
                        reason=f"still pending {DRAIN_TIMEOUT:g} s after the run ended",
                    )
                group.cancel_scope.cancel()


async def _attempt(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[bool, str]:
    """One POST: (whether to retry, what went wrong or "").

    What went wrong never quotes the error's text, which may hold the URL.
    """
    try:
        with anyio.fail_after(ATTEMPT_TIMEOUT):
            async with http.post(url, json=body) as response:
                await response.read()
    except TimeoutError:
        return True, f"no answer within {ATTEMPT_TIMEOUT:g} s"
    except aiohttp.ClientError as error:
        return True, f"{type(error).__name__}"
    status = response.status
    if status < 300:
        return False, ""
    retry = status >= 500 or status in _RETRIED_STATUSES
    return retry, f"HTTP {status}"


def _slack(document: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack-compatible body: ``text`` for notifications, one section block to read."""
    run = f"run {document['run_id']} of {document['plan']}"
    event = document["event"]
    if event == "start":
        headline = f"{run} started: {document['targets']} targets"
    elif event == "target_failed":
        headline = f"{run}: a target failed"
    else:
        counts = document["counts"] or {}
        shown = ", ".join(f"{count} {status}" for status, count in counts.items() if count)
        headline = f"{run} {document['verdict']}" + (f": {shown}" if shown else "")
    lines = [headline]
    if document["halted"]:
        lines.append(str(document["halted"]))
    lines += [f"• {f['name']}: {f['status']}: {f['reason']}" for f in document["failed_targets"]]
    if document["report"]:
        lines.append(f"report: {document['report']}")
    text = "\n".join(lines).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
