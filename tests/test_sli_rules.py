"""sli.yaml parsing and merging, result checks, and planning (pure logic)."""

from __future__ import annotations

import pytest

from sli_provider.sli.builtin import load_builtin_templates
from sli_provider.sli.config import IndicatorSpec, SLIConfigError, merge_levels, parse_sli_yaml
from sli_provider.sli.plan import plan_queries
from sli_provider.sli.results import ValueFailure, single_value
from sli_provider.sli.window import SLIWindow

BUILTIN_NAMES = {
    "http_req_duration_p50",
    "http_req_duration_p90",
    "http_req_duration_p95",
    "http_req_duration_p99",
    "http_req_duration_avg",
    "http_req_duration_max",
    "http_req_failed_rate",
    "http_reqs_total",
    "http_reqs_per_second",
    "checks_rate",
    "iterations_total",
    "vus_max",
    "data_received_bytes",
    "data_sent_bytes",
    "iteration_duration_p95",
}


def test_builtin_templates_are_exactly_the_documented_set() -> None:
    assert set(load_builtin_templates()) == BUILTIN_NAMES


def test_later_levels_override_per_indicator() -> None:
    project = parse_sli_yaml("indicators: {a: qa, b: qb}", "project")
    service = parse_sli_yaml("spec_version: '1.0'\nindicators: {b: qb2, c: qc}", "service")
    assert merge_levels([project, service]) == {
        "a": (IndicatorSpec("qa"), "project"),
        "b": (IndicatorSpec("qb2"), "service"),
        "c": (IndicatorSpec("qc"), "service"),
    }


def test_object_form_with_on_empty() -> None:
    parsed = parse_sli_yaml(
        "indicators:\n  a: {query: 'sum(x)', on_empty: zero}\n  b: {query: 'sum(y)'}\n", "svc"
    )
    assert parsed.indicators == {
        "a": IndicatorSpec("sum(x)", "zero"),
        "b": IndicatorSpec("sum(y)", "fail"),
    }


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("indicators: [", "not valid YAML"),
        ("- a", "mapping"),
        ("spec_version: '1.0'", "missing or empty"),
        ("indicators: {a: 3}", "PromQL string"),
        ("indicators: {a: {query: 'x', on_empty: maybe}}", "fail or zero"),
        ("indicators: {a: {query: 'x', scale: 2}}", "unknown key"),
        ("indicators: {a: x}\nindicatorz: {b: y}", r"unknown top-level key\(s\) 'indicatorz'"),
    ],
)
def test_broken_sli_yaml_is_a_configuration_error(text: str, reason: str) -> None:
    with pytest.raises(SLIConfigError, match=reason):
        parse_sli_yaml(text, "k6/sli.yaml")


def test_unparseable_sli_yaml_says_where_and_what_in_one_line() -> None:
    """Not PyYAML's first line ("while parsing a flow sequence"), which names neither."""
    with pytest.raises(SLIConfigError) as raised:
        parse_sli_yaml("indicators:\n  a: [1, 2\n", "k6/sli.yaml")
    assert str(raised.value) == (
        "k6/sli.yaml: not valid YAML: line 3: expected ',' or ']', but got '<stream end>'"
    )


def vector(*values: str) -> list[dict[str, object]]:
    return [{"metric": {"i": str(i)}, "value": [1.0, v]} for i, v in enumerate(values)]


def test_single_value_accepts_one_finite_sample_or_a_scalar() -> None:
    assert single_value(vector("2.5")) == 2.5
    assert single_value([1.0, "7"]) == 7.0


@pytest.mark.parametrize(
    ("result", "code"),
    [
        ([], "no_data"),
        (vector("1", "2", "3"), "multi_series"),
        (vector("NaN"), "non_finite"),
        (vector("+Inf"), "non_finite"),
        (vector("-Inf"), "non_finite"),
        ([{"metric": {}, "values": [[1, "1"]]}], "bad_result"),
    ],
)
def test_single_value_failures_have_codes(result: object, code: str) -> None:
    with pytest.raises(ValueFailure) as info:
        single_value(result)
    assert info.value.code == code
    if code == "multi_series":
        assert "3 series" in str(info.value)


def test_plan_keeps_order_and_explains_each_failure() -> None:
    window = SLIWindow("shop", "staging", "web", 0.0, 60.0, context="c1")
    planned = plan_queries(
        ["http_reqs_total", "custom", "nope", "broken"],
        configured={
            "custom": (IndicatorSpec('m{s="$SERVICE"}'), "svc"),
            "broken": (IndicatorSpec("m{$NOPE}"), "svc"),
        },
        builtins=load_builtin_templates(),
        window=window,
        run_series_present=True,
    )
    assert [p.indicator for p in planned] == ["http_reqs_total", "custom", "nope", "broken"]
    assert 'keptn_context="c1"' in planned[0].query
    assert planned[1].query == 'm{s="web"}'
    assert "unknown indicator" in planned[2].failure
    assert "$NOPE" in planned[3].failure and not planned[3].query


def test_builtins_use_the_whole_scope_when_the_run_left_no_series() -> None:
    window = SLIWindow("shop", "staging", "web", 0.0, 60.0, context="c1")
    (planned,) = plan_queries(
        ["vus_max"],
        configured={},
        builtins=load_builtin_templates(),
        window=window,
        run_series_present=False,
    )
    # sli-templates/k6.yaml's vus_max, with the scope's matchers (no keptn_context) and the
    # window's 60 s as its range.
    assert planned.query == (
        "max(sum by (keptn_context) (max_over_time(k6_vus_max{"
        'keptn_project="shop",keptn_stage="staging",keptn_service="web"}[60s])))'
    )
