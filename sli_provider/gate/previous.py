"""Earlier evaluations and which of them lighthouse compares with.

Lighthouse reads earlier ``evaluation.finished`` events from mongodb-datastore
(evaluate_sli_handler.go ``getPreviousEvaluations``)::

    GET /event/type/sh.keptn.event.evaluation.finished?limit=N&excludeInvalidated=true
        &filter=data.project:P AND data.stage:S AND data.service:V[ AND data.result:...]

and the datastore (mongodb-datastore/handlers/events.go ``GetEventsByType``,
``getAggregationPipeline``, ``parseFilter``) drops events that have a matching
``*.invalidated`` event, matches ``data.result`` exactly (``pass``) or with ``$in``
(``pass,warning``), sorts by ``time`` newest first and applies the limit only when it is > 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sli_provider.gate.slo import Comparison


@dataclass(frozen=True)
class PreviousIndicatorResult:
    """One ``indicatorResults[]`` entry of an earlier evaluation (only what scoring reads)."""

    metric: str
    value: float
    success: bool
    status: str = ""
    score: float = 0.0


@dataclass(frozen=True)
class PreviousEvaluation:
    """An earlier ``evaluation.finished`` event.

    ``result`` is the event's top-level ``data.result`` (what the datastore filter matches),
    ``invalidated`` whether an ``evaluation.invalidated`` event points at it.
    """

    id: str
    result: str
    indicator_results: tuple[PreviousIndicatorResult, ...] = ()
    score: float = 0.0
    invalidated: bool = False

    @classmethod
    def from_keptn(
        cls, event: Mapping[str, Any], *, invalidated: bool = False
    ) -> PreviousEvaluation:
        """Build from a stored CloudEvent (``{"id", "data": {...}}``) or from its ``data``.

        Missing fields take Go's zero values; a wrongly typed field raises ValueError, as
        ``json.Unmarshal`` would fail on it (lighthouse then skips the event).
        """
        data: Mapping[str, Any] = event
        event_id = ""
        if isinstance(event.get("data"), Mapping):
            data = event["data"]
            event_id = _str(event.get("id"), "id")
        details = data.get("evaluation") or {}
        if not isinstance(details, Mapping):
            raise ValueError("evaluation: expected an object")
        results = []
        for index, item in enumerate(details.get("indicatorResults") or ()):
            if not isinstance(item, Mapping):
                raise ValueError(f"indicatorResults[{index}]: expected an object")
            value = item.get("value")
            if value is None:
                continue  # lighthouse skips entries without a value object
            if not isinstance(value, Mapping):
                raise ValueError(f"indicatorResults[{index}].value: expected an object")
            results.append(
                PreviousIndicatorResult(
                    metric=_str(value.get("metric"), "metric"),
                    value=_num(value.get("value"), "value"),
                    success=_bool(value.get("success"), "success"),
                    status=_str(item.get("status"), "status"),
                    score=_num(item.get("score"), "score"),
                )
            )
        return cls(
            id=event_id,
            result=_str(data.get("result"), "result"),
            indicator_results=tuple(results),
            score=_num(details.get("score"), "score"),
            invalidated=invalidated,
        )


def result_filter(include_result_with_score: str) -> frozenset[str] | None:
    """Event results the datastore query admits; None means no filter.

    Lighthouse lower-cases the setting; an unknown value (e.g. ``pass_or_warning``) falls
    through to "no filter", like ``all``.
    """
    setting = include_result_with_score.lower()
    if setting == "pass":
        return frozenset({"pass"})
    if setting == "pass_or_warn":
        return frozenset({"pass", "warning"})
    return None


def select_previous(
    history: Iterable[PreviousEvaluation], comparison: Comparison
) -> tuple[PreviousEvaluation, ...]:
    """The earlier evaluations lighthouse compares with, newest first.

    ``history`` must be newest first (the datastore's order). Idempotent, so an already
    selected list can be passed through again.
    """
    allowed = result_filter(comparison.include_result_with_score)
    limit = comparison.previous_results_limit
    selected: list[PreviousEvaluation] = []
    for item in history:
        if item.invalidated:
            continue
        if allowed is not None and item.result not in allowed:
            continue
        selected.append(item)
        if limit > 0 and len(selected) == limit:
            break
    return tuple(selected)


def previous_values(selected: Sequence[PreviousEvaluation], metric: str) -> tuple[float, ...]:
    """Successfully retrieved earlier values of one SLI, in lighthouse's gathering order."""
    return tuple(
        result.value
        for evaluation in selected
        for result in evaluation.indicator_results
        if result.metric == metric and result.success
    )


def _str(raw: object, where: str) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise ValueError(f"{where}: expected a string")
    return raw


def _num(raw: object, where: str) -> float:
    if raw is None:
        return 0.0
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(f"{where}: expected a number")
    return float(raw)


def _bool(raw: object, where: str) -> bool:
    if raw is None:
        return False
    if not isinstance(raw, bool):
        raise ValueError(f"{where}: expected a boolean")
    return raw
