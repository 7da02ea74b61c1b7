"""/preview and ``sli-provider preview``: render and run indicators for a scope without any event."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sli_provider.errors import SliProviderError
from sli_provider.pipeline.evaluation import MeasuredIndicator
from sli_provider.ports.store_info import StoreInfo
from sli_provider.service.request_fields import RequestFields
from sli_provider.sli.window import SLIWindow


class PreviewError(SliProviderError, ValueError):
    """The preview request is malformed; ``problems`` lists every field that is wrong and why."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


# Names that would leave their directory (local sli.yaml) or the resource URL: refused as
# input, before anything is read, so they are the caller's error and not the provider's.


def window_from_json(body: Any) -> SLIWindow:
    if not isinstance(body, Mapping):
        raise PreviewError(["body must be a JSON object"])
    problems = RequestFields(body)
    indicators = _names(body.get("indicators"), problems)
    filters = _pairs(body.get("customFilters"), "customFilters", problems)
    labels = dict(_pairs(body.get("labels"), "labels", problems))
    return _window(problems, indicators=indicators, filters=filters, labels=labels)


def window_from_query(query: Mapping[str, str], multi: Mapping[str, Sequence[str]]) -> SLIWindow:
    """GET parameters: the same fields; lists repeat or use commas, pairs are ``key=value``."""
    problems = RequestFields(query)
    indicators = [n for item in multi.get("indicators", []) for n in item.split(",") if n]
    filters = [_split_pair(p, "customFilters", problems) for p in multi.get("customFilters", [])]
    labels = [_split_pair(p, "labels", problems) for p in multi.get("labels", [])]
    return _window(
        problems,
        indicators=indicators or None,
        filters=[f for f in filters if f is not None],
        labels=dict(pair for pair in labels if pair is not None),
    )


def _window(
    problems: RequestFields,
    *,
    indicators: list[str] | None,
    filters: list[tuple[str, str]],
    labels: dict[str, str],
) -> SLIWindow:
    scope_name, text = problems.scope_name, problems.text
    moment = functools.partial(problems.moment, required=True)

    project, stage, service = scope_name("project"), scope_name("stage"), scope_name("service")
    start_s, end_s = moment("start"), moment("end")
    if start_s is not None and end_s is not None and end_s < start_s:
        problems.add("end is before start")
    deployment, context = text("deployment"), text("context")
    if start_s is None or end_s is None or problems.problems:  # a missing time added a problem
        raise PreviewError(problems.problems)
    return SLIWindow(
        project=project,
        stage=stage,
        service=service,
        start_s=start_s,
        end_s=end_s,
        indicators=tuple(indicators) if indicators else None,
        custom_filters=tuple(filters),
        labels=labels,
        deployment=deployment,
        context=context,
    )


def _names(raw: Any, problems: RequestFields) -> list[str] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return [n for n in raw.split(",") if n]
    if isinstance(raw, list) and all(isinstance(n, str) and n for n in raw):
        return list(raw)
    problems.add("indicators must be a list of names")
    return None


def _pairs(raw: Any, name: str, problems: RequestFields) -> list[tuple[str, str]]:
    if raw is None:
        return []
    if isinstance(raw, Mapping):
        items = list(raw.items())
    elif isinstance(raw, list) and all(isinstance(i, Mapping) for i in raw):
        items = [(i.get("key"), i.get("value")) for i in raw]
    else:
        problems.add(f"{name} must be an object or a list of {{key, value}}")
        return []
    if not all(isinstance(k, str) and k and isinstance(v, str) for k, v in items):
        problems.add(f"{name} keys and values must be strings")
        return []
    return [(str(k), str(v)) for k, v in items]


def _split_pair(raw: str, name: str, problems: RequestFields) -> tuple[str, str] | None:
    key, sep, value = raw.partition("=")
    if not sep or not key:
        problems.add(f"{name} must be given as key=value, not {raw!r}")
        return None
    return key, value


def results_as_json(
    results: Sequence[MeasuredIndicator], store: StoreInfo | None = None
) -> dict[str, Any]:
    """``store``: which metrics store answered, shown as ``store`` when given."""
    shown: dict[str, Any] = {} if store is None else {"store": store.as_json()}
    return {
        **shown,
        "indicators": [
            {
                "metric": r.metric,
                "query": r.query,
                "value": r.value,
                "success": r.success,
                "message": r.message,
                "duration_ms": r.duration_ms,
            }
            for r in results
        ],
    }


def results_as_table(results: Sequence[MeasuredIndicator], store: StoreInfo | None = None) -> str:
    """The table; then, when given, a ``store: ...`` line saying which metrics store answered."""
    rows = [("indicator", "value", "ok", "ms", "message / query")]
    for r in results:
        rows.append(
            (
                r.metric,
                f"{r.value:.6g}",
                "yes" if r.success else "NO",
                f"{r.duration_ms:.1f}",
                r.message or r.query,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for row in rows:
        lines.append(
            "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4]
        )
    if store is not None:
        lines.append(f"store: {store.describe()}")
    return "\n".join(lines)
