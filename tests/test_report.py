"""The HTML report: self-contained, escaped, and rendered by a real browser (headless Chromium).

The evaluation and its history are scored by the real gate core, so the page shows what the
quality gate would report. The browser part needs Debian's ``chromium`` package.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import shutil
import struct
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from devkit.png import Image, PNGError, read_png
from sli_provider.gate import Evaluation, evaluate, parse_slo
from sli_provider.gate.html_chart import (
    ERRORED_COLOUR,
    RESULT_COLOURS,
    SERIES_COLOUR,
    TARGET_COLOURS,
    format_number,
)
from sli_provider.gate.html_report import render_html
from sli_provider.gate.records import StoredEvaluation

SLO_YAML = """\
spec_version: "1.0"
comparison:
  compare_with: several_results
  include_result_with_score: pass_or_warn
  number_of_comparison_results: 3
  aggregate_function: avg
objectives:
  - sli: http_req_duration_p95
    displayName: Response time p95 (ms)
    pass:
      - criteria: ["<=+10%", "<600"]
    warning:
      - criteria: ["<=800"]
    weight: 2
  - sli: http_req_failed_rate
    displayName: Error rate
    key_sli: true
    pass:
      - criteria: ["<=0.01"]
    warning:
      - criteria: ["<=0.05"]
  - sli: checks_rate
    pass:
      - criteria: [">=0.99"]
  - sli: http_reqs_per_second
    displayName: Throughput (req/s)
total_score:
  pass: "90%"
  warning: "70%"
"""
SLIS = ("http_req_duration_p95", "http_req_failed_rate", "checks_rate", "http_reqs_per_second")
NAMES = ("Response time p95 (ms)", "Error rate", "checks_rate", "Throughput (req/s)")
# Oldest first; the last one is the run being evaluated. None: the SLI returned no value.
RUNS: tuple[tuple[float | None, ...], ...] = (
    (420.0, 0.002, 0.998, 1510.0),
    (445.0, 0.004, 0.997, 1490.0),
    (530.0, 0.03, 0.995, None),
    (690.0, 0.004, 0.992, 1320.0),
    (452.0, 0.003, 0.999, 1555.0),
    (640.0, 0.08, 0.991, 1405.0),
)
START = 1_740_823_200.0  # 2025-03-01 10:00 UTC
HOSTILE = "<script>alert(1)</script>"


def _iso(unix: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix))


def scenario(*, store_current: bool = True) -> tuple[Evaluation, list[StoredEvaluation]]:
    """Score RUNS one after another, each against the stored ones; history newest first."""
    slo = parse_slo(SLO_YAML)
    history: list[StoredEvaluation] = []
    evaluation: Evaluation | None = None
    for number, values in enumerate(RUNS):
        at = START + number * 6 * 3600
        indicators = [
            {"metric": sli, "value": value or 0.0, "success": value is not None}
            | ({} if value is not None else {"message": "no data points"})
            for sli, value in zip(SLIS, values, strict=True)
        ]
        evaluation = evaluate(
            slo,
            indicators,
            [run.as_previous() for run in history],
            time_start=_iso(at - 300),
            time_end=_iso(at),
            slo_file_content=SLO_YAML,
        )
        if number < len(RUNS) - 1 or store_current:
            stored = StoredEvaluation(
                id=f"run-{number}",
                project="shop",
                stage="staging",
                service="web",
                context=f"ctx-{number}",
                time=at,
                result=evaluation.result,
                score=evaluation.details.score,
                data=json.loads(json.dumps(evaluation.to_keptn())),  # as a store keeps it
            )
            history.insert(0, stored)
    assert evaluation is not None
    return evaluation, history


def render(evaluation: Evaluation, history: list[StoredEvaluation]) -> str:
    return render_html(
        evaluation, history, project="shop", stage="staging", service="web", generated_at=START
    )


class _Elements(HTMLParser):
    """Every start tag with its attributes, its text, and the data-sli of its chart."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link", "col", "wbr"})

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[dict[str, str]] = []
        self._open: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = {k: v or "" for k, v in attrs} | {"tag": tag, "text": ""}
        chart = next((e["data-sli"] for e in self._open if e["tag"] == "svg"), None)
        if chart is not None:
            element["chart"] = chart
        self.elements.append(element)
        if tag not in self.VOID:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self._open.pop()

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop()["tag"] == tag:
                break

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element["text"] += data


