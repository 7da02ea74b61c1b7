"""From requested indicator names to rendered PromQL, or a reason per indicator why not."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sli_provider.sli.builtin import BUILTIN_ORIGIN
from sli_provider.sli.config import IndicatorSpec, OnEmpty
from sli_provider.sli.quantile_merge import MERGED_PERCENTILES
from sli_provider.sli.templating import (
    TemplateError,
    duration_seconds,
    placeholders,
    render,
    scope_selector,
)
from sli_provider.sli.window import SLIWindow


@dataclass(frozen=True)
class PlannedQuery:
    indicator: str
    origin: str
    query: str = ""
    failure: str = ""  # set when the indicator cannot be queried at all
    on_empty: OnEmpty = "fail"
    # Set for a built-in computed from its query's series (sli/quantile_merge.py): the percent.
    curve_percentile: float | None = None


def run_series_queries(window: SLIWindow) -> tuple[str, ...]:
    """Does this run (keptn_context) have k6 series in the window? Cheap queries, in order.

    k6 writes ``vus_max`` as one series with only the global tags, so asking for it reads one
    series instead of every k6 series of the run (seconds against milliseconds on a run whose
    requests carry their own tags: bench/README.md). A run shorter than k6's one-second gauge tick may not have written it;
    ``iterations_total`` (one series per scenario) is asked next.
    """
    matchers = scope_selector(window, with_context=True)
    return tuple(
        f"count(last_over_time({metric}{{{matchers}}}[{duration_seconds(window)}s])) > 0"
        for metric in ("k6_vus_max", "k6_iterations_total")
    )


def run_iterations_query(window: SLIWindow) -> str:
    """The run's iteration count as Prometheus holds it: equal to k6's summary once k6's final
    push is visible."""
    matchers = scope_selector(window, with_context=True)
    return f"sum(last_over_time(k6_iterations_total{{{matchers}}}[{duration_seconds(window)}s]))"


def needs_builtin(
    indicators: Sequence[str],
    configured: Mapping[str, tuple[IndicatorSpec, str]],
    builtins: Mapping[str, IndicatorSpec],
) -> bool:
    return any(name not in configured and name in builtins for name in indicators)


def plan_queries(
    indicators: Sequence[str],
    *,
    configured: Mapping[str, tuple[IndicatorSpec, str]],
    builtins: Mapping[str, IndicatorSpec],
    window: SLIWindow,
    run_series_present: bool,
) -> list[PlannedQuery]:
    """One entry per requested indicator, in the requested order."""
    try:
        user_values = placeholders(window)
        builtin_values = placeholders(
            window, scope_selector(window, with_context=run_series_present and bool(window.context))
        )
    except TemplateError as exc:
        # A scope value that cannot be placed spoils $SELECTOR for every query.
        return [PlannedQuery(name, "", failure=str(exc)) for name in indicators]

    planned: list[PlannedQuery] = []
    for name in indicators:
        if name in configured:
            spec, origin = configured[name]
            values = user_values
        elif name in builtins:
            spec, origin = builtins[name], BUILTIN_ORIGIN
            values = builtin_values
        else:
            planned.append(
                PlannedQuery(
                    name,
                    "",
                    failure=f"unknown indicator {name!r}: not in any sli.yaml "
                    "and not a built-in k6 SLI",
                )
            )
            continue
        try:
            query = render(spec.query, values)
            percentile = MERGED_PERCENTILES.get(name) if origin == BUILTIN_ORIGIN else None
            planned.append(
                PlannedQuery(
                    name, origin, query=query, on_empty=spec.on_empty, curve_percentile=percentile
                )
            )
        except TemplateError as exc:
            planned.append(PlannedQuery(name, origin, failure=f"{exc} (from {origin})"))
    return planned
