"""A percentile of the whole run from several k6 instances' quantile curves.

Each instance of a distributed run writes its own trend-stat gauges: ``min``, ``max``, its count
and a dense set of its own percentiles (``k6.invocation.TREND_STATS``). Per-instance percentiles
alone cannot give the union's; their curves can, closely: each instance's curve, read as a
piecewise-linear distribution function, is weighted by the instance's count, and the merged
function is inverted at the wanted percentile. With one instance the wanted percentile is one of
the curve's own points, so the result is k6's value exactly. The error for several instances is
measured in tests/test_multi_instance.py and stated in docs/builtin-slis.md.

Input is a Prometheus instant vector of ``k6_<trend>_<stat>`` series; the series of one instance
are those whose labels, ``__name__`` aside, are equal (``instance_id`` or any other split).
"""

from __future__ import annotations

import bisect
import heapq
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from sli_provider.k6.invocation import TREND_STATS_SHOWN
from sli_provider.sli.results import ValueFailure

# Built-ins computed from their query's curves: name → percent. Their values are in seconds in
# Prometheus and in ms in the reply.
MERGED_PERCENTILES: Mapping[str, float] = {
    "http_req_duration_p50": 50.0,
    "http_req_duration_p90": 90.0,
    "http_req_duration_p95": 95.0,
    "http_req_duration_p99": 99.0,
    "iteration_duration_p95": 95.0,
}
SECONDS_TO_MS = 1000.0
# k6 divides a time trend's count stat by 1000 too (../shared k6-prometheus.md, pitfall 9).
TIME_TREND_COUNT_SCALE = 1000.0

# k6 names p(99.5) "..._p995" and p(50) "..._p50"; the stats asked for have no fraction below 10.
_STAT = re.compile(r"_(p\d+|min|max|count)$")


@lru_cache(maxsize=512)  # a curve query repeats the same ~130 names per instance
def stat_percent(stat: str) -> float:
    """``p95`` → 95.0, ``p995`` → 99.5, ``min`` → 0, ``max`` → 100."""
    if stat == "min":
        return 0.0
    if stat == "max":
        return 100.0
    digits = stat[1:]
    return float(digits if len(digits) <= 2 else f"{digits[:2]}.{digits[2:]}")


@dataclass(frozen=True)
class QuantileCurve:
    """One instance: ``points`` (percent, value) sorted by percent, 0 = min … 100 = max;
    ``count`` its number of samples, None when k6 did not write it."""

    count: int | None
    points: tuple[tuple[float, float], ...]

    def holds(self, *percents: float) -> bool:
        return all(p in self._held for p in percents)

    @cached_property
    def _held(self) -> frozenset[float]:
        return frozenset(p for p, _ in self.points)

    def at(self, percent: float) -> float:
        return dict(self.points)[percent]

    @cached_property
    def _ranks(self) -> list[float]:
        n = self.count or 1
        return [p / 100.0 * (n - 1) for p, _ in self.points]

    @cached_property
    def _values(self) -> list[float]:
        return [v for _, v in self.points]

    def sample_at(self, rank: int) -> float:
        """The instance's sample at 0-based ``rank``, read from the curve.

        k6's p(x) interpolates linearly between the samples at the whole ranks around
        x/100·(n-1), so the curve is a polyline with a knot at every sample. Two of its points
        within one whole-rank step fix that step's line, hence the sample at its end exactly
        (the tail, where the points are denser than the samples); elsewhere the points around
        the rank are interpolated.
        """
        ranks, values = self._ranks, self._values
        i = bisect.bisect_left(ranks, rank - _RANK_SLACK)
        if i < len(ranks) and abs(ranks[i] - rank) <= _RANK_SLACK:
            return values[i]
        # Two points in (rank, rank + 1): extend their line back to the rank.
        if i + 1 < len(ranks) and ranks[i + 1] < rank + 1:
            return _line(ranks[i], values[i], ranks[i + 1], values[i + 1], rank)
        # Two points in (rank - 1, rank): extend their line forward.
        if i >= 2 and ranks[i - 2] > rank - 1:
            return _line(ranks[i - 2], values[i - 2], ranks[i - 1], values[i - 1], rank)
        if i == 0:
            return values[0]
        if i >= len(ranks):
            return values[-1]
        return _line(ranks[i - 1], values[i - 1], ranks[i], values[i], rank)

    def count_at_most(self, value: float) -> int:
        """How many of the instance's samples are ≤ ``value`` (samples read with sample_at).

        The curve's rank at ``value`` gives the count to within a sample or two; sample_at
        settles it, so a call costs a few curve look-ups, however many samples there are.
        """
        n = self.count or 0
        values = self._values
        if value < values[0]:
            return 0
        if value >= values[-1]:
            return n
        i = bisect.bisect_right(values, value) - 1
        rank = _line(values[i], self._ranks[i], values[i + 1], self._ranks[i + 1], value)
        count = min(n, max(0, math.floor(rank + _RANK_SLACK) + 1))
        while count > 0 and self.sample_at(count - 1) > value:
            count -= 1
        while count < n and self.sample_at(count) <= value:
            count += 1
        return count


