"""Placeholders: prometheus-service compatibility, and values that must not change a query."""

from __future__ import annotations

import pytest

from sli_provider.sli.templating import (
    TemplateError,
    label_matchers,
    placeholders,
    render,
    scope_selector,
)
from sli_provider.sli.window import SLIWindow


def window(**overrides: object) -> SLIWindow:
    base: dict[str, object] = {
        "project": "shop",
        "stage": "staging",
        "service": "web",
        "start_s": 1_700_000_000.0,
        "end_s": 1_700_000_299.5,
        "context": "6a1f0c2e-3b44-4e8e-9a51-7d2b9c0f4e21",
        "labels": {"buildId": "142"},
        "custom_filters": (("scenario", "checkout"),),
    }
    base.update(overrides)
    return SLIWindow(**base)  # type: ignore[arg-type]


def test_prometheus_service_placeholders_render_as_there() -> None:
    """The example of k6-prometheus.md §1.8 for prometheus-service renders unchanged."""
    template = (
        'sum(last_over_time(k6_http_reqs_total{keptn_project="$PROJECT",keptn_stage="$STAGE",'
        'keptn_service="$SERVICE",deployment="$DEPLOYMENT",build="$LABEL.buildId",'
        'scenario="$scenario",s2="$SCENARIO"}[$DURATION_SECONDS]))'
    )
    assert render(template, placeholders(window())) == (
        'sum(last_over_time(k6_http_reqs_total{keptn_project="shop",keptn_stage="staging",'
        'keptn_service="web",deployment="primary",build="142",scenario="checkout",'
        's2="checkout"}[300s]))'
    )


def test_new_placeholders_context_start_end() -> None:
    rendered = render('x{c="$CONTEXT"} @ $END - $START', placeholders(window()))
    assert rendered == 'x{c="6a1f0c2e-3b44-4e8e-9a51-7d2b9c0f4e21"} @ 1700000299.5 - 1700000000'


def test_deployment_falls_back_to_label_then_primary() -> None:
    assert render("$DEPLOYMENT", placeholders(window(deployment="canary"))) == "canary"
    labelled = window(labels={"deployment": "blue"})
    assert render("$DEPLOYMENT", placeholders(labelled)) == "blue"


@pytest.mark.parametrize(
    "hostile",
    [
        'x"} or vector(1) or {a="',
        "back\\slash\\",
        "new\nline",
        "brace}{",
        "') or vector(1)",
    ],
)
def test_values_cannot_escape_their_string(hostile: str) -> None:
    """Whatever a label holds, the rendered query keeps one matcher with exactly that value."""
    rendered = render('m{l="$LABEL.v"}', placeholders(window(labels={"v": hostile})))
    # Prometheus parses label values as Go strings; JSON decoding gives the same value.
    import json

    inner = rendered[len('m{l="') : -len('"}')]
    assert json.loads(f'"{inner}"') == hostile
    assert rendered.count("or vector") == hostile.count("or vector")
    assert rendered.startswith('m{l="') and rendered.endswith('"}')


def test_single_quoted_strings_are_escaped_too() -> None:
    rendered = render("m{l='$LABEL.v'}", placeholders(window(labels={"v": "it's"})))
    assert rendered == "m{l='it\\'s'}"


def test_filter_quotes_are_stripped_like_prometheus_service() -> None:
    rendered = render(
        'm{s="$scenario"}', placeholders(window(custom_filters=(("scenario", "'a\"b'"),)))
    )
    assert rendered == 'm{s="ab"}'


def test_event_value_outside_quotes_must_be_a_plain_word() -> None:
    with pytest.raises(TemplateError, match=r"\$LABEL.v is outside a quoted string"):
        render("m{} + $LABEL.v", placeholders(window(labels={"v": "1 or vector(1)"})))
    assert render("k6_$SERVICE", placeholders(window())) == "k6_web"


def test_backtick_raw_string_refuses_a_backtick() -> None:
    with pytest.raises(TemplateError, match="backtick"):
        render("m{l=`$LABEL.v`}", placeholders(window(labels={"v": "a`b"})))


def test_unknown_placeholder_is_named() -> None:
    with pytest.raises(TemplateError, match=r"unknown placeholder \$TESTID"):
        render('m{t="$TESTID"}', placeholders(window()))
    with pytest.raises(TemplateError, match=r"\$LABEL.nope"):
        render('m{t="$LABEL.nope"}', placeholders(window()))
    with pytest.raises(TemplateError, match=r"\$CONTEXT"):
        render('m{t="$CONTEXT"}', placeholders(window(context="")))


def test_longest_name_wins_over_a_colliding_filter() -> None:
    """A filter called DURATION must not eat $DURATION_SECONDS (it would in prometheus-service)."""
    values = placeholders(window(custom_filters=(("DURATION", "x"),)))
    assert render("[$DURATION_SECONDS] $DURATION", values) == "[300s] x"


def test_regex_anchor_dollar_is_left_alone() -> None:
    assert render('m{url=~".*/api$"}', placeholders(window())) == 'm{url=~".*/api$"}'


def test_comments_are_not_templated() -> None:
    assert render("m # $NOT_A_PLACEHOLDER\n", placeholders(window())) == "m # $NOT_A_PLACEHOLDER\n"


def test_selector_is_the_scope_only_and_never_carries_custom_filters() -> None:
    """prometheus-service puts a filter only where a query names it; $SELECTOR names none."""
    c = window(custom_filters=(("scenario", "=~check.*"), ('a"}or{', "x")))
    assert scope_selector(c, with_context=True) == (
        'keptn_project="shop",keptn_stage="staging",keptn_service="web",'
        'keptn_context="6a1f0c2e-3b44-4e8e-9a51-7d2b9c0f4e21"'
    )


def test_label_matchers_quote_values_and_honour_filter_operators() -> None:
    assert label_matchers([("scenario", "=~check.*"), ("status", '!=5"00')]) == (
        'scenario=~"check.*",status!="5\\"00"'
    )
    with pytest.raises(TemplateError, match="not a valid Prometheus label name"):
        label_matchers([('a"}or{', "x")])
