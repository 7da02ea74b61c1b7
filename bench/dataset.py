"""k6-shaped metrics as OpenMetrics text, backfilled into a fresh Prometheus TSDB with promtool.

The families and their names are what k6's ``experimental-prometheus-rw`` output writes under the
project's invocation (``sli_provider/k6/invocation.py``): counters as ``k6_<metric>_total``,
rates as ``k6_<metric>_rate``, gauges as ``k6_<metric>`` and every trend as one gauge per stat in
``TREND_STATS`` (``p(95)`` becomes ``_p95``). Every series carries the run's four ``keptn_*``
labels. Request-level families are split by ``scenario``, ``name``, ``method``, ``status`` and
``url``, as a script that tags its requests produces; ``--series`` of them per family. Only
``vus`` and ``vus_max`` stay one series each (k6 emits them from the engine, not per request).

``instances`` > 1 makes the run one split over that many k6 processes, as k6-operator runs it:
every series (``vus`` and ``vus_max`` too) is written once per instance with its ``instance_id``
label, each instance with its own latencies, and every trend carries the runner's whole quantile
curve (all of ``TREND_STATS``: 129 gauges), which the percentile built-ins merge.

Values are plausible, not k6's: cumulative counters that grow, 0/1 failure rates by status, trend
stats with p50 < p90 < p95 < p99 < max that wobble a little every second (so chunks compress like
real data, not like constants). Samples are one per ``interval_s`` (k6's push interval here).
"""

from __future__ import annotations

import itertools
import math
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sli_provider.k6.invocation import TREND_STATS, RunTags
from sli_provider.sli.quantile_merge import stat_percent

Kind = Literal["counter", "rate", "gauge", "trend"]

# promtool cuts blocks at multiples of this (its default --max-block-duration in 2.42); a window
# inside one range is read in one pass instead of two.
BLOCK_RANGE_S = 2 * 3600
# The devkit Prometheus keeps 2 h (relative to the newest block), so a longer window would lose
# its oldest block at start-up.
MAX_MINUTES = 110
# Distinct value tables per family; series i uses table i % VARIANTS (even, so the table's parity
# matches the series' status: see _label_sets).
VARIANTS = 16
SCENARIOS = ("browse", "search", "cart", "checkout")
ERROR_STATUSES = ("404", "500", "503")

# (trend metric, typical duration in seconds)
TRENDS: tuple[tuple[str, float], ...] = (
    ("http_req_duration", 0.12),
    ("http_req_waiting", 0.10),
    ("iteration_duration", 1.5),
)
# Stat suffix → factor of the series' typical duration.
_STAT_FACTOR = {
    "p50": 1.0,
    "med": 1.0,
    "p90": 1.8,
    "p95": 2.2,
    "p99": 3.5,
    "avg": 1.2,
    "min": 0.25,
    "max": 6.0,
}


@dataclass(frozen=True)
class Family:
    name: str
    kind: Kind
    per_request: bool  # False: one series (no request tags)
    scale: float = 1.0  # counter increment per second, trend duration in seconds
    stat: str = ""  # trend stat suffix


def stat_suffix(stat: str) -> str:
    """k6's remote-write suffix for a trend stat: ``p(95)`` → ``p95``, ``p(99.9)`` → ``p999``."""
    return stat.replace("(", "").replace(")", "").replace(".", "")


def _percentile_factor(stat: str) -> float:
    """A curve point's factor of the typical duration, linear between the stats above, so every
    instance's curve rises from min to max as k6's does."""
    if stat in _STAT_FACTOR:
        return _STAT_FACTOR[stat]
    percent = stat_percent(stat)
    knots = [(0.0, _STAT_FACTOR["min"]), (50.0, 1.0), (90.0, 1.8), (95.0, 2.2), (99.0, 3.5)]
    knots.append((100.0, _STAT_FACTOR["max"]))
    for (p0, f0), (p1, f1) in itertools.pairwise(knots):
        if p0 <= percent <= p1:
            return f0 + (f1 - f0) * (percent - p0) / (p1 - p0)
    raise ValueError(f"no factor for trend stat {stat!r}")


