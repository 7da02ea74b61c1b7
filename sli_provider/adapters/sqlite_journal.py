"""The journal behind the distributor (HTTP, core NATS): SQLite on a volume (JOURNAL_PATH).

Nothing redelivers an event there: the distributor gives up after its retries, core NATS never
tries again. So the event itself is journaled when it is taken, before the 202 (or before the
core NATS callback returns), and a process restarted on the same volume runs every journaled
event whose finished reply is not recorded again (service/dispatch.py ``resume``). Beside the
event, a row records which replies went out, as the JetStream key-value journal (journal.py)
does, so a resumed event gets only the missing ones; replies are recorded after they were
published, for the reason journal.py gives.

Why SQLite is safe here: one process owns the file. JOURNAL_PATH is a volume of one replica
(a pod's PVC or emptyDir); it must not be shared by replicas, least of all on a network file
system, whose locks SQLite cannot rely on (and replicas behind the distributor share nothing
anyway: each accepted event is its own). Within the process one thread owns the connection:
calls are queued to it, so the event loop never waits on the disk and every statement sees the
previous one's result; each call is one short transaction with a timeout. WAL with
``synchronous=FULL``: a commit is on disk when the call returns, so an event answered 202 survives
a kill -9 and a node's power loss alike.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sli_provider.errors import SliProviderError
from sli_provider.keptn.envelope import KeptnEvent

log = logging.getLogger(__name__)

T = TypeVar("T")

_REPLY_COLUMNS = {"started": "started", "finished": "finished"}
# Expired rows are deleted at most this often (and at start-up), not on every claim.
_PURGE_EVERY = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    event TEXT,                 -- the accepted event (JSON); NULL for a reply of an unknown event
    accepted_at REAL NOT NULL,  -- unix time; the entry expires JOURNAL_TTL_SECONDS later
    started INTEGER NOT NULL DEFAULT 0,
    finished INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_accepted_at ON events (accepted_at);
"""


class JournalUnavailable(SliProviderError):
    """A journal call failed or did not end within its timeout: the event was not taken."""


class JournalFileError(JournalUnavailable):
    """JOURNAL_PATH cannot be opened as the journal."""


