"""A split run's thresholds judged on the whole test: its runners' series merged in the store.

Every runner of a TestRun writes its own series (split by ``instance_id``); a threshold of the
script is judged on their merge, the same merge the built-in SLIs use (sli-templates/k6.yaml):

* ``count`` of a Counter: the sum of the runners' counts; ``rate`` of a Counter: that sum per
  second of the run's window.
* ``rate`` of a Rate: each runner's ratio weighted by its samples — for ``http_req_failed`` its
  requests (exact), for other Rates its iterations (exact when the Rate is added alike in every
  iteration, as ``checks`` usually is; k6 writes only the ratio).
* ``value`` of a Gauge: the runners' last values summed for ``vus``/``vus_max`` (they run at the
  same time), else the largest runner's last value.
* Trends: ``avg`` = Σsum ÷ Σcount; ``min``/``max`` of the runners' mins/maxes; ``med`` and
  ``p(N)`` from the runners' quantile curves (sli/quantile_merge.py). Time trends are written in
  seconds; thresholds count milliseconds, as k6 does.

Submetrics (``http_req_duration{kind:api}``) add their tags as label matchers. A tag no series
carries (k6 runs with ``--system-tags ""``: only tags the script sets reach the store) makes the
threshold one that cannot be judged, with that reason.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sli_provider.k6.thresholds import ThresholdSpec
from sli_provider.ports.querier import Querier
from sli_provider.runner.summary import Threshold
from sli_provider.sli.quantile_merge import percentiles_of_curves
from sli_provider.sli.results import ValueFailure
from sli_provider.sli.templating import duration_seconds, quote_promql, scope_selector
from sli_provider.sli.window import SLIWindow

_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SUMMED_GAUGES = frozenset({"vus", "vus_max"})
# k6's built-in time trends, for when their values cannot tell (every sample 0).
_TIME_TRENDS = frozenset(
    {
        "http_req_duration",
        "http_req_blocked",
        "http_req_connecting",
        "http_req_receiving",
        "http_req_sending",
        "http_req_tls_handshaking",
        "http_req_waiting",
        "iteration_duration",
        "group_duration",
    }
)
SECONDS_TO_MS = 1000.0


@dataclass(frozen=True)
class Judged:
    """A threshold and the whole test's value; ``why_not`` when it could not be judged."""

    spec: ThresholdSpec
    value: float | None
    why_not: str | None = None

    @property
    def held(self) -> bool:
        """Crossed, or not judged, is not held: a gate must not pass on an unchecked threshold."""
        return self.value is not None and self.spec.held_at(self.value)

    def as_threshold(self) -> Threshold:
        return Threshold(self.spec.key, self.spec.expression, self.held, self.value, self.why_not)


class _NoValue(Exception):
    pass


