"""What CI systems show: `--format junit` (GitLab, Jenkins, GitHub test reports), the Markdown
summary appended to $GITHUB_STEP_SUMMARY, and the JSON output against its versioned schema."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema

from sli_provider.gate import evaluate
from sli_provider.gate.document import SCHEMA_VERSION, gate_document
from sli_provider.gate.junit import render_junit
from sli_provider.gate.verdict import K6Run, ThresholdResult, decide
from tests.helpers import cli, evaluate_args, validate

SLO = """
objectives:
  - sli: p95
    displayName: Response time p95
    pass: [{criteria: ["<600"]}]
    warning: [{criteria: ["<800"]}]
  - sli: errors
    pass: [{criteria: ["<=0.01"]}]
    key_sli: true
  - sli: throughput
total_score: {pass: "90%", warning: "50%"}
"""
PASSING = [
    {"metric": "p95", "value": 100, "success": True},
    {"metric": "errors", "value": 0.0, "success": True},
    {"metric": "throughput", "value": 12.5, "success": True},
]
FAILING = [
    {"metric": "p95", "value": 700, "success": True},
    {"metric": "errors", "value": 0.2, "success": True},
    {"metric": "throughput", "value": 12.5, "success": True},
]


def evaluate_cli(
    tmp_path: Path, values: list[dict[str, Any]], *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return cli(*evaluate_args(tmp_path, SLO, values, *extra), env=env)


def test_json_output_names_its_schema_version_and_validates(tmp_path: Path) -> None:
    for values, code, result in ((PASSING, 0, "pass"), (FAILING, 1, "fail")):
        done = evaluate_cli(tmp_path, values, "--format", "json")
        assert done.returncode == code, done.stderr
        document = json.loads(done.stdout)
        validate(document)
        assert document["schemaVersion"] == SCHEMA_VERSION
        assert document["result"] == result == document["evaluation"]["result"]
        assert document["score"] == document["evaluation"]["score"]


def test_the_schema_refuses_what_breaks_the_contract() -> None:
    good = gate_document(decide(evaluate(SLO, PASSING), []))
    validate(good)
    for broken in (
        {**good, "result": "passed"},
        {k: v for k, v in good.items() if k != "score"},
        {**good, "schemaVersion": "2.0"},
    ):
        try:
            validate(broken)
        except jsonschema.ValidationError:
            continue
        raise AssertionError(f"accepted {broken['result']}, {broken.get('schemaVersion')}")


def test_junit_fails_the_objectives_that_failed(tmp_path: Path) -> None:
    done = evaluate_cli(
        tmp_path, FAILING, "--format", "junit", "--output", str(tmp_path / "report.xml")
    )
    assert done.returncode == 1, done.stderr
    suites = ET.parse(tmp_path / "report.xml").getroot()
    (suite,) = suites.findall("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"quality gate verdict", "Response time p95 (p95)", "errors", "throughput"}
    assert cases["quality gate verdict"].find("failure") is not None
    assert cases["errors"].find("failure") is not None  # 0.2 > 0.01
    assert cases["Response time p95 (p95)"].find("failure") is None  # 700 is a warning
    assert cases["throughput"].find("skipped") is not None  # informational
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "2", "1")


def test_junit_has_a_testcase_per_k6_threshold() -> None:
    k6 = K6Run(
        99,
        (
            ThresholdResult("http_req_failed", "rate<0.01", False),
            ThresholdResult("http_req_duration", "p(95)<500", True),
        ),
    )
    verdict = decide(evaluate(SLO, PASSING), [], k6=k6)
    suite = ET.fromstring(render_junit(verdict, scope="shop/dev/web")).find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["http_req_failed: rate<0.01"].find("failure") is not None
    assert cases["http_req_duration: p(95)<500"].find("failure") is None
    verdict_case = cases["quality gate verdict"].find("failure")
    assert verdict_case is not None and "k6 thresholds crossed" in verdict_case.get("message", "")
    assert suite.get("classname") is None and suite.get("failures") == "2"


def test_markdown_summary_is_appended_to_github_step_summary(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    env = {"GITHUB_STEP_SUMMARY": str(summary)}
    assert evaluate_cli(tmp_path, PASSING, env=env).returncode == 0
    assert evaluate_cli(tmp_path, FAILING, env=env).returncode == 1
    text = summary.read_text()
    assert text.startswith("earlier step\n")
    assert "### Quality gate shop/dev/web: PASS" in text
    assert "### Quality gate shop/dev/web: FAIL" in text
    assert "| errors (key) | 0.2 | fail | <=0.01 | - |" in text
