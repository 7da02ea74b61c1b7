"""Deciding what happens to an inbound event, whichever way it arrived (HTTP or NATS)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from sli_provider import logs
from sli_provider.keptn.envelope import KeptnEvent
from sli_provider.keptn.getsli import TASK as GET_SLI
from sli_provider.keptn.getsli import requested_provider
from sli_provider.keptn.test_task import TASK as TEST
from sli_provider.service.metrics import ServiceMetrics
from sli_provider.service.tasks import RecentIds, TaskSupervisor

log = logging.getLogger(__name__)

GET_SLI_TRIGGERED = f"sh.keptn.event.{GET_SLI}.triggered"
TEST_TRIGGERED = f"sh.keptn.event.{TEST}.triggered"
SUBSCRIBED_TYPES = (GET_SLI_TRIGGERED, TEST_TRIGGERED)

Handler = Callable[[KeptnEvent], Awaitable[None]]


class Disposition(StrEnum):
    ACCEPTED = "accepted"
    IGNORED = "ignored"  # not ours: no reply at all
    DUPLICATE = "duplicate"  # a redelivery of an event already taken
    REJECTED = "rejected"  # ours or maybe ours, but unusable before any reply can be sent
    REFUSED = "refused"  # shutting down


@dataclass(frozen=True)
class Decision:
    disposition: Disposition
    reason: str = ""


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
    ) -> None:
        self._provider = sli_provider
        self._get_sli = get_sli
        self._get_sli_tasks = get_sli_tasks
        self._test_run = test_run
        self._test_tasks = test_tasks
        self._metrics = metrics
        self._recent = RecentIds()

    def accept(self, event: KeptnEvent) -> Decision:
        decision = self._decide(event)
        self._metrics.events_received.labels(event.type, decision.disposition.value).inc()
        if decision.disposition is not Disposition.ACCEPTED:
            log.info(
                "event %s %s: %s", event.id, decision.disposition.value, decision.reason,
                extra={"fields": {"type": event.type, "shkeptncontext": event.shkeptncontext}},
            )  # fmt: skip
        return decision

    def _decide(self, event: KeptnEvent) -> Decision:
        if event.type == TEST_TRIGGERED and self._test_run is not None:
            return self._take(event, self._test_run, self._test_tasks, "test")
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
        return self._take(event, self._get_sli, self._get_sli_tasks, "get-sli")

    def _take(
        self, event: KeptnEvent, handler: Handler, tasks: TaskSupervisor, task: str
    ) -> Decision:
        if tasks.closed:
            return Decision(Disposition.REFUSED, "shutting down")
        if not self._recent.first_time(event.id):
            return Decision(Disposition.DUPLICATE, f"event {event.id} was already taken")
        _ = tasks.spawn(_with_log_context(handler, event, task), name=f"{task} {event.id}")
        return Decision(Disposition.ACCEPTED)


async def _with_log_context(handler: Handler, event: KeptnEvent, task: str) -> None:
    logs.keptn_context.set(event.shkeptncontext)
    logs.event_id.set(event.id)
    log.info("%s.triggered taken", task)
    await handler(event)
