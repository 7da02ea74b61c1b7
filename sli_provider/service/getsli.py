"""Answering one get-sli.triggered: started, the values, finished — exactly one of each."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sli_provider.keptn.envelope import KeptnEvent, Scope, build_reply
from sli_provider.keptn.getsli import (
    TASK,
    InvalidRequest,
    Outcome,
    decide_outcome,
    errored,
    finished_payload,
    parse_request,
)
from sli_provider.service.evaluation import ProviderUnavailable, SLIEvaluator, Window
from sli_provider.service.metrics import ServiceMetrics

log = logging.getLogger(__name__)

SendEvent = Callable[[Mapping[str, Any]], Awaitable[None]]

# A finished reply sent while shutting down must not hang the shutdown.
_LAST_REPLY_TIMEOUT = 10.0


class GetSLIHandler:
    def __init__(
        self, *, evaluator: SLIEvaluator, send: SendEvent, source: str, metrics: ServiceMetrics
    ) -> None:
        self._evaluator = evaluator
        self._send = send
        self._source = source
        self._metrics = metrics

    async def handle(self, event: KeptnEvent) -> None:
        scope = Scope.from_data(event.data)
        section = event.data.get(TASK)
        echoed: dict[str, Any] = {}
        if isinstance(section, Mapping):
            echoed = {k: section[k] for k in ("start", "end") if isinstance(section.get(k), str)}
        self._metrics.in_flight.labels(TASK).inc()
        try:
            await self._deliver(
                build_reply(event, kind="started", source=self._source, scope=scope)
            )
            try:
                outcome = await self._outcome(event)
            except asyncio.CancelledError:
                await asyncio.wait_for(
                    asyncio.shield(
                        self._finish(
                            event,
                            scope,
                            echoed,
                            errored("the SLI provider shut down before the values were retrieved"),
                        )
                    ),
                    _LAST_REPLY_TIMEOUT,
                )
                raise
            await self._finish(event, scope, echoed, outcome)
        finally:
            self._metrics.in_flight.labels(TASK).dec()

    async def _outcome(self, event: KeptnEvent) -> Outcome:
        try:
            request = parse_request(event)
            results = await self._evaluator.evaluate(
                Window(
                    project=request.scope.project,
                    stage=request.scope.stage,
                    service=request.scope.service,
                    start_s=request.start_s,
                    end_s=request.end_s,
                    indicators=request.indicators,
                    custom_filters=request.custom_filters,
                    labels=request.scope.labels,
                    deployment=request.deployment,
                    context=request.context,
                    gitcommitid=request.gitcommitid,
                )
            )
        except InvalidRequest as exc:
            return errored(f"invalid get-sli.triggered: {exc}")
        except ProviderUnavailable as exc:
            return errored(str(exc))
        except Exception as exc:  # the finished reply must still go out
            log.exception("unexpected error while retrieving SLIs")
            return errored(f"internal error in the SLI provider: {type(exc).__name__}: {exc}")
        return decide_outcome([r.as_indicator_value() for r in results])

    async def _finish(
        self, event: KeptnEvent, scope: Scope, echoed: Mapping[str, Any], outcome: Outcome
    ) -> None:
        payload = finished_payload(
            str(echoed.get("start", "")), str(echoed.get("end", "")), outcome.indicator_values
        )
        reply = build_reply(
            event,
            kind="finished",
            source=self._source,
            scope=scope,
            status=outcome.status,
            result=outcome.result,
            message=outcome.message,
            payload=payload,
        )
        await self._deliver(reply)
        self._metrics.events_answered.labels(TASK, outcome.status.value, outcome.result.value).inc()
        log.info(
            "get-sli answered",
            extra={
                "fields": {
                    "status": outcome.status.value,
                    "result": outcome.result.value,
                    "indicators": len(outcome.indicator_values),
                }
            },
        )

    async def _deliver(self, reply: Mapping[str, Any]) -> None:
        try:
            await self._send(reply)
        except Exception:
            # Logged, not raised: a lost started must not keep the finished from being tried.
            log.exception("could not deliver %s", reply.get("type"))