class WholeTest:
    """Reads the whole test's values of thresholds from ``store`` for one run's ``window``."""

    def __init__(self, store: Querier, window: SLIWindow) -> None:
        self._store = store
        self._window = window
        self._range = f"[{duration_seconds(window)}s]"
        self._scope = scope_selector(window, with_context=True)

    async def judge(self, specs: Sequence[ThresholdSpec]) -> list[Judged]:
        return list(await asyncio.gather(*(self._judge(spec) for spec in specs)))

    async def _judge(self, spec: ThresholdSpec) -> Judged:
        bad = [tag for tag, _ in spec.tags if not _LABEL_NAME.match(tag)]
        if bad:
            return Judged(spec, None, f"tag {bad[0]!r} cannot be a Prometheus label")
        try:
            value = await self._value(spec)
        except _NoValue as exc:
            return Judged(spec, None, str(exc))
        except ValueFailure as exc:
            return Judged(spec, None, str(exc))
        return Judged(spec, value)

    def _selector(self, spec: ThresholdSpec) -> str:
        tags = "".join(f",{tag}={quote_promql(value)}" for tag, value in spec.tags)
        return self._scope + tags

    async def _scalar(self, query: str) -> float | None:
        """The single value of ``query``; None when it has no series or no number (0 ÷ 0)."""
        result = await self._store.instant(query, self._window.end_s)
        if not isinstance(result, list) or not result:
            return None
        value = float(result[0]["value"][1])
        return None if math.isnan(value) else value

    def _last(self, series: str, spec: ThresholdSpec, how: str = "sum") -> str:
        return f"{how}(last_over_time({series}{{{self._selector(spec)}}}{self._range}))"

    async def _value(self, spec: ThresholdSpec) -> float:
        name = f"k6_{spec.name}"
        match spec.aggregation:
            case "count":
                count = await self._scalar(self._last(f"{name}_total", spec))
                return count if count is not None else await self._absent(spec, zero=True)
            case "rate":
                return await self._rate(spec, name)
            case "value":
                how = "sum" if spec.name in _SUMMED_GAUGES else "max"
                value = await self._scalar(self._last(name, spec, how))
                return value if value is not None else await self._absent(spec)
            case _:
                return await self._trend(spec, name)

    async def _rate(self, spec: ThresholdSpec, name: str) -> float:
        selector, window = self._selector(spec), self._range
        if spec.name == "http_req_failed":
            requests = f"last_over_time(k6_http_reqs_total{{{selector}}}{window})"
            query = (
                f"sum(last_over_time({name}_rate{{{selector}}}{window}) * {requests})"
                f" / sum({requests})"
            )
        else:
            iterations = f"sum by (instance_id) (last_over_time(k6_iterations_total{{{self._scope}}}{window}))"
            query = (
                f"sum(avg by (instance_id) (last_over_time({name}_rate{{{selector}}}{window}))"
                f" * on (instance_id) {iterations}) / sum({iterations})"
            )
        rate = await self._scalar(query)
        if rate is not None:
            return rate
        count = await self._scalar(self._last(f"{name}_total", spec))
        if count is not None:  # a Counter's rate: per second of the run
            return count / max(self._window.end_s - self._window.start_s, 1e-9)
        return await self._absent(spec)

    async def _trend(self, spec: ThresholdSpec, name: str) -> float:
        scale = await self._time_scale(spec, name)
        match spec.aggregation:
            case "avg":
                total = await self._scalar(self._last(f"{name}_sum", spec))
                count = await self._scalar(self._last(f"{name}_count", spec))
                if total is None or count is None:
                    return await self._absent(spec)
                if count == 0:
                    raise _NoValue(f"no samples of {spec.key} in the store")
                # For time trends k6 writes sum and count both divided by 1000: the ratio is ms.
                return total / count
            case "min" | "max":
                value = await self._scalar(
                    self._last(f"{name}_{spec.aggregation}", spec, spec.aggregation)
                )
                return value * scale if value is not None else await self._absent(spec)
            case _:
                percent = 50.0 if spec.aggregation == "med" else spec.percent
                assert percent is not None  # p(N) always has one
                result = await self._store.instant(
                    self._curve_query(spec, name), self._window.end_s
                )
                if not result:
                    return await self._absent(spec)
                merged = percentiles_of_curves(result, [percent], scale=scale, count_scale=scale)
                percentile = merged[percent]
                if isinstance(percentile, ValueFailure):
                    raise percentile
                return percentile

    def _curve_query(self, spec: ThresholdSpec, name: str) -> str:
        """The built-in percentile SLIs' query (sli-templates/k6.yaml) for this (sub)metric."""
        selector, window = self._selector(spec), self._range
        return (
            f'max by (__name__, instance_id) (last_over_time({{__name__=~"{name}_(p[0-9]+|min|max)",'
            f"{selector}}}{window}))"
            f" or label_replace(sum by (__name__, instance_id) (last_over_time({name}_count"
            f'{{{selector}}}{window})), "curve_part", "count", "", "")'
        )

    async def _time_scale(self, spec: ThresholdSpec, name: str) -> float:
        """1000 for a time trend (written in seconds, judged in ms), else 1: for a time trend k6
        divides every stat by 1000, count and sum too, so sum ÷ count ÷ avg is 1000, else 1."""
        selector, window = self._selector(spec), self._range
        query = (
            f"max(last_over_time({name}_sum{{{selector}}}{window})"
            f" / last_over_time({name}_count{{{selector}}}{window})"
            f" / last_over_time({name}_avg{{{selector}}}{window}))"
        )
        ratio = await self._scalar(query)
        if ratio is None or not math.isfinite(ratio):
            return SECONDS_TO_MS if spec.name in _TIME_TRENDS else 1.0
        return SECONDS_TO_MS if ratio > math.sqrt(SECONDS_TO_MS) else 1.0

    async def _absent(self, spec: ThresholdSpec, *, zero: bool = False) -> float:
        """Why a (sub)metric has no series; 0 for a count when the tags do reach the store (k6
        counts 0 when no sample matched)."""
        family = f'{{__name__=~"k6_{re.escape(spec.name)}(_[a-z0-9]+)?",{self._scope}'
        for tag, _ in spec.tags:
            carried = await self._scalar(
                f'count(last_over_time({family},{tag}!=""}}{self._range}))'
            )
            if carried is None:
                raise _NoValue(
                    f"no series of {spec.name} in the store carry the tag {tag!r}: runners run "
                    'with --system-tags "", so only tags the script sets reach the store '
                    f"(give the requests tags: {{{tag}: ...}})"
                )
        if zero:
            return 0.0
        raise _NoValue(f"no samples of {spec.key} in the store")


def crossed_first(judged: Sequence[Judged]) -> Judged | None:
    return next((j for j in judged if j.value is not None and not j.held), None)


def describe_values(judged: Sequence[Judged]) -> dict[str, Any]:
    """For logs: each threshold with its value."""
    return {f"{j.spec.key}: {j.spec.expression}": j.value for j in judged}
