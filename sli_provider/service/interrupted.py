"""The answer to a test event whose k6 run died with the replica that ran it.

JetStream redelivers such an event to another replica, and the shared journal shows that its
started went out. A local k6 run cannot be followed from elsewhere (it ends with its replica:
its output pipe breaks, or the pod goes), and starting it again would load the system under test
twice and report a run Keptn never asked for; so the event gets the one reply it still needs,
an errored finished that says why.
"""

from __future__ import annotations

import time

from sli_provider.keptn.envelope import KeptnEvent, Result, Status
from sli_provider.keptn.test_task import TASK, test_finished_payload
from sli_provider.service.metrics import ServiceMetrics
from sli_provider.service.replying import Answered, Finished, SendEvent, TaskReplies

INTERRUPTED = "the k6 run was interrupted when its replica stopped"


def _interrupted() -> Finished:
    now = time.time()
    return Finished(Status.ERRORED, Result.FAIL, INTERRUPTED, test_finished_payload(now, now, {}))


async def _answer() -> Finished:
    return _interrupted()


class InterruptedTestRun:
    def __init__(self, *, send: SendEvent, source: str, metrics: ServiceMetrics) -> None:
        self._send = send
        self._source = source
        self._metrics = metrics

    async def handle(self, event: KeptnEvent) -> Answered | None:
        # TaskReplies sends a started first; the journaled sender drops it as already sent.
        replies = TaskReplies(
            trigger=event, task=TASK, send=self._send, source=self._source, metrics=self._metrics
        )
        await replies.run(_answer, on_shutdown=_interrupted, on_error=lambda _exc: _interrupted())
        return replies.answered
