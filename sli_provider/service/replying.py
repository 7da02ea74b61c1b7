"""Exactly one started event and one finished event per task event, whatever fails or shuts down.

"Exactly one" is about what this process sends: each reply is handed to the sender once (the
sender repeats it only where it certainly did not arrive, adapters/delivery.py, and
:func:`until_delivered` keeps doing so while Keptn refuses it for now), and only a confirmed
finished event counts as answered (:attr:`TaskReplies.delivery`). A reply that could not be
delivered is logged as an error and counted in ``sli_provider_replies_undelivered_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sli_provider.adapters.delivery import Delivery, ReplyNotDelivered
from sli_provider.keptn.envelope import KeptnEvent, Result, Scope, Status, build_reply
from sli_provider.metrics import ServiceMetrics

log = logging.getLogger(__name__)

SendEvent = Callable[[Mapping[str, Any]], Awaitable[None]]

# The first wait before a reply Keptn refused for now is tried again; it doubles up to a maximum.
FIRST_REDELIVERY_WAIT = 0.5
# A finished event sent while shutting down must not hang the shutdown.
LAST_REPLY_TIMEOUT = 10.0
# The longest a started event is held back for work that says when its own requests are out
# (a few ms against a responsive Keptn and Prometheus): work that waits longer before its
# requests, e.g. for a run's last push, must not keep Keptn from seeing that the task started.
STARTED_EVENT_MAX_HOLD = 0.05


@dataclass(frozen=True)
class Finished:
    """What goes into the finished event: outcome and task-specific payload."""

    status: Status
    result: Result
    message: str
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Answered:
    """What became of one event's replies: what an ingress that acknowledges waits for."""

    finished: Finished
    started_delivered: bool
    finished_delivered: bool


def until_delivered(
    send: SendEvent, *, max_wait: float, on_retry: Callable[[], object] = lambda: None
) -> SendEvent:
    """``send`` that tries a reply again, with a growing wait up to ``max_wait``, for as long as
    it fails with a refusal that passes (``retry_later``: Keptn's API restarting, NATS
    reconnecting), until it is delivered or the task is cancelled (shutting down). A reply that
    may have left, or that Keptn refused for good, is not tried again here."""

    async def send_until_delivered(reply: Mapping[str, Any]) -> None:
        wait = min(FIRST_REDELIVERY_WAIT, max_wait)
        while True:
            try:
                await send(reply)
                return
            except ReplyNotDelivered as exc:
                if not exc.retry_later:
                    raise
                pause = random.uniform(wait / 2, wait)  # noqa: S311 - jitter, not a secret
                log.warning(
                    "%s not delivered, trying again in %.1f s: %s",
                    reply.get("type"),
                    pause,
                    exc,
                    extra={"fields": {"triggeredid": reply.get("triggeredid")}},
                )
                on_retry()
                await asyncio.sleep(pause)
                wait = min(wait * 2, max_wait)

    return send_until_delivered


