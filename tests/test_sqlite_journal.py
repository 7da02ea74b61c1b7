"""The JOURNAL_PATH journal on its own: a real SQLite file, the protocol the dispatcher uses."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from sli_provider.adapters.delivery import Delivery
from sli_provider.adapters.journal import KvJournal
from sli_provider.adapters.sqlite_journal import JournalFileError, SqliteJournal
from sli_provider.config import ConfigError, settings_from
from sli_provider.keptn.envelope import KeptnEvent
from sli_provider.metrics import ServiceMetrics
from sli_provider.service.dedupe import KeepsEvents, ReplyJournal
from sli_provider.service.dispatch import Dispatcher
from sli_provider.service.tasks import TaskSupervisor
from sli_provider.wiring import make_journal

TTL = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def event(event_id: str) -> KeptnEvent:
    return KeptnEvent(
        id=event_id,
        type="sh.keptn.event.get-sli.triggered",
        source="lighthouse-service",
        shkeptncontext="ctx-" + event_id,
        gitcommitid="abc123",
        data={"project": "p", "get-sli": {"sliProvider": "k6", "indicators": ["vus_max"]}},
    )


async def opened(path: Path, clock: Clock | None = None) -> SqliteJournal:
    journal = SqliteJournal(path, ttl=TTL, timeout=5, clock=clock or Clock())
    await journal.open()
    return journal


async def test_one_claim_per_event_even_when_claimed_concurrently(tmp_path: Path) -> None:
    journal = await opened(tmp_path / "journal.db")
    try:
        assert isinstance(journal, KeepsEvents)
        _: ReplyJournal = journal  # the protocol the dispatcher and the journaled sender use
        claims = await asyncio.gather(*(journal.claim_event(event("e-1")) for _ in range(20)))
        assert sorted(claims) == [False] * 19 + [True]
        assert await journal.claim("e-1") is False
        assert await journal.claim("id only") is True
    finally:
        await journal.aclose()


async def test_replies_are_recorded_and_a_reopened_file_resumes_only_unfinished_events(
    tmp_path: Path,
) -> None:
    path = tmp_path / "volume" / "journal.db"  # its directory is created
    journal = await opened(path)
    try:
        for name in ("accepted", "started", "finished"):
            assert await journal.claim_event(event(name)) is True
        await journal.record("started", "started")
        await journal.record("finished", "started")
        await journal.record("finished", "finished")
        await journal.record("never claimed", "finished")  # e.g. expired: recorded anyway
        assert await journal.replies_sent("started") == {"started"}
        assert await journal.replies_sent("finished") == {"started", "finished"}
        assert await journal.replies_sent("never claimed") == {"finished"}
        assert await journal.replies_sent("unknown") == frozenset()
        with pytest.raises(ValueError, match="not a reply"):
            await journal.record("started", "triggered")
    finally:
        await journal.aclose()
    reopened = await opened(path)  # as a restarted process on the same volume
    try:
        assert await reopened.unfinished() == [event("accepted"), event("started")]
        assert await reopened.claim_event(event("started")) is False  # still taken
    finally:
        await reopened.aclose()


async def test_a_released_claim_is_forgotten_unless_a_reply_went_out(tmp_path: Path) -> None:
    journal = await opened(tmp_path / "journal.db")
    try:
        await journal.claim_event(event("refused"))
        await journal.release("refused")
        assert await journal.unfinished() == []
        assert await journal.claim_event(event("refused")) is True
        await journal.record("refused", "started")
        await journal.release("refused")  # its started event is out: it must be finished
        assert await journal.replies_sent("refused") == {"started"}
    finally:
        await journal.aclose()


async def test_entries_expire_after_the_ttl(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "journal.db"
    journal = await opened(path, clock)
    try:
        await journal.claim_event(event("old"))
        await journal.record("old", "started")
        clock.now += TTL / 2
        await journal.claim_event(event("young"))
        clock.now += TTL / 2 + 1  # "old" is past the TTL, "young" is not
        assert await journal.unfinished() == [event("young")]
        assert await journal.replies_sent("old") == frozenset()
        assert await journal.claim_event(event("old")) is True  # a new event to it now
    finally:
        await journal.aclose()
    with sqlite3.connect(path) as db:  # the old entry was deleted, not only hidden
        rows = sorted(db.execute("SELECT id, started FROM events"))
    assert rows == [("old", 0), ("young", 0)]
    assert (await asyncio.to_thread(_journal_mode, path)) == "wal"


def _journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return str(db.execute("PRAGMA journal_mode").fetchone()[0])


async def test_a_path_that_cannot_be_a_database_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    path.write_text("not a database, " * 100)
    journal = SqliteJournal(path, ttl=TTL, timeout=5)
    with pytest.raises(
        JournalFileError, match=r"JOURNAL_PATH .*journal\.db: file is not a database"
    ):
        await journal.open()
    await journal.aclose()


async def test_an_event_that_needed_no_reply_is_not_resumed(tmp_path: Path) -> None:
    """E.g. a test.triggered without a workload for its strategy: its task ends without a
    reply; the journal must not run it again at every start until it expires."""
    journal = await opened(tmp_path / "journal.db")
    metrics = ServiceMetrics()
    tasks = TaskSupervisor()

    async def no_reply(_event: KeptnEvent) -> Delivery:
        return Delivery.NO_REPLY_DUE

    dispatcher = Dispatcher(
        sli_provider="k6",
        get_sli=no_reply,
        get_sli_tasks=tasks,
        test_run=None,
        test_tasks=TaskSupervisor(),
        metrics=metrics,
        seen=journal,
    )
    try:
        decision = await dispatcher.accept(event("quiet"), ingress="http")
        assert decision.task is not None
        await decision.task
        assert await journal.unfinished() == []
        assert await journal.claim_event(event("quiet")) is False  # still a duplicate
    finally:
        await tasks.close(1)
        await journal.aclose()


async def test_an_event_whose_finished_was_not_delivered_stays_to_be_resumed(
    tmp_path: Path,
) -> None:
    """A handler that ran and whose finished reply was not confirmed (e.g. shut down while
    Keptn's API refused it) leaves the event journaled: the next start answers it."""
    journal = await opened(tmp_path / "journal.db")
    tasks = TaskSupervisor()

    async def not_delivered(_event: KeptnEvent) -> Delivery:
        await journal.record(_event.id, "started")
        return Delivery.NOT_DELIVERED

    dispatcher = Dispatcher(
        sli_provider="k6",
        get_sli=not_delivered,
        get_sli_tasks=tasks,
        test_run=None,
        test_tasks=TaskSupervisor(),
        metrics=ServiceMetrics(),
        seen=journal,
    )
    try:
        decision = await dispatcher.accept(event("unanswered"), ingress="http")
        assert decision.task is not None
        assert await decision.task is Delivery.NOT_DELIVERED
        assert [e.id for e in await journal.unfinished()] == ["unanswered"]
    finally:
        await tasks.close(1)
        await journal.aclose()


def test_the_journal_is_chosen_by_delivery_mode_and_journal_path(tmp_path: Path) -> None:
    def chosen(environ: dict[str, str]) -> type | None:
        journal = make_journal(settings_from(environ), ServiceMetrics())
        return None if journal is None else type(journal)

    path = str(tmp_path / "journal.db")
    assert chosen({}) is None  # the dispatcher's in-memory RecentIds
    assert chosen({"JOURNAL_PATH": path}) is SqliteJournal
    assert (
        chosen({"NATS_URL": "nats://nats:4222", "NATS_DELIVERY": "core", "JOURNAL_PATH": path})
        is SqliteJournal
    )
    assert chosen({"NATS_URL": "nats://nats:4222"}) is KvJournal
    with pytest.raises(ConfigError, match="JOURNAL_PATH is for HTTP and NATS_DELIVERY=core"):
        settings_from({"NATS_URL": "nats://nats:4222", "JOURNAL_PATH": path})
