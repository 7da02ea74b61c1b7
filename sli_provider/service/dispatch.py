"""Deciding what happens to an inbound event, whichever way it arrived (HTTP or NATS).

Every ingress parses its wire format into a KeptnEvent and hands it to :meth:`Dispatcher.accept`
(or reports an unparsable message to :meth:`Dispatcher.malformed`); the rules, the log line and
the metric are the same for all of them. An accepted event's decision carries the task that
answers it; the task ends after the finished reply was handed over and returns what became of
it (:class:`Delivery`), so an ingress that acknowledges messages can await it and settle only
what was delivered. A redelivery of an event still being answered here carries that same task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from sli_provider import logs
from sli_provider.adapters.delivery import Delivery
from sli_provider.keptn.envelope import KeptnEvent
from sli_provider.keptn.get_sli_task import requested_provider
from sli_provider.keptn.subscriptions import GET_SLI_TRIGGERED, TEST_TRIGGERED
from sli_provider.metrics import ServiceMetrics
from sli_provider.service.dedupe import Deduplicator, KeepsEvents, RecentIds
from sli_provider.service.tasks import TaskSupervisor

log = logging.getLogger(__name__)

# Delivery.NO_REPLY_DUE: the event turned out not to need replies (e.g. no k6 workload for its
# strategy); NOT_DELIVERED: its finished reply was not confirmed, so it is not settled.
Handler = Callable[[KeptnEvent], Awaitable[Delivery]]
AnswerTask = asyncio.Task[Delivery]


class Disposition(StrEnum):
    ACCEPTED = "accepted"
    IGNORED = "ignored"  # not ours: no reply at all
    DUPLICATE = "duplicate"  # a redelivery of an event already taken
    REJECTED = "rejected"  # ours or maybe ours, but unusable before any reply can be sent
    REFUSED = "refused"  # shutting down
    BUSY = "busy"  # MAX_EVENTS_IN_FLIGHT reached: not taken, to be delivered again later
    KEPT = "kept"  # MAX_EVENTS_IN_FLIGHT reached: taken into the journal, started when room frees


class Overflow(StrEnum):
    """What an ingress wants done with an event that comes while MAX_EVENTS_IN_FLIGHT are in
    flight."""

    REFUSE = "refuse"  # BUSY: HTTP answers 503 with Retry-After, JetStream naks
    WAIT = "wait"  # the caller waits for room (core NATS: the client buffers what follows)
    # KEPT in the journal when it keeps events (JOURNAL_PATH), else as REFUSE or WAIT.
    KEEP_OR_REFUSE = "keep or refuse"  # HTTP
    KEEP_OR_WAIT = "keep or wait"  # core NATS


@dataclass(frozen=True)
class Decision:
    disposition: Disposition
    reason: str = ""
    # The work answering an accepted event, or a duplicate of one still being answered here.
    task: AnswerTask | None = None


class Dispatcher:
    def __init__(
        self,
        *,
        sli_provider: str,
        get_sli: Handler,
        get_sli_tasks: TaskSupervisor,
        test_run: Handler | None,
        test_tasks: TaskSupervisor,
        metrics: ServiceMetrics,
        seen: Deduplicator | None = None,
        test_interrupted: Handler | None = None,
        max_in_flight: int = 200,
    ) -> None:
        self._provider = sli_provider
        self._get_sli = get_sli
        self._get_sli_tasks = get_sli_tasks
        self._test_run = test_run
        self._test_tasks = test_tasks
        self._metrics = metrics
        self._seen: Deduplicator = seen if seen is not None else RecentIds()
        # Answers a test event taken over after its replica died mid-run (interrupted.py).
        self._test_interrupted = test_interrupted
        self._answering: dict[str, AnswerTask] = {}  # event id -> its task, while it runs
        self._max_in_flight = max_in_flight
        self._room = asyncio.Event()  # set when an event's task ends
        self._kept_waiting = False  # the journal may hold events kept for lack of room
        self._taking: set[str] = set()  # claimed, task not yet spawned: not kept ones either
        # Ended here without a confirmed finished event: left in the journal for the next start, not
        # for this process to take again as if it had been kept.
        self._unsettled: set[str] = set()
        self._feeding = False

    @property
    def in_flight(self) -> int:
        return len(self._answering)

    async def accept(
        self, event: KeptnEvent, *, ingress: str, overflow: Overflow = Overflow.REFUSE
    ) -> Decision:
        decision = await self._decide(event, overflow=overflow)
        self._record(event.type, decision, ingress, event)
        return decision

    async def resume_journaled(self, count: int) -> None:
        """At start-up: the ``count`` events a previous run of this process took and did not
        finish (JOURNAL_PATH) are taken again, as many as MAX_EVENTS_IN_FLIGHT allows now and
        the rest as room frees up."""
        self._metrics.journal_recoveries.inc(count)
        self._metrics.events_waiting.labels("journal").inc(count)
        self._kept_waiting = count > 0
        self._feeding = True  # no second feeder while this one runs (see _ended)
        await self._take_kept()

    async def resume(self, event: KeptnEvent, *, recovered: bool = True) -> Decision:
        """An event a previous run of this process took and did not finish (JOURNAL_PATH), or
        one kept in the journal for lack of room, taken again the way it was the first time,
        but without a claim: it holds one. The journal's replies decide what it still gets (a
        test event whose started event went out is answered as interrupted)."""
        decision = await self._decide(event, resumed=True)
        if decision.disposition is Disposition.ACCEPTED:
            if recovered:
                self._metrics.journal_recoveries.inc()
        else:
            log.warning(
                "journaled event %s not resumed: %s",
                event.id,
                decision.reason,
                extra={"fields": {"disposition": decision.disposition.value}},
            )
            if decision.disposition is not Disposition.REFUSED:  # e.g. the settings changed
                await self._settle(event.id)
        return decision

    def malformed(self, reason: str, *, ingress: str) -> Decision:
        """A message the ingress could not read as a Keptn event at all."""
        decision = Decision(Disposition.REJECTED, reason)
        self._record("invalid", decision, ingress, None)
        return decision

    def _record(
        self, type_: str, decision: Decision, ingress: str, event: KeptnEvent | None
    ) -> None:
        self._metrics.events_received.labels(type_, decision.disposition.value).inc()
        if decision.disposition is Disposition.ACCEPTED:
            return  # the task logs "taken" with the event's context
        fields = {"type": type_, "ingress": ingress, "disposition": decision.disposition.value}
        if event is not None:
            fields["shkeptncontext"] = event.shkeptncontext
        log.info(
            "event %s %s: %s",
            event.id if event is not None else "(unreadable)",
            decision.disposition.value,
            decision.reason,
            extra={"fields": fields},
        )

    async def _decide(
        self, event: KeptnEvent, *, resumed: bool = False, overflow: Overflow = Overflow.REFUSE
    ) -> Decision:
        if not event.shkeptncontext.strip():
            # Keptn's schema requires it, and a reply without it cannot be correlated by anyone.
            return Decision(
                Disposition.REJECTED,
                "not a Keptn event: the shkeptncontext extension is missing or empty",
            )
        if event.type == TEST_TRIGGERED and self._test_run is not None:
            return await self._take(
                event, self._test_run, self._test_tasks, "test", resumed, overflow
            )
        if event.type != GET_SLI_TRIGGERED:
            return Decision(Disposition.IGNORED, f"{event.type} is not handled here")
        provider = requested_provider(event)
        if provider is None:
            return Decision(
                Disposition.REJECTED,
                "data.get-sli.sliProvider is missing: cannot tell which provider is asked",
            )
        if provider != self._provider:
            # Another provider's event: any reply would make lighthouse evaluate twice.
            return Decision(
                Disposition.IGNORED, f"sliProvider {provider!r} is not {self._provider!r}"
            )
        return await self._take(
            event, self._get_sli, self._get_sli_tasks, "get-sli", resumed, overflow
        )

    async def _take(
        self,
        event: KeptnEvent,
        handler: Handler,
        tasks: TaskSupervisor,
        task: str,
        resumed: bool,
        overflow: Overflow = Overflow.REFUSE,
    ) -> Decision:
        answering = self._answering.get(event.id)
        if answering is not None:  # e.g. JetStream redelivered it while Keptn refused replies
            return Decision(
                Disposition.DUPLICATE, f"event {event.id} is being answered", task=answering
            )
        if not resumed and self.in_flight >= self._max_in_flight:
            keeps = overflow in (Overflow.KEEP_OR_REFUSE, Overflow.KEEP_OR_WAIT)
            if keeps and isinstance(self._seen, KeepsEvents):
                return await self._keep(event)
            if overflow in (Overflow.REFUSE, Overflow.KEEP_OR_REFUSE):
                return Decision(
                    Disposition.BUSY,
                    f"{self.in_flight} events in flight, as many as MAX_EVENTS_IN_FLIGHT allows",
                )
            await self._wait_for_room()
        if not resumed and not await self._claim(event):
            return Decision(Disposition.DUPLICATE, f"event {event.id} was already taken")
        self._taking.add(event.id)
        try:
            return await self._spawn(event, handler, tasks, task, resumed)
        finally:
            self._taking.discard(event.id)

    async def _spawn(
        self, event: KeptnEvent, handler: Handler, tasks: TaskSupervisor, task: str, resumed: bool
    ) -> Decision:
        if tasks.closed:  # checked after the claim: a claim may wait, and shutdown not
            if not resumed:  # a resumed event stays journaled for the next start
                await self._seen.release(event.id)  # so that a redelivery elsewhere is handled
            return Decision(Disposition.REFUSED, "shutting down")
        interrupted = self._test_interrupted
        if task == "test" and interrupted is not None and await self._started_elsewhere(event.id):
            handler = interrupted
        spawned = tasks.spawn(self._answer(handler, event, task), name=f"{task} {event.id}")
        self._answering[event.id] = spawned
        spawned.add_done_callback(lambda _: self._ended(event.id))
        return Decision(Disposition.ACCEPTED, task=spawned)

    def _ended(self, event_id: str) -> None:
        self._answering.pop(event_id, None)
        if self._kept_waiting and not self._feeding and not self._get_sli_tasks.closed:
            self._feeding = True  # one feeder at a time; it takes as many as there is room for
            _ = self._get_sli_tasks.spawn(self._take_kept(), name="events kept in the journal")
        self._room.set()

    async def _wait_for_room(self) -> None:
        """Core NATS without a journal: the event waits here (counted in
        sli_provider_events_waiting{where="memory"}), the ones behind it in the NATS client's
        buffer."""
        waiting = self._metrics.events_waiting.labels("memory")
        waiting.inc()
        try:
            while self.in_flight >= self._max_in_flight:
                self._room.clear()
                await self._room.wait()
        finally:
            waiting.dec()

    async def _keep(self, event: KeptnEvent) -> Decision:
        """With JOURNAL_PATH (HTTP, core NATS): the event waits in the journal, not in memory."""
        if not await self._claim(event):
            return Decision(Disposition.DUPLICATE, f"event {event.id} was already taken")
        self._kept_waiting = True
        self._metrics.events_waiting.labels("journal").inc()
        return Decision(
            Disposition.KEPT,
            f"{self.in_flight} events in flight: kept in the journal until there is room",
        )

    async def _take_kept(self) -> None:
        """Start events kept in the journal, oldest first, while there is room."""
        journal = self._seen
        try:
            while self._kept_waiting and isinstance(journal, KeepsEvents):
                room = self._max_in_flight - self.in_flight
                if room <= 0 or self._get_sli_tasks.closed:
                    return
                try:
                    events = await journal.unfinished(
                        limit=room, exclude=set(self._answering) | self._taking | self._unsettled
                    )
                except Exception as exc:  # tried again when the next event ends
                    log.warning("events kept in the journal not read: %s", exc)
                    return
                if len(events) < room:
                    self._kept_waiting = False
                for event in events:
                    self._metrics.events_waiting.labels("journal").dec()
                    await self.resume(event, recovered=False)
                if not events:
                    return
        finally:
            self._feeding = False

    async def _answer(self, handler: Handler, event: KeptnEvent, task: str) -> Delivery:
        delivery = await _with_log_context(handler, event, task)
        if delivery is Delivery.NOT_DELIVERED:
            # Unsettled: the journal resumes it at the next start, JetStream delivers it again.
            self._unsettled.add(event.id)
        else:  # answered, or no reply was due (e.g. no workload for its strategy)
            await self._settle(event.id)
        return delivery

    async def _settle(self, event_id: str) -> None:
        if not isinstance(self._seen, KeepsEvents):
            return
        try:
            await self._seen.settle(event_id)
        except Exception as exc:  # only costs a resume that again sends nothing
            log.warning("journal not updated for %s: %s", event_id, exc)

    async def _claim(self, event: KeptnEvent) -> bool:
        if isinstance(self._seen, KeepsEvents):  # kept before the 202: a restart finishes it
            return await self._seen.claim_event(event)
        return await self._seen.claim(event.id)

    async def _started_elsewhere(self, event_id: str) -> bool:
        try:
            return "started" in await self._seen.replies_sent(event_id)
        except Exception as exc:  # unknown: run it; the journal still sends its started event once
            log.warning("journal not readable for %s: %s", event_id, exc)
            return False


async def _with_log_context(handler: Handler, event: KeptnEvent, task: str) -> Delivery:
    logs.keptn_context.set(event.shkeptncontext)
    logs.event_id.set(event.id)
    log.info("%s.triggered taken", task)
    return await handler(event)