def _line(x0: float, y0: float, x1: float, y1: float, x: float) -> float:
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


# Labels that tell a curve's series apart, not instances: the stat's name, and the marker the
# count's series carries so PromQL's `or` keeps it (sli-templates/k6.yaml).
_NOT_INSTANCE_LABELS = frozenset({"__name__", "curve_part"})
# Interpolation lands a hair below a whole rank it should hit exactly.
_RANK_SLACK = 1e-9
_BISECTIONS = 200
# How close (in samples) the bisection gets to a rank before the samples are walked in order.
_WALK = 16


def curves_from_vector(result: Any, count_scale: float = 1.0) -> list[QuantileCurve]:
    """Group an instant vector of trend-stat series into one curve per instance.

    ``count_scale``: what k6's count stat must be multiplied by (1000 for time trends, whose
    count k6 divides by 1000 like their values).
    """
    if not isinstance(result, list):
        raise ValueFailure("bad_result", f"unexpected result shape {type(result).__name__}")
    grouped: dict[tuple[tuple[str, str], ...], dict[str, float]] = {}
    for sample in result:
        labels: Mapping[str, str] = sample.get("metric", {})
        match = _STAT.search(labels.get("__name__", ""))
        if match is None:
            continue
        key = tuple(sorted((k, v) for k, v in labels.items() if k not in _NOT_INSTANCE_LABELS))
        grouped.setdefault(key, {})[match.group(1)] = float(sample["value"][1])
    curves = []
    for stats in grouped.values():
        raw_count = stats.pop("count", None)
        count = None if raw_count is None else round(raw_count * count_scale)
        if count is not None and count <= 0:
            continue  # an instance that made no request of this kind weighs nothing
        points = sorted((stat_percent(s), v) for s, v in stats.items() if math.isfinite(v))
        if points:
            curves.append(QuantileCurve(count, tuple(points)))
    if not curves:
        raise ValueFailure("no_data", "no data: the query returned an empty result")
    return curves


def merged_percentile(curves: Sequence[QuantileCurve], percent: float) -> float:
    """k6's percentile of the union of all instances' samples, from their curves.

    One instance gives its own value exactly. Otherwise the union's samples at the ranks
    around ``percent`` are found by counting, on every curve, the samples at or below a value,
    and interpolated as k6 does. Merging needs every curve's count, min and max (the runner's
    trend stats); series of a k6 run without them (k6's default writes only p99) give the
    largest series' value, an upper bound, as one k6 with request tags would.
    """
    if not all(c.holds(percent) for c in curves):
        raise ValueFailure("no_data", missing_stats_reason(percent))
    if len(curves) == 1:
        return curves[0].at(percent)
    if not all(c.count and c.holds(0.0, 100.0) for c in curves):
        return max(c.at(percent) for c in curves)
    total = sum(c.count or 0 for c in curves)
    rank = percent / 100.0 * (total - 1)
    below = math.floor(rank)
    low, high = _adjacent_order_statistics(curves, below)
    return low + (high - low) * (rank - below)


