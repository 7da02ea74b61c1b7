"""The get-sli task: the request lighthouse sends, and the answer it expects (keptn-protocol.md §2.2-2.4)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sli_provider.errors import SliProviderError
from sli_provider.keptn.envelope import KeptnEvent, Result, Scope, Status
from sli_provider.keptn.names import name_problem
from sli_provider.keptn.timestamps import TimestampError, parse_keptn
from sli_provider.sli.window import SLIWindow

TASK = "get-sli"


class InvalidRequest(SliProviderError, ValueError):
    """A get-sli.triggered that is ours but cannot be answered with values; the text says why."""


@dataclass(frozen=True)
class GetSLIRequest:
    """A valid get-sli.triggered: what to evaluate, and start/end as sent (echoed in the reply)."""

    window: SLIWindow
    start: str
    end: str


class IndicatorLike(Protocol):
    """Anything shaped like a get-sli.finished ``indicatorValues`` item."""

    @property
    def metric(self) -> str: ...
    @property
    def value(self) -> float: ...
    @property
    def success(self) -> bool: ...
    @property
    def message(self) -> str: ...


@dataclass(frozen=True)
class IndicatorValue:
    metric: str
    value: float
    success: bool
    message: str = ""
    query: str = ""

    @classmethod
    def from_keptn(cls, item: Mapping[str, Any] | IndicatorLike) -> IndicatorValue:
        """From a JSON item; missing fields take Go's zero values, wrong types raise ValueError."""
        if not isinstance(item, Mapping):
            return cls(item.metric, float(item.value), bool(item.success), item.message or "")
        metric, value = item.get("metric"), item.get("value")
        success, message = item.get("success"), item.get("message")
        if metric is not None and not isinstance(metric, str):
            raise ValueError("indicatorValues.metric: expected a string")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError("indicatorValues.value: expected a number")
        if success is not None and not isinstance(success, bool):
            raise ValueError("indicatorValues.success: expected a boolean")
        if message is not None and not isinstance(message, str):
            raise ValueError("indicatorValues.message: expected a string")
        return cls(metric or "", float(value or 0.0), bool(success), message or "")

    def as_data(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "metric": self.metric,
            "value": self.value,
            "success": self.success,
        }
        if self.message:
            item["message"] = self.message
        if self.query:
            item["query"] = self.query
        return item


@dataclass(frozen=True)
class Outcome:
    status: Status
    result: Result
    message: str
    indicator_values: tuple[IndicatorValue, ...] = field(default_factory=tuple)


def get_sli_section(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    section = data.get(TASK)
    return section if isinstance(section, Mapping) else None


def requested_provider(event: KeptnEvent) -> str | None:
    """The ``sliProvider`` the event is addressed to, or None when it names none."""
    section = get_sli_section(event.data)
    if section is None:
        return None
    provider = section.get("sliProvider")
    return provider if isinstance(provider, str) else None


def parse_request(event: KeptnEvent) -> GetSLIRequest:
    """Validate the data of a get-sli.triggered addressed to us."""
    data = event.data
    scope = Scope.from_data(data)
    for name in ("project", "stage", "service"):
        if not getattr(scope, name):
            raise InvalidRequest(f"data.{name} is missing or empty")
        problem = name_problem(f"data.{name}", getattr(scope, name))
        if problem is not None:  # it names the directories sli.yaml is read from
            raise InvalidRequest(problem)
    section = get_sli_section(data)
    if section is None:
        raise InvalidRequest("data.get-sli is missing")

    start_text, end_text = section.get("start"), section.get("end")
    if not isinstance(start_text, str) or not isinstance(end_text, str):
        raise InvalidRequest("data.get-sli.start and data.get-sli.end must both be timestamps")
    try:
        start_s = parse_keptn(start_text)
    except TimestampError as exc:
        raise InvalidRequest(f"data.get-sli.start: {exc}") from None
    try:
        end_s = parse_keptn(end_text)
    except TimestampError as exc:
        raise InvalidRequest(f"data.get-sli.end: {exc}") from None
    if end_s < start_s:
        raise InvalidRequest(f"data.get-sli.end ({end_text}) is before start ({start_text})")

    raw_indicators = section.get("indicators") or []
    if not isinstance(raw_indicators, list) or not all(
        isinstance(name, str) and name for name in raw_indicators
    ):
        raise InvalidRequest("data.get-sli.indicators must be a list of indicator names")

    filters: list[tuple[str, str]] = []
    raw_filters = section.get("customFilters") or []
    if not isinstance(raw_filters, list):
        raise InvalidRequest("data.get-sli.customFilters must be a list of {key, value}")
    for item in raw_filters:
        if not (
            isinstance(item, Mapping)
            and isinstance(item.get("key"), str)
            and isinstance(item.get("value"), str)
        ):
            raise InvalidRequest(
                "data.get-sli.customFilters must be a list of {key, value} strings"
            )
        filters.append((item["key"], item["value"]))

    deployment = data.get("deployment")
    window = SLIWindow(
        project=scope.project,
        stage=scope.stage,
        service=scope.service,
        start_s=start_s,
        end_s=end_s,
        indicators=tuple(raw_indicators),
        custom_filters=tuple(filters),
        labels=scope.labels,
        deployment=deployment if isinstance(deployment, str) else "",
        context=event.shkeptncontext,
        gitcommitid=event.gitcommitid,
    )
    return GetSLIRequest(window=window, start=start_text, end=end_text)


def decide_outcome(values: Sequence[IndicatorValue]) -> Outcome:
    """The outcome table of keptn-protocol.md §2.4 for a provider that could run."""
    failed = [v for v in values if not v.success]
    if not values:
        return Outcome(Status.SUCCEEDED, Result.PASS, "no indicators were requested", ())
    if not failed:
        return Outcome(
            Status.SUCCEEDED, Result.PASS, f"all {len(values)} indicators retrieved", tuple(values)
        )
    summary = "; ".join(f"{v.metric}: {v.message}" for v in failed)
    if len(failed) == len(values):
        return Outcome(
            Status.SUCCEEDED,
            Result.FAIL,
            f"none of the {len(values)} indicators could be retrieved: {summary}",
            tuple(values),
        )
    return Outcome(
        Status.SUCCEEDED,
        Result.WARNING,
        f"{len(failed)} of {len(values)} indicators could not be retrieved: {summary}",
        tuple(values),
    )


def errored(message: str) -> Outcome:
    """The provider could not work at all (configuration unreadable, Prometheus unreachable)."""
    return Outcome(Status.ERRORED, Result.FAIL, message, ())


def finished_payload(start: str, end: str, values: Sequence[IndicatorValue]) -> dict[str, Any]:
    """``data["get-sli"]`` of the finished event; lighthouse copies start/end into the evaluation."""
    for value in values:
        if not math.isfinite(value.value):
            raise ValueError(f"indicator {value.metric} has a non-finite value")
    return {TASK: {"start": start, "end": end, "indicatorValues": [v.as_data() for v in values]}}
