"""The gate's table and HTML say what lighthouse's placeholder zeros and info objectives are."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from sli_provider.cli import main
from tests.helpers import evaluate_args

SLO = """
spec_version: "1.0"
comparison: {compare_with: single_result, include_result_with_score: all}
objectives:
  - sli: p95
    pass: [{criteria: ["<=+10%", "<600"]}]
    warning: [{criteria: ["<=800"]}]
  - sli: errors
    pass: [{criteria: ["<=0.01"]}]
  - sli: throughput
total_score: {pass: "90%", warning: "40%"}
"""


def _evaluate(tmp_path: Path, values: list[dict[str, Any]], *extra: str) -> list[str]:
    return evaluate_args(tmp_path, SLO, values, *extra)


VALUES = [
    {"metric": "p95", "value": 100, "success": True},
    {"metric": "errors", "value": 0, "success": False, "message": "no data"},
    {"metric": "throughput", "value": 42, "success": True},
]


def _row(table: str, name: str) -> str:
    return next(line for line in table.splitlines() if line.startswith(name))


def test_table_names_placeholder_targets_and_info_objectives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(_evaluate(tmp_path, VALUES))
    table = capsys.readouterr().out
    p95 = _row(table, "p95")
    # First run: nothing stored, so the relative target is not 0 but absent.
    assert "<=+10%✓(no previous result to compare)" in p95 and "<600✓(600)" in p95
    errors = _row(table, "errors")
    assert "(0)" not in errors and "<=0.01 (not evaluated: no value)" in errors
    info = _row(table, "throughput (info)")
    assert re.search(r"\binfo\s+-\s", info), info
    assert "(info): informational" in table
    # No baseline yet, and none for an absolute or info objective: no compared value, not 0.
    assert (p95.split()[2], info.split()[3]) == ("-", "-")  # "throughput (info)": 2 words
    # Second run: now there is a result to compare with, and the target is shown.
    main(_evaluate(tmp_path, VALUES))
    second = capsys.readouterr().out
    assert "<=+10%✓(110)" in _row(second, "p95")
    assert _row(second, "p95").split()[2] == "100"
    assert _row(second, "throughput (info)").split()[3] == "-"


def test_html_names_placeholder_targets_and_info_objectives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.html"
    code = main(_evaluate(tmp_path, VALUES, "--format", "html", "--output", str(report)))
    err = capsys.readouterr().err
    # A warning verdict must not read like a log line's WARNING.
    assert code == 0 and "WARNING" not in err.upper().replace("VERDICT: WARNING", "")
    assert f"verdict: warning; report written to {report}" in err
    page = report.read_text()
    p95 = re.search(r'<tr class="objective" data-sli="p95".*?</tr>', page, re.S)
    assert p95 and "no previous result to compare" in p95.group(0)
    assert "→ <span" not in p95.group(0).split("&lt;600")[0]  # no number for the relative one
    assert '<td class="num" data-label="Compared">—</td>' in p95.group(0)  # no baseline, not 0
    errors = re.search(r'<tr class="objective" data-sli="errors".*?</tr>', page, re.S)
    assert errors and "not evaluated: no value" in errors.group(0) and "→" not in errors.group(0)
    info = re.search(
        r'<tr class="objective informational" data-sli="throughput".*?</tr>', page, re.S
    )
    assert info and "not scored" in info.group(0) and 'class="badge info"' in info.group(0)
