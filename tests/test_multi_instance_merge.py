"""The quantile-curve merge (sli/quantile_merge.py) on vectors shaped like Prometheus' answers."""

from __future__ import annotations

import random
from typing import Any

import pytest

from devkit.k6truth import percentile
from sli_provider.k6.invocation import TREND_STATS
from sli_provider.sli.quantile_merge import (
    QuantileCurve,
    _adjacent_order_statistics,
    _order_statistic,
    curves_from_vector,
    merged_percentile,
    percentiles_of_curves,
    stat_percent,
)
from sli_provider.sli.results import ValueFailure

CURVE_PERCENTS = sorted({float(s[2:-1]) for s in TREND_STATS if s.startswith("p(")} | {0.0, 100.0})


def percentile_of_curves(
    result: Any, percent: float, scale: float = 1.0, count_scale: float = 1.0
) -> float:
    """One percentile through the service's own path (``scale``: s → ms), its failure raised."""
    value = percentiles_of_curves(result, [percent], scale, count_scale)[percent]
    if isinstance(value, ValueFailure):
        raise value
    return value


def vector(instance: str, samples: list[float], *, count: bool = True) -> list[dict[str, Any]]:
    """The series k6 writes for one instance's http_req_duration (values in seconds)."""
    ordered = sorted(samples)
    series = []
    for pct in CURVE_PERCENTS:
        stat = {0.0: "min", 100.0: "max"}.get(pct) or "p" + f"{pct:g}".replace(".", "")
        value = percentile(ordered, pct)
        series.append(
            {
                "metric": {"__name__": f"k6_http_req_duration_{stat}", "instance_id": instance},
                "value": [0, str(value)],
            }
        )
    if count:
        series.append(
            {
                "metric": {"__name__": "k6_http_req_duration_count", "instance_id": instance},
                "value": [0, str(len(samples) / 1000)],
            }  # k6 divides a time trend's count by 1000
        )
    return series


def test_stat_names_read_as_k6_writes_them() -> None:
    assert [stat_percent(s) for s in ("p1", "p50", "p995", "p999", "min", "max")] == [
        1.0,
        50.0,
        99.5,
        99.9,
        0.0,
        100.0,
    ]


def test_one_instance_gives_its_own_value_exactly() -> None:
    samples = [random.Random(1).lognormvariate(0, 1) for _ in range(500)]
    for pct in (50.0, 90.0, 95.0, 99.0):
        got = percentile_of_curves(vector("1", samples), pct, 1000.0, 1000.0)
        assert got == percentile(sorted(samples), pct) * 1000


@pytest.mark.parametrize("shift", [0.0, 0.5, 3.0])
def test_instances_merge_close_to_the_union(shift: float) -> None:
    rng = random.Random(7)
    fast = [rng.lognormvariate(0, 0.5) for _ in range(3000)]
    slow = [shift + rng.lognormvariate(0, 0.5) for _ in range(1000)]
    union = sorted(fast + slow)
    result = vector("1", fast) + vector("2", slow)
    for pct in (50.0, 90.0, 95.0, 99.0):
        exact = percentile(union, pct)
        assert percentile_of_curves(result, pct, count_scale=1000.0) == pytest.approx(
            exact, rel=0.01
        ), pct
        # The instances' counts matter: unweighted, the slow instance would pull p50 up.
    naive = max(percentile(sorted(fast), 50.0), percentile(sorted(slow), 50.0))
    if shift >= 3.0:
        assert naive > percentile(union, 50.0) * 2


def test_series_without_counts_give_the_largest_value() -> None:
    result = vector("1", [1.0, 2.0], count=False) + vector("2", [3.0, 4.0], count=False)
    assert merged_percentile(curves_from_vector(result, 1000.0), 50.0) == 3.5


def test_missing_stat_and_empty_vector_are_no_data() -> None:
    only_p99 = [{"metric": {"__name__": "k6_http_req_duration_p99"}, "value": [0, "0.5"]}]
    assert percentile_of_curves(only_p99, 99.0) == 0.5
    with pytest.raises(ValueFailure) as missing:
        percentile_of_curves(only_p99, 95.0)
    assert missing.value.code == "no_data"
    assert "lack the trend stats this indicator reads" in str(missing.value)
    with pytest.raises(ValueFailure) as empty:
        percentile_of_curves([], 95.0)
    assert empty.value.code == "no_data"


def test_samples_are_read_back_exactly_where_the_curve_is_denser_than_them() -> None:
    rng = random.Random(3)
    samples = sorted(rng.expovariate(1.0) for _ in range(300))
    (curve,) = curves_from_vector(vector("1", samples), 1000.0)
    # From p(99) on the points are 0.3 ranks apart: every tail sample is recovered exactly.
    for rank in range(296, 300):
        assert curve.sample_at(rank) == pytest.approx(samples[rank], rel=1e-9), rank


def _instances(seed: int, count: int, size: int, *, step: float = 0.0) -> list[dict[str, Any]]:
    """``count`` instances' curves; ``step`` > 0 rounds latencies to it, so values repeat."""
    rng = random.Random(seed)
    result: list[dict[str, Any]] = []
    for i in range(count):
        samples = [0.02 * i + rng.lognormvariate(-2, 0.6) for _ in range(rng.randint(2, size))]
        if step:
            samples = [round(s / step) * step for s in samples]
        result += vector(str(i + 1), samples)
    return result


@pytest.mark.parametrize("seed", range(12))
def test_the_merge_finds_the_samples_that_bisecting_each_rank_finds(seed: int) -> None:
    """The walk from a nearby value gives the union's samples at rank and rank + 1 exactly as
    bisecting down to adjacent floats for each rank (the reference, kept as the fallback);
    also with many equal values (latencies rounded to 1 ms) and with tiny instances."""
    result = _instances(seed, 1 + seed % 8, (50, 3000)[seed % 2], step=0.001 if seed % 3 else 0)
    curves = curves_from_vector(result, 1000.0)
    total = sum(c.count or 0 for c in curves)
    ranks = {0, 1, total // 2, total - 2, total - 1} | {
        int(p / 100 * (total - 1)) for p in (50, 90, 95, 99, 99.9)
    }
    for rank in sorted(r for r in ranks if 0 <= r < total):
        expected_next = _order_statistic(curves, min(rank + 1, total - 1))
        assert _adjacent_order_statistics(curves, rank) == (
            _order_statistic(curves, rank),
            expected_next,
        ), rank


def test_eight_instances_merge_with_few_curve_look_ups() -> None:
    """Four percentiles of 8 instances' curves (a get-sli's built-ins on an 8-instance run)
    read the curves some hundreds of times, not thousands (3,520 when each rank was bisected
    down to adjacent floats). Counted, not timed."""
    looked_up = 0

    class Counting(QuantileCurve):
        def count_at_most(self, value: float) -> int:
            nonlocal looked_up
            looked_up += 1
            return super().count_at_most(value)

    curves = [
        Counting(c.count, c.points) for c in curves_from_vector(_instances(8, 8, 20000), 1000.0)
    ]
    for percent in (50.0, 90.0, 95.0, 99.0):
        merged_percentile(curves, percent)
    assert looked_up <= 4 * 8 * 16, looked_up