def _adjacent_order_statistics(curves: Sequence[QuantileCurve], rank: int) -> tuple[float, float]:
    """The union's samples at 0-based ``rank`` and ``rank + 1`` (the same at the last rank).

    The value is narrowed down to one with a few samples fewer than ``rank + 1`` at or below it,
    by false position on the count (the curves are smooth, so a handful of steps), bisecting
    whenever a step does not halve the bracket; from there the instances' next samples are
    walked in order, as in a merge of sorted lists. The same samples as bisecting down to
    adjacent floats for each rank (``_order_statistic``), for a fraction of the curve look-ups:
    a get-sli merges five percentiles, over 8 instances' curves in the bench (bench/README.md).
    """
    low = min(c.points[0][1] for c in curves)
    high = max(c.points[-1][1] for c in curves)
    counts = [c.count_at_most(low) for c in curves]
    below, above = sum(counts), sum(c.count or 0 for c in curves)
    if below > rank:  # the least value is the sample at rank (and maybe at rank + 1)
        return low, _order_statistic(curves, rank + 1)
    interpolate = True
    for _ in range(_BISECTIONS):
        if rank - below <= _WALK:
            return _walk(curves, counts, rank - below)
        width = high - low
        middle = (low + high) / 2
        if interpolate:  # aim inside the walk's reach below rank
            target = rank - _WALK / 2
            guess = low + width * (target - below) / (above - below)
            if low < guess < high:
                middle = guess
        if middle in (low, high):
            break  # many samples of one value: left to the bisection of each rank
        at_middle = [c.count_at_most(middle) for c in curves]
        if sum(at_middle) > rank:
            high, above = middle, sum(at_middle)
        else:
            low, counts, below = middle, at_middle, sum(at_middle)
        interpolate = high - low <= width / 2
    return _order_statistic(curves, rank), _order_statistic(curves, rank + 1)


def _walk(curves: Sequence[QuantileCurve], counts: Sequence[int], skip: int) -> tuple[float, float]:
    """The union's next samples after the first ``counts[i]`` of each curve: the ``skip``-th
    and the one after it (the last sample twice when there is none after it)."""
    upcoming = [
        (c.sample_at(k), i)
        for i, (c, k) in enumerate(zip(curves, counts, strict=True))
        if k < (c.count or 0)
    ]
    heapq.heapify(upcoming)
    taken = list(counts)
    found: list[float] = []
    while len(found) < skip + 2 and upcoming:
        value, i = heapq.heappop(upcoming)
        found.append(value)
        taken[i] += 1
        if taken[i] < (curves[i].count or 0):
            heapq.heappush(upcoming, (curves[i].sample_at(taken[i]), i))
    return found[skip], found[min(skip + 1, len(found) - 1)]


def _order_statistic(curves: Sequence[QuantileCurve], rank: int) -> float:
    """The union's sample at 0-based ``rank``: the least value with more than ``rank`` samples
    at or below it."""
    low = min(c.points[0][1] for c in curves)
    high = max(c.points[-1][1] for c in curves)
    if sum(c.count_at_most(low) for c in curves) > rank:
        return low
    for _ in range(_BISECTIONS):
        middle = (low + high) / 2
        if middle in (low, high):
            break  # adjacent floats: high is the value
        if sum(c.count_at_most(middle) for c in curves) > rank:
            high = middle
        else:
            low = middle
    return high


def missing_stats_reason(percent: float) -> str:
    return (
        f"no data: the k6 series in the window lack the trend stats this indicator reads "
        f"(p({percent:g}); k6 ran without K6_PROMETHEUS_RW_TREND_STATS={TREND_STATS_SHOWN}, "
        "which `sli-provider run` sets)"
    )


def percentiles_of_curves(
    result: Any, percents: Iterable[float], scale: float = 1.0, count_scale: float = 1.0
) -> dict[float, float | ValueFailure]:
    """Each of ``percents`` from one curve query's instant vector, its series grouped once: the
    percentile built-ins share one query. A percentile that has no value gets its reason."""
    try:
        curves = curves_from_vector(result, count_scale)
    except ValueFailure as exc:
        return dict.fromkeys(percents, exc)
    values: dict[float, float | ValueFailure] = {}
    for percent in percents:
        try:
            values[percent] = merged_percentile(curves, percent) * scale
        except ValueFailure as exc:
            values[percent] = exc
    return values