def elements(page: str) -> list[dict[str, str]]:
    parser = _Elements()
    parser.feed(page)
    return parser.elements


def series_points(found: list[dict[str, str]], sli: str) -> list[dict[str, str]]:
    return [
        e
        for e in found
        if e["tag"] == "circle" and e.get("chart") == sli and "series" in e["class"].split()
    ]


def test_scenario_mixes_results() -> None:
    evaluation, history = scenario()
    assert [run.result for run in reversed(history)] == [
        "pass",
        "pass",
        "fail",
        "warning",
        "pass",
        "fail",
    ]
    assert evaluation.result == "fail"
    relative = evaluation.details.indicator_results[0].pass_targets[0]  # type: ignore[index]
    assert relative.criteria == "<=+10%"
    assert relative.target_value == pytest.approx(1.1 * (452 + 690 + 445) / 3)


def test_page_is_self_contained_and_complete() -> None:
    evaluation, history = scenario()
    page = render(evaluation, history)
    for reference in ("http://", "https://", "<script", "<link", "src=", "url(", "@import"):
        assert reference not in page.lower()
    assert "default-src 'none'" in page
    found = elements(page)
    verdict = next(e for e in found if e.get("id") == "verdict")
    assert verdict["data-result"] == "fail" and "FAIL" in verdict["text"]
    assert "50%" in verdict["text"] and evaluation.message in verdict["text"]
    rows = [e for e in found if e["tag"] == "tr" and e.get("class", "").startswith("objective")]
    assert [row["data-sli"] for row in rows] == list(SLIS)
    assert [row["data-status"] for row in rows] == ["warning", "fail", "pass", "info"]
    assert "KEY SLI" in rows[1]["text"] and "KEY SLI" not in rows[0]["text"]
    assert "<=+10%" in rows[0]["text"] and "→ 581.9" in rows[0]["text"]
    assert "1 / 2" in rows[0]["text"] and "0 / 1" in rows[1]["text"]
    violated = [e["text"] for e in found if "violated" in e.get("class", "").split()]
    assert any("<=0.05" in text for text in violated)
    charts = [e for e in found if e["tag"] == "svg" and "chart" in e.get("class", "")]
    assert [chart["data-sli"] for chart in charts] == list(SLIS)
    for index, sli in enumerate(SLIS):
        points = series_points(found, sli)
        expected = [run[index] for run in RUNS if run[index] is not None]
        assert [float(p["data-value"]) for p in points] == expected
    # the throughput run without a value breaks the line into two polylines
    lines = [e for e in found if e["tag"] == "polyline" and e.get("chart") == SLIS[3]]
    assert len(lines) == 2
    targets = [e for e in found if e.get("chart") == SLIS[0] and e["tag"] == "line"]
    assert {t["class"] for t in targets if "target" in t.get("class", "")} == {
        "target target-pass",  # <600, flat
        "target target-warning",  # <=800, flat
        "target-relative-run target-pass",  # <=+10%, one per run that had something to compare
    }


def test_current_run_not_in_history_is_still_drawn() -> None:
    evaluation, history = scenario(store_current=False)
    found = elements(render(evaluation, history))
    points = series_points(found, SLIS[0])
    assert len(points) == len(RUNS)
    assert "current" in points[-1]["class"] and float(points[-1]["data-value"]) == 640.0
    assert sum("current" in p["class"] for p in points) == 1


def test_no_history_one_point_and_flat_values() -> None:
    slo = parse_slo(SLO_YAML)
    values = [{"metric": sli, "value": 5.0, "success": True} for sli in SLIS]
    evaluation = evaluate(slo, values)
    found = elements(render(evaluation, []))
    for sli in SLIS:
        assert len(series_points(found, sli)) == 1
    assert not [e for e in found if e["tag"] == "polyline"]
    # all-equal values over several runs give a flat line with distinct y ticks
    stored = [
        StoredEvaluation(
            f"r{i}",
            "shop",
            "staging",
            "web",
            "c",
            START + i,
            "pass",
            100.0,
            evaluate(slo, values).to_keptn(),
        )
        for i in range(3)
    ]
    page = render(evaluation, stored)
    ys = {p["cy"] for p in series_points(elements(page), SLIS[3])}
    assert len(ys) == 1 and "nan" not in page.lower()


