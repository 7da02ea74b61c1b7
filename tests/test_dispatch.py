"""The Dispatcher on its own: every disposition, the task it returns, dedupe through its seam."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from devkit.events import get_sli_triggered, make_test_triggered
from sli_provider.adapters.delivery import Delivery
from sli_provider.adapters.sqlite_journal import SqliteJournal
from sli_provider.keptn.envelope import KeptnEvent
from sli_provider.metrics import ServiceMetrics
from sli_provider.service.dedupe import Deduplicator, RecentIds
from sli_provider.service.dispatch import Decision, Dispatcher, Disposition, Overflow
from sli_provider.service.tasks import TaskSupervisor

ANSWER = Delivery.DELIVERED


def keptn_event(document: dict[str, Any]) -> KeptnEvent:
    return KeptnEvent(
        id=document["id"],
        type=document["type"],
        source=document["source"],
        shkeptncontext=document.get("shkeptncontext", ""),
        data=document["data"],
    )


def get_sli(**overrides: Any) -> KeptnEvent:
    document = get_sli_triggered(
        project="p",
        stage="s",
        service="v",
        start="2026-01-01T00:00:00.000Z",
        end="2026-01-01T00:05:00.000Z",
        indicators=["vus_max"],
        **{k: v for k, v in overrides.items() if k != "shkeptncontext"},
    )
    if "shkeptncontext" in overrides:
        document["shkeptncontext"] = overrides["shkeptncontext"]
    return keptn_event(document)


class Handled:
    """The handlers the dispatcher starts: they record the event and return ANSWER."""

    def __init__(self) -> None:
        self.events: list[KeptnEvent] = []
        self.release = asyncio.Event()

    async def __call__(self, event: KeptnEvent) -> Delivery:
        self.events.append(event)
        await self.release.wait()
        return ANSWER


class Fixture:
    def __init__(
        self, *, seen: Deduplicator | None = None, runner: bool = True, max_in_flight: int = 200
    ) -> None:
        self.metrics = ServiceMetrics()
        self.get_sli, self.test_run = Handled(), Handled()
        self.get_sli_tasks, self.test_tasks = TaskSupervisor(), TaskSupervisor()
        self.dispatcher = Dispatcher(
            sli_provider="k6",
            get_sli=self.get_sli,
            get_sli_tasks=self.get_sli_tasks,
            test_run=self.test_run if runner else None,
            test_tasks=self.test_tasks,
            metrics=self.metrics,
            seen=seen,
            max_in_flight=max_in_flight,
        )

    def counted(self, type_: str, disposition: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "sli_provider_events_received_total", {"type": type_, "disposition": disposition}
        )
        return value or 0.0

    async def close(self) -> None:
        self.get_sli.release.set()
        self.test_run.release.set()
        await asyncio.gather(self.get_sli_tasks.close(1), self.test_tasks.close(1))


@pytest.fixture
async def fx() -> Any:
    fixture = Fixture()
    yield fixture
    await fixture.close()


async def test_accepted_event_returns_the_task_that_answers_it(fx: Fixture) -> None:
    event = get_sli()
    decision = await fx.dispatcher.accept(event, ingress="http")
    assert decision.disposition is Disposition.ACCEPTED
    assert decision.task is not None and not decision.task.done()
    await asyncio.sleep(0)
    assert fx.get_sli.events == [event]
    fx.get_sli.release.set()
    assert await decision.task is ANSWER  # an ingress can wait for the end and see the outcome
    assert fx.counted(event.type, "accepted") == 1


async def test_a_redelivery_of_an_event_being_answered_carries_its_task(fx: Fixture) -> None:
    """JetStream redelivers an event whose replies Keptn is still refusing: no second task, and
    the redelivered message is settled when the first one ends."""
    event = get_sli()
    first = await fx.dispatcher.accept(event, ingress="nats")
    again = await fx.dispatcher.accept(event, ingress="nats")
    assert again.disposition is Disposition.DUPLICATE
    assert again.task is first.task and first.task is not None
    fx.get_sli.release.set()
    assert await first.task is ANSWER
    await asyncio.sleep(0)
    assert len(fx.get_sli.events) == 1
    later = await fx.dispatcher.accept(event, ingress="nats")  # over: an ordinary duplicate
    assert (later.disposition, later.task) == (Disposition.DUPLICATE, None)


async def test_test_triggered_goes_to_the_runner(fx: Fixture) -> None:
    document = make_test_triggered(project="p", stage="s", service="v", teststrategy="performance")
    decision = await fx.dispatcher.accept(keptn_event(document), ingress="nats")
    assert decision.disposition is Disposition.ACCEPTED
    await asyncio.sleep(0)
    assert [e.id for e in fx.test_run.events] == [document["id"]]
    assert fx.get_sli.events == []


@pytest.mark.parametrize(
    ("event", "disposition", "reason"),
    [
        (get_sli(sli_provider="prometheus"), Disposition.IGNORED, "'prometheus' is not 'k6'"),
        (
            KeptnEvent(
                id="d1",
                type="sh.keptn.event.deployment.triggered",
                source="shipyard",
                shkeptncontext="c",
                data={"project": "p"},
            ),
            Disposition.IGNORED,
            "not handled here",
        ),
        (get_sli(shkeptncontext=""), Disposition.REJECTED, "shkeptncontext"),
        (get_sli(shkeptncontext="  "), Disposition.REJECTED, "shkeptncontext"),
    ],
)
async def test_events_not_taken_start_nothing(
    fx: Fixture, event: KeptnEvent, disposition: Disposition, reason: str
) -> None:
    decision = await fx.dispatcher.accept(event, ingress="nats")
    assert (decision.disposition, decision.task) == (disposition, None)
    assert reason in decision.reason
    await asyncio.sleep(0)
    assert fx.get_sli.events == [] and fx.get_sli_tasks.active == 0
    assert fx.counted(event.type, disposition.value) == 1


async def test_get_sli_without_provider_is_rejected(fx: Fixture) -> None:
    document = get_sli_triggered(
        project="p", stage="s", service="v", start="", end="", indicators=None
    )
    del document["data"]["get-sli"]["sliProvider"]
    event = keptn_event(document)
    decision = await fx.dispatcher.accept(event, ingress="http")
    assert decision.disposition is Disposition.REJECTED
    assert "sliProvider" in decision.reason


async def test_empty_context_is_rejected_even_for_the_runner(fx: Fixture) -> None:
    document = make_test_triggered(project="p", stage="s", service="v", teststrategy="performance")
    document["shkeptncontext"] = ""
    decision = await fx.dispatcher.accept(keptn_event(document), ingress="http")
    assert decision.disposition is Disposition.REJECTED
    assert fx.test_run.events == []


async def test_a_redelivered_id_is_a_duplicate(fx: Fixture) -> None:
    event = get_sli()
    first = await fx.dispatcher.accept(event, ingress="http")
    again = await fx.dispatcher.accept(event, ingress="nats")
    assert (first.disposition, again.disposition) == (Disposition.ACCEPTED, Disposition.DUPLICATE)
    assert again.task is first.task  # still being answered here
    await asyncio.sleep(0)
    assert len(fx.get_sli.events) == 1
    assert fx.counted(event.type, "duplicate") == 1


async def test_dedupe_goes_through_the_journal_it_is_given() -> None:
    """Two dispatchers (two replicas) sharing one journal take an event once between them."""
    shared = RecentIds()
    one, two = Fixture(seen=shared), Fixture(seen=shared)
    try:
        event = get_sli()
        decisions = [
            await one.dispatcher.accept(event, ingress="nats"),
            await two.dispatcher.accept(event, ingress="nats"),
        ]
        assert [d.disposition for d in decisions] == [Disposition.ACCEPTED, Disposition.DUPLICATE]
    finally:
        await asyncio.gather(one.close(), two.close())


async def test_refused_while_shutting_down_and_the_claim_is_released() -> None:
    shared = RecentIds()
    closing = Fixture(seen=shared)
    await closing.get_sli_tasks.close(0)
    event = get_sli()
    decision = await closing.dispatcher.accept(event, ingress="http")
    assert (decision.disposition, decision.task) == (Disposition.REFUSED, None)
    assert closing.counted(event.type, "refused") == 1
    # Another replica sharing the journal may still take the redelivered event.
    assert await shared.claim(event.id)


async def test_malformed_input_is_counted_like_any_rejection(fx: Fixture) -> None:
    decision = fx.dispatcher.malformed("body is not JSON", ingress="nats")
    assert decision == Decision(Disposition.REJECTED, "body is not JSON")
    assert fx.counted("invalid", "rejected") == 1


async def test_the_task_ends_with_its_handler_failure_visible() -> None:
    async def broken(event: KeptnEvent) -> Delivery:
        raise RuntimeError("boom")

    tasks = TaskSupervisor()
    dispatcher = Dispatcher(
        sli_provider="k6",
        get_sli=broken,
        get_sli_tasks=tasks,
        test_run=None,
        test_tasks=tasks,
        metrics=ServiceMetrics(),
    )
    decision = await dispatcher.accept(get_sli(), ingress="http")
    assert decision.task is not None
    with pytest.raises(RuntimeError, match="boom"):
        await decision.task


async def test_beyond_the_cap_an_event_is_refused_or_waits_for_room() -> None:
    fx = Fixture(max_in_flight=2)
    try:
        first, second = get_sli(), get_sli()
        for event in (first, second):
            assert (await fx.dispatcher.accept(event, ingress="http")).disposition is (
                Disposition.ACCEPTED
            )
        busy = await fx.dispatcher.accept(get_sli(), ingress="http")
        assert busy.disposition is Disposition.BUSY and busy.task is None
        assert "MAX_EVENTS_IN_FLIGHT" in busy.reason
        waiting = asyncio.create_task(
            fx.dispatcher.accept(get_sli(), ingress="nats", overflow=Overflow.WAIT)
        )
        await asyncio.sleep(0.05)
        assert not waiting.done()
        assert (
            fx.metrics.registry.get_sample_value("sli_provider_events_waiting", {"where": "memory"})
            == 1
        )
        fx.get_sli.release.set()  # the two in flight end: room
        assert (await waiting).disposition is Disposition.ACCEPTED
        assert fx.counted(first.type, "busy") == 1
    finally:
        await fx.close()


async def test_beyond_the_cap_core_nats_keeps_events_in_the_journal_and_starts_them_in_order(
    tmp_path: Path,
) -> None:
    journal = SqliteJournal(tmp_path / "journal.db", ttl=3600, timeout=5)
    await journal.open()
    fx = Fixture(seen=journal, max_in_flight=2)
    try:
        events = [get_sli() for _ in range(6)]
        decisions = [
            await fx.dispatcher.accept(e, ingress="nats", overflow=Overflow.KEEP_OR_WAIT)
            for e in events
        ]
        assert [d.disposition for d in decisions] == [Disposition.ACCEPTED] * 2 + [
            Disposition.KEPT
        ] * 4
        await asyncio.sleep(0.05)
        assert [e.id for e in fx.get_sli.events] == [e.id for e in events[:2]]
        assert len(await journal.unfinished()) == 6  # the four waiting ones are on disk
        again = await fx.dispatcher.accept(
            events[4], ingress="nats", overflow=Overflow.KEEP_OR_WAIT
        )
        assert again.disposition is Disposition.DUPLICATE  # kept ones are taken already
        fx.get_sli.release.set()
        async with asyncio.timeout(5):
            while len(fx.get_sli.events) < 6:  # noqa: ASYNC110 (a list, polled)
                await asyncio.sleep(0.01)
        assert [e.id for e in fx.get_sli.events] == [e.id for e in events]  # oldest first
        assert fx.dispatcher.in_flight <= 2
        assert (
            fx.metrics.registry.get_sample_value(
                "sli_provider_events_waiting", {"where": "journal"}
            )
            == 0
        )
    finally:
        await fx.close()
        await journal.aclose()


async def test_events_resumed_at_start_up_obey_the_cap_too(tmp_path: Path) -> None:
    """A restart finds more unfinished events in the journal than MAX_EVENTS_IN_FLIGHT: as many
    as fit start at once, the others as room frees."""
    journal = SqliteJournal(tmp_path / "journal.db", ttl=3600, timeout=5)
    await journal.open()
    events = [get_sli() for _ in range(5)]
    for event in events:
        assert await journal.claim_event(event)
    fx = Fixture(seen=journal, max_in_flight=2)
    try:
        await fx.dispatcher.resume_journaled(await journal.unfinished_count())
        await asyncio.sleep(0.05)
        assert [e.id for e in fx.get_sli.events] == [e.id for e in events[:2]]
        assert fx.dispatcher.in_flight == 2
        fx.get_sli.release.set()
        async with asyncio.timeout(5):
            while len(fx.get_sli.events) < 5:  # noqa: ASYNC110 (a list, polled)
                await asyncio.sleep(0.01)
        assert [e.id for e in fx.get_sli.events] == [e.id for e in events]
        assert fx.metrics.registry.get_sample_value("sli_provider_journal_recoveries_total") == 5
    finally:
        await fx.close()
        await journal.aclose()