def k6_families(curve: bool = False) -> list[Family]:
    families = [
        Family("k6_http_reqs_total", "counter", True, 2.0),
        Family("k6_http_req_failed_rate", "rate", True),
        Family("k6_checks_rate", "rate", True),
        Family("k6_iterations_total", "counter", True, 1.0),
        Family("k6_data_received_total", "counter", True, 4096.0),
        Family("k6_data_sent_total", "counter", True, 512.0),
        Family("k6_vus", "gauge", False, 50.0),
        Family("k6_vus_max", "gauge", False, 50.0),
    ]
    # The stats the dataset has values for; the runner's extra curve percentiles (p(1) … p(99.9),
    # for merging k6 instances) are left out so the dataset keeps its size and the bench's
    # numbers stay comparable.
    # ``curve``: all of them, as a run split over instances needs for its percentiles.
    stats = [s for s in TREND_STATS if curve or stat_suffix(s) in {*_STAT_FACTOR, "count", "sum"}]
    for metric, typical in TRENDS:
        for stat in stats:
            suffix = stat_suffix(stat)
            families.append(Family(f"k6_{metric}_{suffix}", "trend", True, typical, suffix))
    return families


@dataclass(frozen=True)
class DatasetSpec:
    tags: RunTags
    start_s: int  # first sample
    minutes: int
    series: int  # per request-level family (and instance)
    interval_s: int = 1
    instances: int = 1  # > 1: split over k6 instances (``instance_id``), with the whole curve

    @property
    def end_s(self) -> int:
        """Last sample; the get-sli window is [start_s, end_s]."""
        return self.start_s + self.minutes * 60

    @property
    def points(self) -> int:
        return self.minutes * 60 // self.interval_s + 1

    def families(self) -> list[Family]:
        return k6_families(curve=self.instances > 1)

    def series_count(self) -> int:
        per_instance = sum(self.series if f.per_request else 1 for f in self.families())
        return per_instance * self.instances

    def sample_count(self) -> int:
        return self.series_count() * self.points


def place_window(now_s: float, minutes: int, margin_s: int = 300) -> int:
    """A start time so the window ends at least ``margin_s`` ago inside one promtool block range.

    The head of a fresh Prometheus starts at its first scrape, so any past window is older than
    the head; staying inside one 2 h range makes promtool read the file once per block, not twice.
    """
    if not 1 <= minutes <= MAX_MINUTES:
        raise ValueError(f"--minutes must be 1..{MAX_MINUTES}, not {minutes}")
    width = minutes * 60
    latest_end = int(now_s) - margin_s
    range_start = latest_end // BLOCK_RANGE_S * BLOCK_RANGE_S
    if latest_end - width >= range_start:
        return latest_end - width
    # Too close after a boundary: end just before it instead (at most 2 h + margin ago).
    return range_start - 1 - width


def _label_sets(tags: RunTags, count: int) -> list[str]:
    """``{…}`` bodies: the run's keptn labels, then request tags for ``count`` series.

    Series come in pairs per request name: one with status 200 (even i) and one with an error
    status (odd i), as a script hitting an endpoint that sometimes fails produces.
    """
    base = ",".join(f'{key}="{value}"' for key, value in tags.as_tags().items())
    sets = []
    for i in range(count):
        endpoint = i // 2
        scenario = SCENARIOS[endpoint % len(SCENARIOS)]
        method = "POST" if endpoint % 5 == 4 else "GET"
        path = f"/api/{scenario}/item{endpoint:04d}"
        status = "200" if i % 2 == 0 else ERROR_STATUSES[endpoint % len(ERROR_STATUSES)]
        sets.append(
            f'{base},scenario="{scenario}",name="{method} {path}",method="{method}",'
            f'status="{status}",url="http://shop.bench.test{path}"'
        )
    return sets


def _value(family: Family, variant: int, i: int) -> str:
    """Sample i (seconds since start / interval) of one variant of a family, as text."""
    wobble = 1.0 + 0.04 * math.sin(i / 23.0 + variant) + 0.01 * math.sin(i * 1.7 + variant)
    rate = family.scale * (0.5 + variant / VARIANTS)
    if family.kind == "counter":
        return str(int(rate * i))
    if family.kind == "rate":
        if family.name == "k6_http_req_failed_rate":
            return "0" if variant % 2 == 0 else "1"
        return f"{min(1.0, 0.97 * wobble):.6g}"
    if family.kind == "gauge":
        return str(int(family.scale)) if family.name == "k6_vus_max" else str(int(50 * wobble))
    typical = family.scale * (0.5 + variant / VARIANTS)
    if family.stat == "count":
        return str(int(2 * (0.5 + variant / VARIANTS) * i))
    if family.stat == "sum":
        return f"{typical * 1.2 * 2 * (0.5 + variant / VARIANTS) * i:.6g}"
    return f"{typical * _percentile_factor(family.stat) * wobble:.6g}"