def test_value_not_retrieved_draws_fixed_targets_only() -> None:
    _, history = scenario()
    values = [{"metric": sli, "value": 1.0, "success": sli != SLIS[0]} for sli in SLIS]
    current = evaluate(parse_slo(SLO_YAML), values, [run.as_previous() for run in history])
    # lighthouse reports every target of a failed retrieval as 0; the chart uses the criteria
    assert {t.target_value for t in current.details.indicator_results[0].pass_targets} == {0}  # type: ignore[union-attr,index]
    found = elements(render(current, history))
    lines = [
        e for e in found if e.get("chart") == SLIS[0] and e.get("class", "").startswith("target ")
    ]
    assert sorted(e["text"] for e in lines) == [
        "pass target <600 → 600",
        "warning target <=800 → 800",
    ]
    assert len(series_points(found, SLIS[0])) == len(RUNS)  # the current run has no point


def test_errored_evaluation_has_no_objectives() -> None:
    evaluation = evaluate("objectives: [", [])
    page = render(evaluation, [])
    verdict = next(e for e in elements(page) if e.get("id") == "verdict")
    assert "ERRORED" in verdict["text"] and "Could not parse SLO file" in verdict["text"]
    assert "<svg" not in page and 'id="objectives"' not in page  # no empty table
    reason = next(e for e in elements(page) if e.get("id") == "no-objectives")
    assert reason["text"].startswith("The evaluation errored, so no objective has a value: ")
    assert "Could not parse SLO file" in reason["text"]


def test_user_strings_are_escaped() -> None:
    slo = {
        "objectives": [
            {"sli": HOSTILE, "displayName": f"{HOSTILE}\"'&", "pass": [{"criteria": ["<1"]}]},
            {"sli": "x", "pass": [{"criteria": [f"<={HOSTILE}"]}]},
        ],
        "total_score": {"pass": "90%"},
    }
    values = [
        {"metric": HOSTILE, "value": 2.0, "success": False, "message": HOSTILE},
        {"metric": "x", "value": 1.0, "success": True},
    ]
    evaluation = evaluate(slo, values, get_sli_result="fail", get_sli_message=HOSTILE)
    page = render_html(evaluation, [], project=HOSTILE, stage='"><b>', service="&amp;")
    assert HOSTILE not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&amp;amp;" in page
    assert not [e for e in elements(page) if e["tag"] in ("script", "b")]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0"),
        (-0.0, "0"),
        (483.33333, "483.3"),
        (1234.5, "1234"),
        (0.0012345, "0.001234"),
        (12345.0, "1.234e4"),
        (-98765432.1, "-9.877e7"),
        (1e-9, "1e-9"),
        (2.5e300, "2.5e300"),
        (7.0, "7"),
    ],
)
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text


def finite_geometry(page: str) -> int:
    """Every coordinate in the charts is a finite number; returns how many were checked."""
    checked = 0
    for element in elements(page):
        for name in ("x", "y", "x1", "x2", "y1", "y2", "cx", "cy"):
            if element.get("chart") and name in element:
                assert math.isfinite(float(element[name])), element
                checked += 1
        for pair in element.get("points", "").split():
            assert all(math.isfinite(float(n)) for n in pair.split(",")), element
            checked += 1
    return checked


@pytest.mark.parametrize("scale", [1e-12, 1e-3, 1e9, 1e300, -1e6])
def test_extreme_magnitudes_render(scale: float) -> None:
    slo = parse_slo(SLO_YAML)
    history: list[StoredEvaluation] = []
    for i in range(3):
        values = [
            {"metric": sli, "value": scale * (i + k + 1), "success": True}
            for k, sli in enumerate(SLIS)
        ]
        evaluation = evaluate(slo, values, [run.as_previous() for run in history])
        data = evaluation.to_keptn()
        history.insert(0, StoredEvaluation(f"r{i}", "p", "s", "v", "c", START + i, "pass", 1, data))
    page = render(evaluation, history)
    assert finite_geometry(page) > 50
    ticks = [
        e["text"]
        for e in elements(page)
        if e.get("text-anchor") == "end" and "target-off" not in e.get("class", "")
    ]
    assert ticks and all(len(tick) <= 9 for tick in ticks), ticks  # <= 4 significant digits


