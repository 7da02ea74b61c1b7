"""Which events were already taken, so a redelivered event is handled once.

Dedupe goes through :class:`Deduplicator` so the in-memory :class:`RecentIds` (one process) can
be replaced by a journal the replicas share (a JetStream key-value bucket) without touching the
dispatcher.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol


class Deduplicator(Protocol):
    async def claim(self, event_id: str) -> bool:
        """True for the first claim of ``event_id``; False when it was claimed before."""
        ...

    async def release(self, event_id: str) -> None:
        """Forget a claim whose event was not taken after all, so a redelivery is handled."""
        ...


class RecentIds:
    """A bounded in-memory set of the latest event ids (per process)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    async def claim(self, event_id: str) -> bool:
        if event_id in self._ids:
            self._ids.move_to_end(event_id)
            return False
        self._ids[event_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
        return True

    async def release(self, event_id: str) -> None:
        self._ids.pop(event_id, None)
