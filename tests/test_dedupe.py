"""The journaled sender (service/dedupe.py) against the fake Keptn and a real SQLite journal: a
reply that may have arrived is recorded as sent, so handling its event again sends no second
one."""

from __future__ import annotations

from pathlib import Path

from devkit.fake_keptn import FakeKeptn
from sli_provider.adapters.delivery import Delivery
from sli_provider.adapters.keptn_api import EventSender
from sli_provider.adapters.sqlite_journal import SqliteJournal
from sli_provider.keptn.envelope import KeptnEvent
from sli_provider.metrics import ServiceMetrics
from sli_provider.service.dedupe import journaled
from sli_provider.service.dispatch import Dispatcher, Disposition, Handler
from sli_provider.service.replying import Finished, SendEvent, TaskReplies, until_delivered
from sli_provider.service.tasks import TaskSupervisor
from tests.helpers import get_sli_event
from tests.test_replies import FINISHED, PASSED, SHUT_DOWN, STARTED, errored, types


def answering(send: SendEvent, metrics: ServiceMetrics) -> Handler:
    async def handle(event: KeptnEvent) -> Delivery:
        replies = TaskReplies(trigger=event, task="get-sli", send=send, source="t", metrics=metrics)

        async def work() -> Finished:
            return PASSED

        await replies.run(work, on_shutdown=lambda: SHUT_DOWN, on_error=errored)
        return replies.delivery

    return handle


async def test_an_unconfirmed_finished_is_not_sent_again_when_its_event_comes_back(
    fake_keptn: FakeKeptn, tmp_path: Path
) -> None:
    """Keptn takes the finished event but confirms it only after the sender's deadline: the
    reply may be out, so the journal says it is. The event handled again (JetStream's
    redelivery, or a journaled event resumed) gets neither reply a second time."""
    journal = SqliteJournal(tmp_path / "journal.db", ttl=3600, timeout=5)
    await journal.open()
    sender = EventSender(fake_keptn.event_url, token=None, timeout=0.5, attempts=3, max_wait=0.05)
    metrics, tasks = ServiceMetrics(), TaskSupervisor()
    send = until_delivered(
        journaled(sender.send, journal, metrics.duplicates_suppressed.inc), max_wait=0.1
    )
    dispatcher = Dispatcher(
        sli_provider="k6",
        get_sli=answering(send, metrics),
        get_sli_tasks=tasks,
        test_run=None,
        test_tasks=TaskSupervisor(),
        metrics=metrics,
        seen=journal,
    )
    event = get_sli_event()
    try:
        decision = await dispatcher.accept(event, ingress="http")
        assert decision.task is not None
        await fake_keptn.wait_for_events(type=STARTED)
        fake_keptn.answer_events_late(2.0)  # the finished event arrives, its confirmation does not
        assert await decision.task is Delivery.NOT_DELIVERED
        fake_keptn.answer_events_late(0)
        assert types(fake_keptn, event) == [STARTED, FINISHED]
        assert await journal.unfinished() == []  # a restart would not resume it

        again = await dispatcher.resume(event)  # handled again, as a redelivery is
        assert again.disposition is Disposition.ACCEPTED and again.task is not None
        await again.task
    finally:
        await tasks.close(1)
        await sender.aclose()
        await journal.aclose()
    assert types(fake_keptn, event) == [STARTED, FINISHED]
    assert (
        metrics.registry.get_sample_value("sli_provider_duplicate_replies_suppressed_total") == 2
    )  # the started and finished events of the second handling
    assert fake_keptn.violations == []