# --- PNG decoding (devkit/png.py) -------------------------------------------------------------


def _png(width: int, rows: list[bytes], filters: list[int], colour_type: int = 2) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, len(rows), 8, colour_type, 0, 0, 0)
    raw = b"".join(bytes([f]) + row for f, row in zip(filters, rows, strict=True))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _filtered(kind: int, row: bytes, previous: bytes, bpp: int) -> bytes:
    """Encode one row with a PNG filter (the inverse of what the reader undoes)."""
    out = bytearray()
    for i, byte in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b, c = previous[i], previous[i - bpp] if i >= bpp else 0
        p = a + b - c
        paeth = (
            a
            if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c)
            else (b if abs(p - b) <= abs(p - c) else c)
        )
        predictor = (0, a, b, (a + b) // 2, paeth)[kind]
        out.append((byte - predictor) & 0xFF)
    return bytes(out)


@pytest.mark.parametrize("bpp", [3, 4])
def test_png_reader_undoes_every_filter(bpp: int) -> None:
    width = 7
    rows = [
        bytes((x * 37 + y * 91 + c * 53) % 256 for x in range(width) for c in range(bpp))
        for y in range(10)
    ]
    filters = [y % 5 for y in range(10)]
    encoded = [
        _filtered(f, row, rows[y - 1] if y else bytes(len(row)), bpp)
        for y, (f, row) in enumerate(zip(filters, rows, strict=True))
    ]
    image = read_png(_png(width, encoded, filters, 2 if bpp == 3 else 6))
    assert (image.width, image.height, image.channels) == (width, 10, bpp)
    assert image.pixels == b"".join(rows)
    assert image.rgb(1, 2) == tuple(rows[2][bpp : bpp + 3])
    with pytest.raises(PNGError):
        read_png(b"GIF89a")


# --- headless Chromium ------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (apt-get install -y chromium; scripts/system-deps.sh)",
)


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )


