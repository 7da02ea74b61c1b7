"""Which events were already taken, so a redelivered event is handled once.

Dedupe goes through :class:`Deduplicator` so the in-memory :class:`RecentIds` (one process) can
be replaced by a journal the replicas share (a JetStream key-value bucket) without touching the
dispatcher.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from typing import Any, Protocol, runtime_checkable

from sli_provider.adapters.delivery import ReplyNotDelivered
from sli_provider.keptn.envelope import KeptnEvent
from sli_provider.service.replying import SendEvent

log = logging.getLogger(__name__)


class Deduplicator(Protocol):
    async def claim(self, event_id: str) -> bool:
        """True for the first claim of ``event_id``; False when it was claimed before."""
        ...

    async def release(self, event_id: str) -> None:
        """Forget a claim whose event was not taken after all, so a redelivery is handled."""
        ...

    async def replies_sent(self, event_id: str) -> frozenset[str]:
        """The reply kinds ("started", "finished") already published for ``event_id``, by
        whichever process: non-empty for an event taken over from a replica that died."""
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

    async def replies_sent(self, event_id: str) -> frozenset[str]:
        return frozenset()  # one process: nothing survives it to take over


class ReplyJournal(Deduplicator, Protocol):
    """A deduplicator that also remembers which replies of an event went out, so an event
    handled again (after its replica died) gets only the missing ones."""

    async def record(self, event_id: str, reply: str) -> None: ...


@runtime_checkable
class KeepsEvents(Protocol):
    """A journal that keeps the event it takes, for a restarted process to finish it
    (JOURNAL_PATH: nothing redelivers an event behind the distributor)."""

    async def claim_event(self, event: KeptnEvent) -> bool:
        """:meth:`Deduplicator.claim` that also stores ``event``, atomically."""
        ...

    async def settle(self, event_id: str) -> None:
        """Nothing is left to send for the event (answered, or it needed no reply): not
        resumed again."""
        ...

    async def unfinished(
        self, *, limit: int | None = None, exclude: Collection[str] = ()
    ) -> list[KeptnEvent]:
        """Kept events not answered yet, oldest first, but for those in ``exclude``."""
        ...


def journaled(
    send: SendEvent, journal: ReplyJournal, on_suppressed: Callable[[], object]
) -> SendEvent:
    """``send`` that skips a reply the journal says went out already, and records each one
    after it was published (journal.py explains that order)."""

    async def send_once(reply: Mapping[str, Any]) -> None:
        triggered_id = str(reply.get("triggeredid") or "")
        kind = str(reply.get("type", "")).rpartition(".")[2]
        if not triggered_id or kind not in ("started", "finished"):
            await send(reply)
            return
        if kind in await _sent(journal, triggered_id):
            on_suppressed()
            log.info("%s of %s was published before; not again", kind, triggered_id)
            return
        try:
            await send(reply)
        except ReplyNotDelivered as exc:
            if exc.maybe_sent:  # it may be out: never again, so the journal says so too
                await _record(journal, triggered_id, kind)
            raise
        await _record(journal, triggered_id, kind)

    return send_once


async def _sent(journal: ReplyJournal, event_id: str) -> frozenset[str]:
    try:
        return await journal.replies_sent(event_id)
    except Exception as exc:  # whichever client error: the reply must not be lost over it
        # Unknown: send it. A reply doubled by an outage beats one lost for good.
        log.warning("journal not readable for %s: %s", event_id, exc)
        return frozenset()


async def _record(journal: ReplyJournal, event_id: str, kind: str) -> None:
    try:
        await journal.record(event_id, kind)
    except Exception as exc:  # the reply is out; a missing record only risks a redelivery's double
        log.warning("%s of %s published but not recorded in the journal: %s", kind, event_id, exc)
