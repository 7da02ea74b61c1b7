"""The gate as a JUnit XML report: what GitLab, Jenkins and GitHub (through actions) show as
test results. One testsuite per evaluation; one testcase for the verdict, one per objective and
one per k6 threshold, each failed where it failed (pure)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from sli_provider.gate.display import INFORMATIONAL, NO_VALUE, is_informational
from sli_provider.gate.results import ScoredIndicator
from sli_provider.gate.verdict import Verdict


def render_junit(verdict: Verdict, *, scope: str) -> str:
    evaluation = verdict.evaluation
    suites = ET.Element("testsuites", name="sli-provider quality gate")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"quality gate {scope}",
        timestamp=evaluation.details.time_end or "",
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("result", "errored" if evaluation.errored else verdict.result),
        ("score", f"{evaluation.details.score:g}"),
        ("lighthouseResult", evaluation.result),
        ("timeStart", evaluation.details.time_start),
        ("timeEnd", evaluation.details.time_end),
    ):
        ET.SubElement(properties, "property", name=name, value=value)
    classname = scope.replace("/", ".")

    def case(group: str, name: str) -> ET.Element:
        return ET.SubElement(suite, "testcase", classname=f"{classname}.{group}", name=name)

    gate = case("verdict", "quality gate verdict")
    if evaluation.errored:
        ET.SubElement(gate, "error", message=evaluation.message or "the evaluation errored")
    elif verdict.result == "fail":
        why = "; ".join(verdict.reasons) or f"score {evaluation.details.score:g} %"
        ET.SubElement(gate, "failure", message=f"the gate failed: {why}", type="fail")
    for item in evaluation.details.indicator_results or ():
        _objective(case("objectives", _name(item)), item)
    for threshold in verdict.k6.thresholds if verdict.k6 else ():
        element = case("k6-thresholds", f"{threshold.metric}: {threshold.expression}")
        if not threshold.ok:
            ET.SubElement(
                element,
                "failure",
                type="crossed",
                message=f"k6 threshold crossed ({verdict.policy})",
            )
    if verdict.warnings:
        ET.SubElement(suite, "system-err").text = "\n".join(
            f"warning: {w.message}" for w in verdict.warnings
        )
    cases = suite.findall("testcase")
    counts = {
        "tests": len(cases),
        "failures": sum(1 for c in cases if c.find("failure") is not None),
        "errors": sum(1 for c in cases if c.find("error") is not None),
        "skipped": sum(1 for c in cases if c.find("skipped") is not None),
    }
    for key, count in counts.items():
        suite.set(key, str(count))
        if key != "skipped":
            suites.set(key, str(count))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode")


def _name(item: ScoredIndicator) -> str:
    shown = item.display_name or item.value.metric
    return shown if shown == item.value.metric else f"{shown} ({item.value.metric})"


def _objective(element: ET.Element, item: ScoredIndicator) -> None:
    if is_informational(item):
        ET.SubElement(element, "skipped", message=INFORMATIONAL)
        return
    targets = ", ".join(t.criteria for t in (item.pass_targets or ()) if t.violated) or ", ".join(
        t.criteria for t in item.pass_targets or ()
    )
    if not item.value.success:
        message = f"{NO_VALUE}" + (f": {item.value.message}" if item.value.message else "")
    else:
        message = f"value {item.value.value:g}; pass criteria {targets or '-'}"
    if item.status == "fail":
        ET.SubElement(element, "failure", message=message, type="fail")
    else:
        ET.SubElement(element, "system-out").text = f"{item.status}: {message}"