class TaskReplies:
    """The replies to one triggered event; ``run`` guarantees the finished event is tried once."""

    def __init__(
        self,
        *,
        trigger: KeptnEvent,
        task: str,
        send: SendEvent,
        source: str,
        metrics: ServiceMetrics,
        last_reply_timeout: float = LAST_REPLY_TIMEOUT,
    ) -> None:
        self._trigger = trigger
        self._task = task
        self._send = send
        self._source = source
        self._metrics = metrics
        self._last_reply_timeout = last_reply_timeout
        self._scope = Scope.from_data(trigger.data)
        self._started_send: asyncio.Task[bool] | None = None
        self._started_begun = False
        self._started_delivered = False
        self._finished: Finished | None = None
        self._finished_delivered = False

    @property
    def delivery(self) -> Delivery:
        """After ``run``: whether the finished event was confirmed (an event that went through
        ``run`` always had replies due)."""
        if self._finished is not None and self._finished_delivered:
            return Delivery.DELIVERED
        return Delivery.NOT_DELIVERED

    @property
    def answered(self) -> Answered | None:
        """After ``run``: the finished event and whether each reply was delivered."""
        if self._finished is None:
            return None
        return Answered(self._finished, self._started_delivered, self._finished_delivered)

    async def run(
        self,
        work: Callable[[], Awaitable[Finished]],
        *,
        on_shutdown: Callable[[], Finished],
        on_error: Callable[[Exception], Finished],
        hold_started_until: asyncio.Event | None = None,
    ) -> Finished:
        """Send the started event, do the work, send the finished event; cancellation still gets
        a finished event.

        The started event is sent by a task of its own, and the finished event goes out only once
        that send is over, delivered or not, so Keptn never sees them swapped. Which goes first,
        the started event or the work, is the one choice:

        - without ``hold_started_until`` the work waits until the started event's send is over;
        - with it the work begins at once, and the started event is held until the work sets it
          (its own requests are out, so the reply does not compete with them on the event loop),
          until the work ends, or for STARTED_EVENT_MAX_HOLD seconds, whichever comes first."""
        self._metrics.in_flight.labels(self._task).inc()
        try:
            try:
                finished = await self._started_and_work(work, on_error, hold_started_until)
            except asyncio.CancelledError:
                await self._end_started(hold_started_until)
                await self._last_reply(on_shutdown())
                raise
            # Cancelled from here on, the finished event is already on its way: not sent again.
            await self._finish(finished)
            return finished
        finally:
            started_send = self._started_send
            if started_send is not None and not started_send.done():  # never left running
                started_send.cancel()
            self._metrics.in_flight.labels(self._task).dec()

    async def _started_and_work(
        self,
        work: Callable[[], Awaitable[Finished]],
        on_error: Callable[[Exception], Finished],
        hold: asyncio.Event | None,
    ) -> Finished:
        """The work's outcome, once the started event's send is over too."""
        try:
            started = build_reply(
                self._trigger, kind="started", source=self._source, scope=self._scope
            )
            self._started_send = asyncio.create_task(self._send_started(started, hold))
            if hold is None:
                await asyncio.wait([self._started_send])
            finished = await work()
        except Exception as exc:  # the finished event must still go out
            log.exception("unexpected error while handling %s", self._trigger.type)
            finished = on_error(exc)
        if self._started_send is not None:
            if hold is not None:
                hold.set()  # the work is over: nothing left to make room for
            self._started_delivered = await self._started_send
        return finished

    async def _send_started(self, started: Mapping[str, Any], hold: asyncio.Event | None) -> bool:
        if hold is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STARTED_EVENT_MAX_HOLD):
                    await hold.wait()
        self._started_begun = True
        return await self._deliver(started, "started")

    async def _end_started(self, hold: asyncio.Event | None) -> None:
        """Shutting down: a started event still being sent is given up, and awaited so that its
        send is over before the finished event goes out. One that has not left yet (still held,
        or its task not yet run) goes now, within the bound of a last reply, so that the finished
        event does not go alone."""
        started_send = self._started_send
        if started_send is None:
            return
        if not self._started_begun:
            if hold is not None:
                hold.set()
            await asyncio.wait([started_send], timeout=self._last_reply_timeout)
            if started_send.done() and not started_send.cancelled():
                self._started_delivered = started_send.result()
                return
        started_send.cancel()
        # wait(), not await: the send's own cancellation is expected and not ours to re-raise;
        # a second cancellation of this task still ends it here.
        await asyncio.wait([started_send])
        if not started_send.cancelled():
            self._started_delivered = started_send.result()

    async def _last_reply(self, finished: Finished) -> None:
        """The finished event of cancelled work, within a bound; past it the send is cancelled and
        awaited here, so nothing is left running (a second cancellation ends it at once)."""
        try:
            async with asyncio.timeout(self._last_reply_timeout):
                await self._finish(finished)
        except TimeoutError:
            log.error(
                "%s finished event not confirmed within %g s of shutting down; given up",
                self._task,
                self._last_reply_timeout,
            )

    async def _finish(self, finished: Finished) -> None:
        if self._finished is not None:  # a bug if reached: Keptn must not see two finished events
            log.error("a second finished event for %s was not sent", self._trigger.id)
            return
        self._finished = finished
        reply = build_reply(
            self._trigger,
            kind="finished",
            source=self._source,
            scope=self._scope,
            status=finished.status,
            result=finished.result,
            message=finished.message,
            payload=finished.payload,
        )
        self._finished_delivered = await self._deliver(reply, "finished")
        if not self._finished_delivered:
            return
        self._metrics.events_answered.labels(
            self._task, finished.status.value, finished.result.value
        ).inc()
        fields = {"status": finished.status.value, "result": finished.result.value}
        if finished.status is Status.SUCCEEDED and finished.result is Result.PASS:
            log.info("%s answered", self._task, extra={"fields": fields})
        else:  # an operator reading the log needs the reason, not only the outcome
            log.warning(
                "%s answered %s/%s: %s",
                self._task,
                finished.status.value,
                finished.result.value,
                finished.message,
                extra={"fields": fields},
            )

    async def _deliver(self, reply: Mapping[str, Any], kind: str) -> bool:
        """Hand ``reply`` to the sender once; whether it was confirmed. Never raises but for
        cancellation: a lost started event must not keep the finished event from being tried."""
        try:
            await self._send(reply)
        except ReplyNotDelivered as exc:
            self._undelivered(kind, str(exc), maybe_sent=exc.maybe_sent)
            return False
        except asyncio.CancelledError:
            self._undelivered(kind, "cancelled while sending", maybe_sent=True)
            raise
        except Exception as exc:  # a failure the sender did not classify: it may have left
            self._undelivered(kind, f"{type(exc).__name__}: {exc}", maybe_sent=True)
            return False
        return True

    def _undelivered(self, kind: str, reason: str, *, maybe_sent: bool) -> None:
        self._metrics.replies_undelivered.labels(self._task, kind, str(maybe_sent).lower()).inc()
        log.error(
            "%s.%s not delivered: %s",
            self._task,
            kind,
            reason,
            extra={"fields": {"reply": kind, "maybe_sent": maybe_sent}},
        )
