"""Keptn's NATS through JetStream: durable pull consumers on the ``keptn`` stream.

Core NATS (nats_bus.py) loses an event published while no replica listens, and the task of a
replica killed mid-way. Keptn's NATS already stores every ``sh.keptn.>`` event in the stream
``keptn`` (created by the shipyard-controller), so each subscribed type gets a durable consumer
of this service's own on it: filtered on the type's subject, explicit ack, ``deliver_policy``
new when first created (the default would replay the stream's history), shared by every replica
(a pull consumer spreads the work; no queue group). A message is acked once the finished reply
of its task was published, kept alive with in-progress acks meanwhile; what a dead replica held
is redelivered after the ack wait, and the journal (journal.py) decides which replies it still
needs. The ``keptn`` stream is never created or changed: until it exists the service waits and
is not ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from sli_provider.adapters.delivery import Delivery
from sli_provider.adapters.journal import FINISHED, KvJournal
from sli_provider.adapters.nats_bus import Admission, NatsBus
from sli_provider.keptn.envelope import InvalidKeptnMessage, from_keptn_model

log = logging.getLogger(__name__)

KEPTN_STREAM = "keptn"
_FETCH_BATCH = 10
_FETCH_WAIT = 1.0  # seconds a fetch waits for messages; also how fast a stop is noticed
_RETRY_DELAY = 1.0
# About the most messages one replica holds (fetched, not yet acked): the rest stay in the consumer
# for the other replicas, and a replica that dies takes no more than this into the ack wait.
MAX_HELD = 64


def consumer_name(queue_group: str, subject: str) -> str:
    """``<group>-get-sli-triggered``: durable names may not contain dots."""
    kind = subject.removeprefix("sh.keptn.event.")
    return "".join(c if c.isalnum() or c in "_-" else "-" for c in f"{queue_group}-{kind}")


class JetStreamBus(NatsBus):
    """The NATS ingress with durable consumers; publishing replies is core NATS as before
    (Keptn's own services publish that way and the ``keptn`` stream stores them anyway)."""

    def __init__(
        self,
        url: str,
        *,
        journal: KvJournal,
        ack_wait: float,
        on_redelivery: Callable[[], object],
        on_pending: Callable[[str, int], object],
        **kwargs: Any,
    ) -> None:
        super().__init__(url, **kwargs)
        self._journal = journal
        self._ack_wait = ack_wait
        self._on_redelivery = on_redelivery
        self._on_pending = on_pending
        self._bound = asyncio.Event()
        self._receiving = True
        self._loops: set[asyncio.Task[None]] = set()
        self._acks: set[asyncio.Task[None]] = set()  # one per message in flight
        self._room = asyncio.Condition()  # notified when a held message was settled

    @property
    def connected(self) -> bool:
        return super().connected and self._bound.is_set()

    @property
    def not_ready_reason(self) -> str:
        if not super().connected:
            return "not connected to NATS"
        return f"waiting for the JetStream stream {KEPTN_STREAM!r}"

    async def _subscribe(self) -> None:
        # Consumers are bound in the background: the stream may not exist yet.
        loop = asyncio.create_task(self._bind_and_fetch(), name="jetstream consumers")
        self._loops.add(loop)
        loop.add_done_callback(self._loop_ended)

    def _loop_ended(self, loop: asyncio.Task[None]) -> None:
        self._loops.discard(loop)
        if not loop.cancelled() and loop.exception() is not None:
            # Nothing is fetched any more: say so on /ready rather than look healthy.
            self._bound.clear()
            log.error("the JetStream consumers stopped", exc_info=loop.exception())

    async def _bind_and_fetch(self) -> None:
        client = self._require_client()
        js = client.jetstream(timeout=self._timeout)
        await self._wait_for_stream(js)
        subscriptions = []
        while True:
            try:
                await self._journal.open(js)
                for subject in self._subjects:
                    subscriptions.append(await self._bind(js, subject))
                break
            except (nats.errors.Error, TimeoutError) as exc:
                subscriptions.clear()
                log.warning("binding the JetStream consumers failed, trying again: %s", exc)
                await asyncio.sleep(_RETRY_DELAY)
        self._bound.set()
        log.info(
            "consuming the JetStream stream %s",
            KEPTN_STREAM,
            extra={
                "fields": {
                    "consumers": [consumer_name(self._queue_group, s) for s in self._subjects]
                }
            },
        )
        await asyncio.gather(*(self._fetch(subscription) for subscription in subscriptions))

    async def _wait_for_stream(self, js: JetStreamContext) -> None:
        logged = False
        while True:
            try:
                await js.stream_info(KEPTN_STREAM)
                return
            except nats.js.errors.NotFoundError:
                reason = "it does not exist (Keptn's shipyard-controller creates it)"
            except (nats.errors.Error, TimeoutError) as exc:
                reason = f"{exc or type(exc).__name__}"
            if not logged:  # once: the wait may be long and is expected at install time
                log.warning("waiting for the JetStream stream %r: %s", KEPTN_STREAM, reason)
                logged = True
            await asyncio.sleep(_RETRY_DELAY)

    async def _bind(self, js: JetStreamContext, subject: str) -> JetStreamContext.PullSubscription:
        durable = consumer_name(self._queue_group, subject)
        # Only used when the consumer does not exist yet; an existing one is bound as it is,
        # so its position (and what it holds for dead replicas) survives every restart.
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.NEW,
            filter_subject=subject,
            ack_wait=self._ack_wait,
        )
        return await js.pull_subscribe(subject, durable=durable, stream=KEPTN_STREAM, config=config)

    async def _fetch(self, subscription: JetStreamContext.PullSubscription) -> None:
        while self._receiving:
            async with self._room:
                await self._room.wait_for(lambda: len(self._acks) < MAX_HELD)
                room = MAX_HELD - len(self._acks)
            try:
                messages = await subscription.fetch(min(_FETCH_BATCH, room), timeout=_FETCH_WAIT)
            except TimeoutError:
                messages = []
            except nats.errors.Error as exc:
                log.warning("fetching from JetStream failed: %s", exc)
                await asyncio.sleep(_RETRY_DELAY)
                continue
            for message in messages:
                await self._handle(message)
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                info = await subscription.consumer_info()
                self._on_pending(info.name, info.num_pending or 0)

    async def _handle(self, message: Msg) -> None:
        try:
            event = from_keptn_model(json.loads(message.data))
        except (ValueError, InvalidKeptnMessage) as exc:
            self._on_malformed(f"the message on {message.subject} is not a Keptn event: {exc}")
            await _settle(message.term())  # never readable: not again
            return
        if message.metadata.num_delivered and message.metadata.num_delivered > 1:
            # Redelivered: its replica stopped keeping it alive, so it is gone.
            self._on_redelivery()
            try:
                await self._journal.abandon(event.id)
            except (nats.errors.Error, TimeoutError) as exc:
                log.warning("journal not updated for redelivered %s: %s", event.id, exc)
        if not self._receiving:
            await _settle(message.nak())
            return
        try:
            admission = await self._on_event(event)
        except Exception as exc:  # e.g. the journal unreachable: this message, not the loop
            log.warning("event %s not taken, delivered again later: %s", event.id, exc)
            await _settle(message.nak(delay=_RETRY_DELAY))
            return
        settle = asyncio.create_task(self._settle_when_done(message, admission, event.id))
        self._acks.add(settle)

    async def _settle_when_done(self, message: Msg, admission: Admission, event_id: str) -> None:
        try:
            await self._settle_answered(message, admission, event_id)
        finally:
            self._acks.discard(asyncio.current_task())
            async with self._room:
                self._room.notify_all()

    async def _settle_answered(self, message: Msg, admission: Admission, event_id: str) -> None:
        task = admission.task
        if task is None:
            if admission.disposition == "refused":  # shutting down: another replica takes it
                await _settle(message.nak())
            elif admission.disposition == "busy":  # MAX_EVENTS_IN_FLIGHT here: later, anywhere
                await _settle(message.nak(delay=_RETRY_DELAY))
            else:  # ignored, rejected or a duplicate: nothing will ever come of it here
                await _settle(message.ack())
            return
        while True:
            done, _ = await asyncio.wait({task}, timeout=self._ack_wait / 3)
            if done:
                break
            await _settle(message.in_progress())
        delivery = await self._delivery(task, event_id)
        if delivery is Delivery.NOT_DELIVERED:
            # Not confirmed: a redelivery tries again (the journal keeps each reply single).
            await _settle(message.nak(delay=_RETRY_DELAY))
            return
        await _settle(message.ack())

    async def _delivery(self, task: asyncio.Task[Any], event_id: str) -> Delivery:
        """What the task says became of the replies; for a task cancelled at shutdown (its
        errored finished event goes out within a bound) or broken, what the journal says."""
        if not task.cancelled() and task.exception() is None:
            return Delivery(task.result())
        try:
            sent = await self._journal.replies_sent(event_id)
        except (nats.errors.Error, TimeoutError, RuntimeError) as exc:
            log.warning("journal not readable for %s: %s", event_id, exc)
            return Delivery.NOT_DELIVERED
        return Delivery.DELIVERED if FINISHED in sent else Delivery.NOT_DELIVERED

    async def stop_receiving(self) -> None:
        """No new messages; what is in flight is still acked when its task ends."""
        self._receiving = False
        loops = list(self._loops)
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)

    async def aclose(self) -> None:
        await self.stop_receiving()
        # Each in-flight task was closed by the owner before this; their acks go out now.
        if self._acks:
            await asyncio.wait(set(self._acks), timeout=self._timeout)
        for settle in list(self._acks):
            settle.cancel()
        client, self._client = self._client, None
        if client is None or client.is_closed:
            return
        # Not client.drain(): it waits for the pull subscriptions' inboxes, which only a
        # fetch empties. Flushing gets the acks and replies out; a message fetched but not
        # handled is redelivered after the ack wait.
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            await client.flush(timeout=max(1, int(self._timeout)))
        await client.close()


async def _settle(call: Awaitable[None]) -> None:
    """An ack that fails only means a redelivery, which the journal answers correctly."""
    try:
        await call
    except (nats.errors.Error, TimeoutError) as exc:
        log.warning("JetStream acknowledgement failed: %s", exc)
