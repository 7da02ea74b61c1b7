"""Where `/gate` keeps its history, chosen by wiring.make_gate_history.

* :class:`KvGateHistory`: with ``NATS_URL`` and ``NATS_DELIVERY=jetstream``, a JetStream
  key-value bucket on Keptn's NATS, which every replica sees. One key per run and scope
  (``<scope digest>.<run digest>``): a create is atomic, so a run measured by two replicas at
  once is stored once.
* :class:`SqliteGateHistory`: otherwise, the SQLite file ``GATE_HISTORY``, the CLI's history
  format, for one process (``history list``, ``import`` and ``invalidate`` work on it).

Both store a run at most once: :meth:`add_once` returns False when the run is there already.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from sli_provider.adapters.history_store import HistoryError, HistoryStore
from sli_provider.gate.records import StoredEvaluation

Scope = tuple[str, str, str]


class GateHistory(Protocol):
    async def entries(self, scope: Scope) -> list[StoredEvaluation]:
        """The scope's evaluations, newest first."""
        ...

    async def add_once(self, record: StoredEvaluation) -> bool:
        """Store ``record`` unless the scope has one of the same run (``context``)."""
        ...

    async def aclose(self) -> None: ...


class SqliteGateHistory:
    def __init__(self, path: Path) -> None:
        self._path = path
        # "Is the run stored?" and the insert belong together within this process.
        self._lock = asyncio.Lock()

    async def entries(self, scope: Scope) -> list[StoredEvaluation]:
        return await asyncio.to_thread(self._entries, scope)

    def _entries(self, scope: Scope) -> list[StoredEvaluation]:
        with HistoryStore(self._path) as store:
            return store.list(*scope)

    async def add_once(self, record: StoredEvaluation) -> bool:
        async with self._lock:
            return await asyncio.to_thread(self._add_once, record)

    def _add_once(self, record: StoredEvaluation) -> bool:
        with HistoryStore(self._path) as store:
            scope = (record.project, record.stage, record.service)
            if any(e.context == record.context for e in store.list(*scope)):
                return False
            store.add(record)
            return True

    async def aclose(self) -> None:
        return None


def kv_bucket_name(queue_group: str) -> str:
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in queue_group) + "_gate_history"


def _digest(*parts: str) -> str:
    # Scope names and run keys are free text; KV keys are not. A digest is a valid key part.
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]


class KvGateHistory:
    """Connects on first use (the gate works, or says why it cannot, without holding up the
    service's start); ``timeout`` bounds each operation."""

    def __init__(self, url: str, bucket: str, *, timeout: float) -> None:
        self._url = url
        self._bucket = bucket
        self._timeout = timeout
        self._client: Client | None = None
        self._kv: KeyValue | None = None
        self._opening = asyncio.Lock()

    async def _store(self) -> KeyValue:
        async with self._opening:
            if self._kv is None:
                try:
                    async with asyncio.timeout(self._timeout):
                        client = await nats.connect(
                            self._url, connect_timeout=self._timeout, max_reconnect_attempts=-1
                        )
                        self._client = client
                        js = client.jetstream(timeout=self._timeout)
                        try:
                            self._kv = await js.key_value(self._bucket)
                        except nats.js.errors.BucketNotFoundError:
                            config = KeyValueConfig(
                                bucket=self._bucket, storage=StorageType.FILE, history=1
                            )
                            self._kv = await js.create_key_value(config)
                except (TimeoutError, nats.errors.Error, OSError) as exc:
                    raise HistoryError(
                        f"the history bucket {self._bucket} on NATS: {exc or type(exc).__name__}"
                    ) from None
            return self._kv

    async def entries(self, scope: Scope) -> list[StoredEvaluation]:
        store = await self._store()
        try:
            async with asyncio.timeout(self._timeout):
                try:
                    keys = await store.keys(filters=[f"{_digest(*scope)}.*"])
                except nats.js.errors.NoKeysError:
                    return []
                entries = await asyncio.gather(*(store.get(k) for k in keys))
        except (TimeoutError, nats.errors.Error) as exc:
            raise HistoryError(f"the history bucket {self._bucket}: {exc}") from None
        records = [_decode(e.value) for e in entries if e.value]
        return sorted(records, key=lambda r: r.time, reverse=True)

    async def add_once(self, record: StoredEvaluation) -> bool:
        store = await self._store()
        scope = (record.project, record.stage, record.service)
        key = f"{_digest(*scope)}.{_digest(record.context)}"
        value = json.dumps(asdict(record), allow_nan=False).encode()
        try:
            async with asyncio.timeout(self._timeout):
                await store.create(key, value)
        except nats.js.errors.KeyWrongLastSequenceError:
            return False
        except (TimeoutError, nats.errors.Error) as exc:
            raise HistoryError(f"the history bucket {self._bucket}: {exc}") from None
        return True

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()


def _decode(raw: bytes) -> StoredEvaluation:
    data = json.loads(raw)
    return StoredEvaluation(**data)