class SqliteJournal:
    """The :class:`~sli_provider.service.dedupe.ReplyJournal` of HTTP and core NATS mode, which
    also keeps each accepted event (:meth:`claim_event`, :meth:`unfinished`)."""

    def __init__(
        self,
        path: Path,
        *,
        ttl: float,
        timeout: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = path
        self._ttl = ttl
        self._timeout = timeout
        self._clock = clock
        # One thread, one connection: SQLite calls run in order and never on the event loop.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._db: sqlite3.Connection | None = None
        self._purged_at = 0.0

    async def open(self) -> None:
        """Create or open the file and delete expired entries."""
        try:
            await self._call(self._open)
        except JournalUnavailable as exc:
            raise JournalFileError(str(exc)) from None
        except OSError as exc:  # its directory cannot be made
            reason = exc.strerror or str(exc)
            raise JournalFileError(f"JOURNAL_PATH {self._path}: {reason}: {exc.filename}") from None

    async def start(self) -> None:
        """The service's start-up, before the first event: :meth:`open`."""
        await self.open()

    def _open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level None: every statement commits on its own unless BEGIN says otherwise.
        # A statement waiting for a lock gives up at half the call's timeout: refused for a lock,
        # it certainly did not write, and the caller hears so before it stops waiting.
        db = sqlite3.connect(
            self._path, timeout=self._timeout / 2, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
        except sqlite3.Error:
            db.close()
            raise
        self._db = db
        self._purge()

    async def aclose(self) -> None:
        try:
            if self._db is not None:
                await self._call(self._close)
        except JournalUnavailable as exc:  # every write was committed when it returned
            log.warning("closing the journal failed: %s", exc)
        finally:
            self._thread.shutdown(wait=False)

    def _close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()

    async def _call(self, work: Callable[[], T]) -> T:
        """``work`` on the journal's thread within the timeout. Past it the caller goes on; the
        statement still ends on the thread (SQLite cannot be interrupted from here) and the
        next call waits behind it. Raises JournalUnavailable."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout):
                return await loop.run_in_executor(self._thread, work)
        except TimeoutError:
            raise JournalUnavailable(
                f"JOURNAL_PATH {self._path}: no answer within {self._timeout:g} s"
            ) from None
        except sqlite3.Error as exc:
            raise JournalUnavailable(f"JOURNAL_PATH {self._path}: {exc}") from None

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the journal is used before it was opened")
        return self._db

    def _purge(self) -> None:
        now = self._clock()
        if now - self._purged_at < _PURGE_EVERY:
            return
        self._purged_at = now
        gone = self._conn.execute(
            "DELETE FROM events WHERE accepted_at < ?", (now - self._ttl,)
        ).rowcount
        if gone:
            log.info("journal: %d entries older than JOURNAL_TTL_SECONDS deleted", gone)

    # -- the journal protocol (service/dedupe.py) ------------------------------------------

    async def claim(self, event_id: str) -> bool:
        """Only the id (a journal user that has no event to keep): nothing to resume later."""
        return await self._call(lambda: self._insert(event_id, None))

    async def claim_event(self, event: KeptnEvent) -> bool:
        """Take ``event`` and keep it, in one statement: True for the first claim of its id."""
        document = json.dumps(_as_document(event), separators=(",", ":"))
        return await self._call(lambda: self._insert(event.id, document))

    def _insert(self, event_id: str, document: str | None) -> bool:
        self._purge()
        inserted = self._conn.execute(
            "INSERT INTO events (id, event, accepted_at) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO NOTHING",
            (event_id, document, self._clock()),
        ).rowcount
        return inserted == 1

    async def release(self, event_id: str) -> None:
        """The event was refused after all (shutting down): no trace, so a retry is taken."""

        def delete() -> None:
            self._conn.execute(
                "DELETE FROM events WHERE id = ? AND started = 0 AND finished = 0", (event_id,)
            )

        await self._call(delete)

    async def settle(self, event_id: str) -> None:
        """The event was answered or needed no reply after all: its id stays (a retry is still
        a duplicate), the event goes, so it is not resumed (even when the finished reply's
        record was lost)."""

        def drop_event() -> None:
            self._conn.execute("UPDATE events SET event = NULL WHERE id = ?", (event_id,))

        await self._call(drop_event)

    async def replies_sent(self, event_id: str) -> frozenset[str]:
        def read() -> frozenset[str]:
            row = self._conn.execute(
                "SELECT started, finished FROM events WHERE id = ?", (event_id,)
            ).fetchone()
            if row is None:
                return frozenset()
            return frozenset(
                kind for kind, sent in zip(("started", "finished"), row, strict=True) if sent
            )

        return await self._call(read)

    async def record(self, event_id: str, reply: str) -> None:
        column = _REPLY_COLUMNS.get(reply)
        if column is None:
            raise ValueError(f"not a reply the journal records: {reply!r}")

        def mark() -> None:
            # An entry that expired (or was never claimed here) is created, saying so.
            self._conn.execute(
                f"INSERT INTO events (id, event, accepted_at, {column}) VALUES (?, NULL, ?, 1) "  # noqa: S608 - column from a fixed table
                f"ON CONFLICT (id) DO UPDATE SET {column} = 1",
                (event_id, self._clock()),
            )

        await self._call(mark)

    # -- what a restarted process finishes -------------------------------------------------

    async def unfinished_count(self) -> int:
        def count() -> int:
            row = self._conn.execute(
                "SELECT count(*) FROM events WHERE finished = 0 AND event IS NOT NULL"
            ).fetchone()
            return int(row[0])

        return await self._call(count)

    async def unfinished(
        self, *, limit: int | None = None, exclude: Collection[str] = ()
    ) -> list[KeptnEvent]:
        """Kept events without a recorded finished event, oldest first, at most ``limit``, but for
        the ids in ``exclude`` (those in flight here). At start-up, before any event is taken,
        none of them is in flight: their process is gone. Later they are the events kept
        waiting for room (MAX_EVENTS_IN_FLIGHT)."""

        def read() -> list[tuple[str, str]]:
            self._purge()
            rows = self._conn.execute(
                "SELECT id, event FROM events WHERE finished = 0 AND event IS NOT NULL "
                "ORDER BY accepted_at LIMIT ?",
                (-1 if limit is None else limit + len(exclude),),
            ).fetchall()
            kept = [(str(row[0]), str(row[1])) for row in rows if str(row[0]) not in exclude]
            return kept if limit is None else kept[:limit]

        events = []
        for event_id, document in await self._call(read):
            try:
                events.append(_from_document(json.loads(document)))
            except (ValueError, KeyError, TypeError) as exc:  # never written so; say, go on
                log.error("journal: event %s cannot be read back: %s", event_id, exc)
        return events


def _as_document(event: KeptnEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "source": event.source,
        "shkeptncontext": event.shkeptncontext,
        "gitcommitid": event.gitcommitid,
        "triggeredid": event.triggeredid,
        "data": event.data,
    }


def _from_document(document: dict[str, Any]) -> KeptnEvent:
    data = document["data"]
    if not isinstance(data, dict):
        raise TypeError("data is not an object")
    return KeptnEvent(
        id=str(document["id"]),
        type=str(document["type"]),
        source=str(document["source"]),
        shkeptncontext=str(document["shkeptncontext"]),
        gitcommitid=str(document.get("gitcommitid", "")),
        triggeredid=str(document.get("triggeredid", "")),
        data=data,
    )
