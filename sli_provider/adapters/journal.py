"""The journal the replicas share: which triggered events were taken, and which replies went out.

A JetStream key-value bucket on Keptn's own NATS: nothing else to run, and it gives the two
operations the journal needs: an atomic create (one replica takes an event) and compare-and-set
(recording a reply, or taking over an abandoned event, never overwrites another replica's
change). One entry per triggered event id, ``{"replies": [...], "abandoned": bool}``; entries
expire after JOURNAL_TTL_SECONDS (the bucket's max age).

Order of a reply and its record: a reply is published first and recorded right after. A replica
killed between the two leaves a reply that the journal does not know of, and the replica that
takes the redelivered event sends it again; the window is one round trip to NATS. The other
order (record, then publish) would turn that window into a lost reply, which Keptn cannot
recover from either, and a lost get-sli.finished leaves an evaluation stuck forever.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import nats.errors
import nats.js.errors
from nats.js.api import KeyValueConfig, StorageType
from nats.js.client import JetStreamContext
from nats.js.kv import KeyValue

from sli_provider.keptn.envelope import KeptnEvent

log = logging.getLogger(__name__)

STARTED, FINISHED = "started", "finished"
# A compare-and-set lost to another replica is tried again on the fresh entry, a few times.
_CAS_ATTEMPTS = 5


def bucket_name(queue_group: str) -> str:
    """A bucket name NATS accepts ([A-Za-z0-9_-]), derived from the consumers' name."""
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in queue_group) + "_journal"


def _key(event_id: str) -> str:
    # Event ids are free text; keys are not. A digest is a valid key for any id.
    return hashlib.sha256(event_id.encode()).hexdigest()


@dataclass
class _Entry:
    replies: list[str] = field(default_factory=list)
    abandoned: bool = False

    def encode(self) -> bytes:
        return json.dumps({"replies": self.replies, "abandoned": self.abandoned}).encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> _Entry:
        data: Any = json.loads(raw or b"{}")
        return cls(list(data.get("replies", [])), bool(data.get("abandoned", False)))


class KvJournal:
    """The :class:`~sli_provider.service.dedupe.Deduplicator` of JetStream mode.

    ``on_recovery`` is called when an abandoned event is taken over (a metric)."""

    def __init__(
        self, bucket: str, *, ttl: float, timeout: float, on_recovery: Callable[[], object]
    ) -> None:
        self._bucket = bucket
        self._ttl = ttl
        self._timeout = timeout
        self._on_recovery = on_recovery
        self._kv: KeyValue | None = None

    async def open(self, js: JetStreamContext) -> None:
        """Bind the bucket, creating it on first use (it is this service's own, unlike the
        ``keptn`` stream)."""
        try:
            self._kv = await js.key_value(self._bucket)
        except nats.js.errors.BucketNotFoundError:
            self._kv = await js.create_key_value(
                KeyValueConfig(
                    bucket=self._bucket, ttl=self._ttl, storage=StorageType.FILE, history=1
                )
            )

    async def start(self) -> None:
        """Nothing at the service's start-up: the JetStream bus binds the bucket (:meth:`open`)
        when it connects."""

    async def unfinished_count(self) -> int:
        """Nothing to resume at start-up: JetStream redelivers what no replica acknowledged."""
        return 0

    async def unfinished(
        self, *, limit: int | None = None, exclude: Collection[str] = ()
    ) -> list[KeptnEvent]:
        """Nothing kept here: JetStream keeps what waits, and redelivers what no replica
        acknowledged."""
        return []

    async def aclose(self) -> None:
        """Nothing to close: the bucket lives on the bus's connection, which the bus closes."""

    @property
    def _store(self) -> KeyValue:
        if self._kv is None:
            raise RuntimeError("the journal is used before JetStream was bound")
        return self._kv

    async def _get(self, event_id: str) -> tuple[_Entry, int] | None:
        try:
            entry = await self._store.get(_key(event_id))
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
            return None
        return _Entry.decode(entry.value), entry.revision or 0

    async def _change(self, event_id: str, change: Callable[[_Entry], bool]) -> bool:
        """Apply ``change`` with compare-and-set; False when it declined or the entry is gone."""
        for _ in range(_CAS_ATTEMPTS):
            found = await self._get(event_id)
            if found is None:
                return False
            entry, revision = found
            if not change(entry):
                return False
            try:
                await self._store.update(_key(event_id), entry.encode(), last=revision)
                return True
            except nats.js.errors.KeyWrongLastSequenceError:
                continue  # another replica changed it in between: decide on the new state
        return False

    async def claim(self, event_id: str) -> bool:
        async with asyncio.timeout(self._timeout):
            try:
                await self._store.create(_key(event_id), _Entry().encode())
                return True
            except nats.js.errors.KeyWrongLastSequenceError:
                pass

            def take_over(entry: _Entry) -> bool:
                if not entry.abandoned or FINISHED in entry.replies:
                    return False
                entry.abandoned = False
                return True

            taken = await self._change(event_id, take_over)
        if taken:
            self._on_recovery()
        return taken

    async def release(self, event_id: str) -> None:
        await self.abandon(event_id)

    async def abandon(self, event_id: str) -> None:
        """The event's holder is gone (JetStream redelivered it): let the next claim take it,
        unless its finished event is already out."""

        def mark(entry: _Entry) -> bool:
            if FINISHED in entry.replies or entry.abandoned:
                return False
            entry.abandoned = True
            return True

        async with asyncio.timeout(self._timeout):
            await self._change(event_id, mark)

    async def replies_sent(self, event_id: str) -> frozenset[str]:
        async with asyncio.timeout(self._timeout):
            found = await self._get(event_id)
        return frozenset(found[0].replies) if found else frozenset()

    async def record(self, event_id: str, reply: str) -> None:
        def add(entry: _Entry) -> bool:
            if reply in entry.replies:
                return False
            entry.replies.append(reply)
            return True

        async with asyncio.timeout(self._timeout):
            if await self._change(event_id, add):
                return
            # No entry (an event taken over HTTP, or expired): create one that says so.
            try:
                await self._store.create(_key(event_id), _Entry([reply]).encode())
            except nats.js.errors.KeyWrongLastSequenceError:
                await self._change(event_id, add)