def _tables(family: Family, spec: DatasetSpec) -> list[list[str]]:
    """Per variant, every sample as ``"<value> <timestamp>"``."""
    stamps = [str(spec.start_s + i * spec.interval_s) for i in range(spec.points)]
    variants = VARIANTS if family.per_request else 1
    return [
        [f"{_value(family, v, i)} {stamp}" for i, stamp in enumerate(stamps)]
        for v in range(variants)
    ]


def _chunks(spec: DatasetSpec) -> Iterator[str]:
    """The OpenMetrics text, one series (all its samples) per chunk; ends with ``# EOF``.

    Instance ``k`` (1-based) of several takes the value table ``2k`` further on than instance 1
    (even, so the parity stays the status's): instances see different latencies and rates.
    """
    request_sets = _label_sets(spec.tags, spec.series)
    single = [",".join(f'{k}="{v}"' for k, v in spec.tags.as_tags().items())]
    for family in spec.families():
        tables = _tables(family, spec)
        for instance in range(1, spec.instances + 1):
            tag = f',instance_id="{instance}"' if spec.instances > 1 else ""
            shift = 2 * (instance - 1)
            for n, labels in enumerate(request_sets if family.per_request else single):
                prefix = f"{family.name}{{{labels}{tag}}} "
                yield prefix + ("\n" + prefix).join(tables[(n + shift) % len(tables)]) + "\n"
    yield "# EOF\n"


@dataclass(frozen=True)
class BuiltDataset:
    spec: DatasetSpec
    series: int
    samples: int
    file_bytes: int
    generate_s: float
    backfill_s: float
    blocks: tuple[str, ...]


def write_openmetrics(spec: DatasetSpec, path: Path) -> int:
    """Write the dataset to ``path`` chunk by chunk; returns its size in bytes."""
    size = 0
    with path.open("w", encoding="utf-8", buffering=4 * 1024 * 1024) as out:
        for chunk in _chunks(spec):
            size += out.write(chunk)
    return size


def backfill(openmetrics: Path, tsdb_dir: Path, promtool: str | None = None) -> list[str]:
    """``promtool tsdb create-blocks-from openmetrics`` into ``tsdb_dir``; returns block ids."""
    binary = promtool or shutil.which("promtool")
    if binary is None:
        raise FileNotFoundError("promtool not found on PATH (it ships with Prometheus)")
    tsdb_dir.mkdir(parents=True, exist_ok=True)
    argv = [binary, "tsdb", "create-blocks-from", "openmetrics", "--quiet"]
    result = subprocess.run(
        [*argv, str(openmetrics), str(tsdb_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"promtool failed with code {result.returncode}:\n{result.stderr[-2000:]}"
        )
    return sorted(p.name for p in tsdb_dir.iterdir() if (p / "meta.json").is_file())


def build(spec: DatasetSpec, workdir: Path, tsdb_dir: Path) -> BuiltDataset:
    """Generate the OpenMetrics file in ``workdir``, backfill it, delete it; timed."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "k6.om"
    began = time.perf_counter()
    size = write_openmetrics(spec, path)
    generated = time.perf_counter()
    try:
        blocks = backfill(path, tsdb_dir)
    finally:
        path.unlink(missing_ok=True)
    done = time.perf_counter()
    return BuiltDataset(
        spec=spec,
        series=spec.series_count(),
        samples=spec.sample_count(),
        file_bytes=size,
        generate_s=generated - began,
        backfill_s=done - generated,
        blocks=tuple(blocks),
    )


def series_selector(tags: RunTags) -> str:
    """Every k6 series of the run (for a sanity count)."""
    quoted = [f'{key}="{value}"' for key, value in tags.as_tags().items()]
    return "{" + ",".join(['__name__=~"k6_.+"', *quoted]) + "}"
