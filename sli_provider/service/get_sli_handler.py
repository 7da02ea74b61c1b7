"""Answering one get-sli.triggered: started event, the values, finished event — one of each."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

from sli_provider.adapters.delivery import Delivery
from sli_provider.adapters.retry import Deadline
from sli_provider.keptn.envelope import KeptnEvent
from sli_provider.keptn.get_sli_task import (
    TASK,
    InvalidRequest,
    Outcome,
    decide_outcome,
    errored,
    finished_payload,
    get_sli_section,
    parse_request,
)
from sli_provider.metrics import ServiceMetrics
from sli_provider.pipeline.evaluation import ProviderUnavailable, SLIEvaluator
from sli_provider.service.replying import Finished, SendEvent, TaskReplies


class GetSLIHandler:
    """``deadline_seconds`` (GET_SLI_DEADLINE_SECONDS) bounds the whole evaluation: past it the
    finished reply goes out with the values that are there (lighthouse waits for it forever)."""

    def __init__(
        self,
        *,
        evaluator: SLIEvaluator,
        send: SendEvent,
        source: str,
        metrics: ServiceMetrics,
        deadline_seconds: float,
    ) -> None:
        self._evaluator = evaluator
        self._send = send
        self._source = source
        self._metrics = metrics
        self._deadline_seconds = deadline_seconds

    async def handle(self, event: KeptnEvent) -> Delivery:
        deadline = Deadline(self._deadline_seconds)
        section = get_sli_section(event.data) or {}
        # lighthouse copies these into the evaluation; echo them even when they are invalid.
        echoed = {k: section[k] for k in ("start", "end") if isinstance(section.get(k), str)}

        def finished(outcome: Outcome) -> Finished:
            payload = finished_payload(
                echoed.get("start", ""), echoed.get("end", ""), outcome.indicator_values
            )
            return Finished(outcome.status, outcome.result, outcome.message, payload)

        replies = TaskReplies(
            trigger=event, task=TASK, send=self._send, source=self._source, metrics=self._metrics
        )
        queries_started = asyncio.Event()
        await replies.run(
            lambda: self._values(event, finished, deadline, queries_started.set),
            on_shutdown=lambda: finished(
                errored("the SLI provider shut down before the values were retrieved")
            ),
            on_error=lambda exc: finished(
                errored(f"internal error in the SLI provider: {type(exc).__name__}: {exc}")
            ),
            # Reading sli.yaml and querying need nothing from Keptn's answer to the started
            # event, and the started event need not go before them: sent once the queries are
            # out, it does not hold up the freshness check and the sli.yaml reads
            # (bench/README.md).
            hold_started_until=queries_started,
        )
        return replies.delivery

    async def _values(
        self,
        event: KeptnEvent,
        finished: Callable[[Outcome], Finished],
        deadline: Deadline,
        queries_started: Callable[[], None],
    ) -> Finished:
        try:
            request = parse_request(event)
            evaluation = await self._evaluator.evaluate_final(
                request.window, deadline=deadline, queries_started=queries_started
            )
        except InvalidRequest as exc:
            return finished(errored(f"invalid get-sli.triggered: {exc}"))
        except ProviderUnavailable as exc:
            return finished(errored(str(exc)))
        outcome = decide_outcome([r.as_indicator_value() for r in evaluation.indicators])
        note = evaluation.freshness.note(self._evaluator.freshness_wait_seconds)
        if note:
            outcome = replace(outcome, message=f"{outcome.message}; {note}")
        return finished(outcome)
