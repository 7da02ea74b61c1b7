"""Exactly one started and one finished per task event, whatever fails or shuts down."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sli_provider.keptn.envelope import KeptnEvent, Result, Scope, Status, build_reply
from sli_provider.service.metrics import ServiceMetrics

log = logging.getLogger(__name__)

SendEvent = Callable[[Mapping[str, Any]], Awaitable[None]]

# A finished reply sent while shutting down must not hang the shutdown.
LAST_REPLY_TIMEOUT = 10.0


@dataclass(frozen=True)
class Finished:
    """What goes into the finished reply: outcome and task-specific payload."""

    status: Status
    result: Result
    message: str
    payload: Mapping[str, Any] = field(default_factory=dict)


class TaskReplies:
    """The replies to one triggered event; ``run`` guarantees the finished reply goes out."""

    def __init__(
        self,
        *,
        trigger: KeptnEvent,
        task: str,
        send: SendEvent,
        source: str,
        metrics: ServiceMetrics,
    ) -> None:
        self._trigger = trigger
        self._task = task
        self._send = send
        self._source = source
        self._metrics = metrics
        self._scope = Scope.from_data(trigger.data)

    async def run(
        self,
        work: Callable[[], Awaitable[Finished]],
        *,
        on_shutdown: Callable[[], Finished],
        on_error: Callable[[Exception], Finished],
    ) -> Finished:
        """Send started, do the work, send finished; cancellation still gets a finished reply."""
        self._metrics.in_flight.labels(self._task).inc()
        try:
            await self._deliver(
                build_reply(self._trigger, kind="started", source=self._source, scope=self._scope)
            )
            try:
                finished = await work()
            except asyncio.CancelledError:
                last = on_shutdown()
                await asyncio.wait_for(asyncio.shield(self._finish(last)), LAST_REPLY_TIMEOUT)
                raise
            except Exception as exc:  # the finished reply must still go out
                log.exception("unexpected error while handling %s", self._trigger.type)
                finished = on_error(exc)
            await self._finish(finished)
            return finished
        finally:
            self._metrics.in_flight.labels(self._task).dec()

    async def _finish(self, finished: Finished) -> None:
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
        await self._deliver(reply)
        self._metrics.events_answered.labels(
            self._task, finished.status.value, finished.result.value
        ).inc()
        fields = {"status": finished.status.value, "result": finished.result.value}
        if finished.status is Status.SUCCEEDED and finished.result is Result.PASS:
            log.info("%s answered", self._task, extra={"fields": fields})
        else:  # an operator reading the log needs the reason, not only the outcome
            log.warning(
                "%s answered %s/%s: %s", self._task, finished.status.value,
                finished.result.value, finished.message, extra={"fields": fields},
            )  # fmt: skip

    async def _deliver(self, reply: Mapping[str, Any]) -> None:
        try:
            await self._send(reply)
        except Exception:
            # Logged, not raised: a lost started must not keep the finished from being tried.
            log.exception("could not deliver %s", reply.get("type"))