@dataclass(frozen=True)
class Rendered:
    page: Path
    dom: str
    screenshot: Image


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    directory = tmp_path_factory.mktemp("report")
    page = directory / "report.html"
    evaluation, history = scenario()
    page.write_text(render(evaluation, history), encoding="utf-8")
    png = directory / "report.png"
    shot = chromium(f"--screenshot={png}", "--window-size=1280,2400", page.as_uri())
    assert png.exists(), shot.stderr[-2000:]
    dom = chromium("--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    return Rendered(page, dom.stdout, read_png(png))


@needs_chromium
def test_browser_dom_has_verdict_objectives_and_points(rendered: Rendered) -> None:
    found = elements(rendered.dom)
    verdict = next(e for e in found if e.get("id") == "verdict")
    assert "FAIL" in verdict["text"] and "50%" in verdict["text"]
    table = next(e for e in found if e.get("id") == "objectives")
    for name in NAMES:
        assert name in table["text"]
    for index, sli in enumerate(SLIS):
        assert len(series_points(found, sli)) == sum(run[index] is not None for run in RUNS)


@needs_chromium
def test_browser_screenshot_shows_banner_and_charts(rendered: Rendered) -> None:
    counts = rendered.screenshot.colour_counts()
    hexed = {f"#{r:02x}{g:02x}{b:02x}": n for (r, g, b), n in counts.items()}
    # legend swatches hold ~50 pixels per chart; the lines and rings hold far more
    assert hexed.get(SERIES_COLOUR, 0) > 400 * len(SLIS), "series lines did not render"
    assert hexed.get(TARGET_COLOURS["pass"], 0) > 1000, "pass target lines did not render"
    assert hexed.get(TARGET_COLOURS["warning"], 0) > 1000, "warning target lines did not render"
    assert hexed.get(RESULT_COLOURS["fail"], 0) > 30_000, "the FAIL banner did not render"
    assert hexed.get(ERRORED_COLOUR, 0) < 100


@needs_chromium
def test_browser_does_not_run_hostile_strings(tmp_path: Path) -> None:
    slo = {
        "objectives": [{"sli": HOSTILE, "pass": [{"criteria": ["<1"]}]}],
        "total_score": {"pass": "90%"},
    }
    evaluation = evaluate(slo, [{"metric": HOSTILE, "value": 0.5, "success": True}])
    page = tmp_path / "hostile.html"
    page.write_text(render_html(evaluation, [], project=HOSTILE, stage="s", service="v"))
    dom = chromium("--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert not [e for e in elements(dom.stdout) if e["tag"] == "script"]
    assert re.search(r"&lt;script&gt;alert\(1\)&lt;/script&gt;", dom.stdout)


# --- what the report shows per run --------------------------------------------------------------


def _history_of(
    slo: dict[str, object], runs: list[tuple[float, float]]
) -> tuple[Evaluation, list[StoredEvaluation]]:
    """(time, value of "p") runs scored in turn, newest first, the last one as evaluated."""
    history: list[StoredEvaluation] = []
    evaluation: Evaluation | None = None
    for number, (at, value) in enumerate(runs):
        values = [{"metric": "p", "value": value, "success": True}]
        evaluation = evaluate(
            slo,
            values,
            [h.as_previous() for h in history],
            time_start=_iso(at - 60),
            time_end=_iso(at),
        )
        data = json.loads(json.dumps(evaluation.to_keptn()))
        history.insert(
            0,
            StoredEvaluation(
                f"r{number}",
                "p",
                "s",
                "v",
                "c",
                at,
                evaluation.result,
                evaluation.details.score,
                data,
            ),
        )
    assert evaluation is not None
    return evaluation, history


def _tick_values(found: list[dict[str, str]], sli: str) -> list[float]:
    return [
        float(e["text"])
        for e in found
        if e.get("chart") == sli
        and e["tag"] == "text"
        and e.get("text-anchor") == "end"
        and "target-off" not in e.get("class", "")
    ]


def test_y_axis_fits_the_values_not_a_far_fixed_target() -> None:
    slo = {
        "objectives": [{"sli": "p", "pass": [{"criteria": ["<600"]}]}],
        "total_score": {"pass": "90%"},
    }
    evaluation, history = _history_of(slo, [(START + i * 600, 3.0 + i) for i in range(4)])
    found = elements(render(evaluation, history))
    ticks = _tick_values(found, "p")
    assert max(ticks) <= 10 and min(ticks) >= 0, ticks  # values 3..6, not 0..600
    off = [e for e in found if e.get("chart") == "p" and "target-off" in e.get("class", "")]
    assert [e["text"] for e in off] == ["▲ pass <600 → 600"]
    ys = sorted(float(p["cy"]) for p in series_points(found, "p"))
    assert ys[-1] - ys[0] > 100  # the values spread over the chart's height


def test_relative_targets_are_drawn_per_run_from_each_runs_evaluation() -> None:
    evaluation, history = scenario()
    found = elements(render(evaluation, history))
    ticks = [
        e
        for e in found
        if e.get("chart") == SLIS[0] and e.get("class") == "target-relative-run target-pass"
    ]
    # What each run itself computed for <=+10% (the first run had nothing to compare with).
    expected = []
    for stored in reversed(history):
        (p95,) = [
            r
            for r in stored.data["evaluation"]["indicatorResults"]
            if r["value"]["metric"] == SLIS[0]
        ]
        if stored.data["evaluation"].get("comparedEvents"):
            expected.append(p95["passTargets"][0]["targetValue"])
    assert len(ticks) == len(expected) == len(RUNS) - 1
    assert [t["text"].rsplit("→ ", 1)[1] for t in ticks] == [format_number(v) for v in expected]
    assert len({t["y1"] for t in ticks}) > 2  # they move with the runs, not one flat line
    flat = [
        e["text"]
        for e in found
        if e.get("chart") == SLIS[0] and e.get("class", "").startswith("target ")
    ]
    assert not any("+10%" in text for text in flat)


@pytest.mark.parametrize("gap", [20.0, 120.0])
def test_time_labels_stay_distinct_and_apart_for_close_runs(gap: float) -> None:
    slo = {
        "objectives": [{"sli": "p", "pass": [{"criteria": ["<600"]}]}],
        "total_score": {"pass": "90%"},
    }
    evaluation, history = _history_of(slo, [(START + i * gap, 100.0 + i) for i in range(12)])
    found = elements(render(evaluation, history))
    labels = [e for e in found if e.get("chart") == "p" and e.get("class") == "x-label"]
    texts = [e["text"] for e in labels]
    assert len(labels) >= 3 and len(set(texts)) == len(texts), texts
    xs = [float(e["x"]) for e in labels]
    widest = max(len(t) for t in texts) * 6.2  # 11 px system-ui, as laid out
    assert all(b - a >= widest for a, b in itertools.pairwise(xs)), (texts, xs)
    points = [p for p in series_points(found, "p")]
    titles = [p["text"].split(": ")[0] for p in points]
    assert len(set(titles)) == len(titles)  # every point's tooltip names its own time


def test_a_points_colour_is_that_slis_status_in_that_run() -> None:
    evaluation, history = scenario()
    found = elements(render(evaluation, history))
    differs = 0
    for stored, point in zip(reversed(history), series_points(found, SLIS[0]), strict=True):
        (p95,) = [
            r
            for r in stored.data["evaluation"]["indicatorResults"]
            if r["value"]["metric"] == SLIS[0]
        ]
        assert point["data-status"] == p95["status"]
        assert point["fill"] == RESULT_COLOURS[p95["status"]]
        differs += p95["status"] != stored.result
    assert differs >= 2  # the scenario has runs where this SLI and the run disagree


@needs_chromium
def test_browser_report_fits_a_640_px_screen(tmp_path: Path) -> None:
    """Measured by Chromium itself: a copy of the page with a probe script (the real page has
    none, and its Content-Security-Policy would refuse one)."""
    evaluation, history = scenario()
    page = re.sub(
        r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", render(evaluation, history)
    )
    probe = (
        "<script>const d=document.documentElement;document.body.dataset.scroll="
        "String(d.scrollWidth);document.body.dataset.client=String(d.clientWidth)</script>"
    )
    copy = tmp_path / "probe.html"
    copy.write_text(page.replace("</body>", probe + "</body>"), encoding="utf-8")
    dom = chromium("--dump-dom", "--window-size=640,2000", copy.as_uri())
    body = next(e for e in elements(dom.stdout) if e["tag"] == "body")
    assert int(body["data-scroll"]) <= int(body["data-client"]) <= 640, body
    png = tmp_path / "narrow.png"
    chromium(f"--screenshot={png}", "--window-size=640,2600", (tmp_path / "probe.html").as_uri())
    shot = read_png(png.read_bytes()) if png.exists() else None
    assert shot is not None and shot.width == 640
    hexed = {f"#{r:02x}{g:02x}{b:02x}" for (r, g, b) in shot.colour_counts()}
    assert SERIES_COLOUR in hexed and RESULT_COLOURS["fail"] in hexed


# --- labels that never cover each other, measured by Chromium ---------------------------------

_LABEL_PROBE = """<script>
const boxes = [];
for (const svg of document.querySelectorAll("svg.chart")) {
  const own = svg.getBoundingClientRect();
  const labels = [...svg.querySelectorAll("text.target-off, text.target-label, text.x-label,"
                                          + " text[text-anchor=end]")];
  for (const t of labels) {
    const b = t.getBoundingClientRect();
    boxes.push({sli: svg.dataset.sli, cls: t.getAttribute("class") || "tick", text: t.textContent,
                x0: b.left - own.left, y0: b.top - own.top, x1: b.right - own.left,
                y1: b.bottom - own.top});
  }
  const crossings = [];
  for (const line of svg.querySelectorAll("polyline.series")) {
    const length = line.getTotalLength();
    for (let at = 0; at <= length; at += 1) {
      const p = line.getPointAtLength(at);
      crossings.push([p.x, p.y]);
    }
  }
  boxes.push({sli: svg.dataset.sli, cls: "line", points: crossings,
              width: own.width, height: own.height});
}
document.body.dataset.boxes = JSON.stringify(boxes);
</script>"""


def _off_chart_scenario() -> tuple[Evaluation, list[StoredEvaluation]]:
    """Values of 3 to 6 ms under a relative target, with both fixed targets far above them."""
    slo = {
        "comparison": {"compare_with": "several_results", "number_of_comparison_results": 3},
        "objectives": [
            {
                "sli": "p",
                "displayName": "Response time p95 (ms)",
                "pass": [{"criteria": ["<=+10%", "<600"]}],
                "warning": [{"criteria": ["<=800"]}],
            }
        ],
        "total_score": {"pass": "90%", "warning": "50%"},
    }
    runs = [3.1, 4.2, 3.6, 5.9, 4.4, 6.0, 3.3, 5.1]
    return _history_of(slo, [(START + i * 3600, value) for i, value in enumerate(runs)])


@needs_chromium
def test_browser_labels_stay_legible_with_both_targets_off_the_chart(tmp_path: Path) -> None:
    evaluation, history = _off_chart_scenario()
    page = render(evaluation, history)
    found = elements(page)
    off = [e["text"] for e in found if "target-off" in e.get("class", "")]
    assert off == ["▲ pass <600 → 600", "▲ warning <=800 → 800"]
    shot = tmp_path / "off-chart.html"
    shot.write_text(page, encoding="utf-8")
    png = tmp_path / "off-chart.png"
    chromium(f"--screenshot={png}", "--window-size=900,1100", shot.as_uri())
    image = read_png(png.read_bytes())
    hexed = {f"#{r:02x}{g:02x}{b:02x}" for (r, g, b) in image.colour_counts()}
    assert TARGET_COLOURS["pass"] in hexed and TARGET_COLOURS["warning"] in hexed
    keep = Path(__file__).parent.parent / ".report-screenshots"
    if keep.is_dir():  # for a person to look at: mkdir .report-screenshots before the run
        shutil.copy(png, keep / "off-chart.png")
    # Chromium's own layout: where each label and the value line really are.
    probed = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
    copy = tmp_path / "probe.html"
    copy.write_text(probed.replace("</body>", _LABEL_PROBE + "</body>"), encoding="utf-8")
    dom = chromium("--dump-dom", "--window-size=900,1100", copy.as_uri())
    body = next(e for e in elements(dom.stdout) if e["tag"] == "body")
    boxes = json.loads(body["data-boxes"])
    labels = [b for b in boxes if b["cls"] != "line"]
    (line,) = [b for b in boxes if b["cls"] == "line"]
    named = [b for b in labels if "target" in b["cls"]]
    assert {b["text"] for b in named} >= {"▲ pass <600 → 600", "▲ warning <=800 → 800"}
    assert any(b["cls"] == "target-label" and "+10%" in b["text"] for b in named)
    for a, b in itertools.combinations(labels, 2):
        overlap = a["x0"] < b["x1"] - 0.5 and b["x0"] < a["x1"] - 0.5
        overlap = overlap and a["y0"] < b["y1"] - 0.5 and b["y0"] < a["y1"] - 0.5
        assert not overlap, (a["text"], b["text"])
    for label in named:
        assert label["x0"] >= 0 and label["x1"] <= line["width"], label
        inside = [
            (x, y)
            for x, y in line["points"]
            if label["x0"] <= x <= label["x1"] and label["y0"] + 2 <= y <= label["y1"] - 2
        ]
        assert not inside, (label["text"], inside[:3])
    relative = next(b for b in named if "+10%" in b["text"])
    ticks = [e for e in found if e.get("class") == "target-relative-run target-pass"]
    # beside its line: level with one run's target and at most a few pixels from its end
    beside = [
        t
        for t in ticks
        if relative["y0"] - 8 <= float(t["y1"]) <= relative["y1"] + 8
        and min(
            abs(relative["x1"] - float(t["x1"])),
            abs(relative["x0"] - float(t["x2"])),
            abs(relative["x1"] - float(t["x2"])),
            abs(relative["x0"] - float(t["x1"])),
        )
        < 12
    ]
    assert beside, (relative, ticks)


def test_the_style_sheet_is_not_escaped_into_the_page() -> None:
    """The CSS is the report's own: quotes inside <style> must stay quotes (a browser does not
    decode entities there, and the narrow-screen labels would vanish)."""
    evaluation, history = scenario()
    style = render(evaluation, history).split("<style>", 1)[1].split("</style>", 1)[0]
    assert 'content:attr(data-label) ": "' in style and "&#34;" not in style
