"""The answer to a test event whose k6 run died with the replica that ran it.

JetStream redelivers such an event to another replica, and the shared journal shows that its
started event went out. A local k6 run cannot be followed from elsewhere (it ends with its replica:
its output pipe breaks, or the pod goes), and starting it again would load the system under test
twice and report a run Keptn never asked for; so the event gets the one reply it still needs,
an errored finished event that says why.

A k6-operator run outlives its replica: its TestRun goes on in the cluster. The taking-over
replica deletes it first (``cleanup``, found by the event's id on the TestRun's labels), so no
load runs on that nobody reports, then answers the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from sli_provider.adapters.delivery import Delivery
from sli_provider.errors import SliProviderError
from sli_provider.keptn.envelope import KeptnEvent, Result, Status
from sli_provider.keptn.test_task import TASK, test_finished_payload
from sli_provider.metrics import ServiceMetrics
from sli_provider.service.replying import Finished, SendEvent, TaskReplies

log = logging.getLogger(__name__)

INTERRUPTED = "the k6 run was interrupted when its replica stopped"

# Deletes what is still running for a test.triggered id; returns what it deleted.
Cleanup = Callable[[str], Awaitable[Sequence[str]]]


def _interrupted(detail: str = "") -> Finished:
    now = time.time()
    return Finished(
        Status.ERRORED, Result.FAIL, INTERRUPTED + detail, test_finished_payload(now, now, {})
    )


class InterruptedTestRun:
    def __init__(
        self,
        *,
        send: SendEvent,
        source: str,
        metrics: ServiceMetrics,
        cleanup: Cleanup | None = None,
    ) -> None:
        self._send = send
        self._source = source
        self._metrics = metrics
        self._cleanup = cleanup

    async def handle(self, event: KeptnEvent) -> Delivery:
        # TaskReplies sends a started event first; the journaled sender drops it as already sent.
        replies = TaskReplies(
            trigger=event, task=TASK, send=self._send, source=self._source, metrics=self._metrics
        )
        await replies.run(
            lambda: self._answer(event.id),
            on_shutdown=_interrupted,
            on_error=lambda _exc: _interrupted(),
        )
        return replies.delivery

    async def _answer(self, triggered_id: str) -> Finished:
        if self._cleanup is None:
            return _interrupted()
        try:
            deleted = await self._cleanup(triggered_id)
        except SliProviderError as exc:
            log.error("cannot delete the interrupted run's TestRun: %s", exc)
            return _interrupted(f"; its TestRun could not be deleted: {exc}")
        if deleted:
            return _interrupted(f"; its TestRun {', '.join(deleted)} was deleted")
        return _interrupted()
