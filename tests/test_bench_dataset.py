"""The bench's synthetic k6 data (bench/dataset.py) for a run split over instances: what the
8-instance case of bench/getsli.py measures must be shaped like the runner's real series."""

from __future__ import annotations

import re
from collections import defaultdict

from bench import dataset
from sli_provider.k6.invocation import TREND_STATS, RunTags
from sli_provider.sli.quantile_merge import curves_from_vector, stat_percent

_LINE = re.compile(r"^(k6_\w+)\{(.*)\} (\S+) (\d+)$")


def _last_samples(spec: dataset.DatasetSpec) -> dict[tuple[str, str], float]:
    """(metric name, label body) → the value at the window's end."""
    last: dict[tuple[str, str], float] = {}
    for chunk in dataset._chunks(spec):
        for line in chunk.splitlines():
            match = _LINE.match(line)
            if match and int(match.group(4)) == spec.end_s:
                last[(match.group(1), match.group(2))] = float(match.group(3))
    return last


def test_split_runs_carry_instance_ids_and_the_runners_whole_curve() -> None:
    tags = RunTags("bench", "perf", "shop", "ctx")
    spec = dataset.DatasetSpec(tags=tags, start_s=1_000_000, minutes=1, series=2, instances=3)
    last = _last_samples(spec)
    assert len(last) == spec.series_count()
    instances = {labels.split('instance_id="')[1].split('"')[0] for _, labels in last}
    assert instances == {"1", "2", "3"}
    # Every stat the runner asks k6 for, named as k6's remote write names it (p(99.25) → p9925).
    written = {
        name.removeprefix("k6_http_req_duration_")
        for name, _ in last
        if name.startswith("k6_http_req_duration_")
    }
    assert written == {s.replace("(", "").replace(")", "").replace(".", "") for s in TREND_STATS}
    # Each series' curve rises from min to max, and instances differ.
    curves: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for (name, labels), value in last.items():
        stat = name.removeprefix("k6_http_req_duration_")
        if name.startswith("k6_http_req_duration_") and re.fullmatch(r"p\d+|min|max", stat):
            curves[labels].append((stat_percent(stat), value))
    assert len(curves) == spec.series * spec.instances
    for points in curves.values():
        values = [v for _, v in sorted(points)]
        assert values == sorted(values) and values[0] < values[-1]
    vector = [
        {
            "metric": {"__name__": name, "instance_id": labels.split('instance_id="')[1][0]},
            "value": [spec.end_s, str(value)],
        }
        for (name, labels), value in last.items()
        if name.startswith("k6_http_req_duration_") and 'status="200"' in labels
    ]
    merged = curves_from_vector(vector, 1000.0)
    assert len(merged) == 3 and len({c.at(95.0) for c in merged}) == 3


def test_one_instance_keeps_the_datasets_size() -> None:
    """Without instances the dataset keeps the size bench/README.md's figures were measured on."""
    tags = RunTags("bench", "perf", "shop", "ctx")
    spec = dataset.DatasetSpec(tags=tags, start_s=1_000_000, minutes=1, series=300)
    assert spec.series_count() == 10_802
    assert "instance_id" not in next(iter(dataset._chunks(spec)))
