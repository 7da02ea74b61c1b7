"""/preview and ``sli-provider preview``: render and run indicators for a scope without any event."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sli_provider.errors import SliProviderError
from sli_provider.keptn.timestamps import TimestampError, parse_keptn
from sli_provider.service.evaluation import MeasuredIndicator
from sli_provider.sli.window import SLIWindow


class PreviewError(SliProviderError, ValueError):
    """The preview request is malformed; the text says which field and why."""


def window_from_json(body: Any) -> SLIWindow:
    if not isinstance(body, Mapping):
        raise PreviewError("body must be a JSON object")
    return _window(
        body,
        indicators=_names(body.get("indicators")),
        filters=_pairs(body.get("customFilters"), "customFilters"),
        labels=dict(_pairs(body.get("labels"), "labels")),
    )


def window_from_query(query: Mapping[str, str], multi: Mapping[str, Sequence[str]]) -> SLIWindow:
    """GET parameters: the same fields; lists repeat or use commas, pairs are ``key=value``."""
    indicators = [n for item in multi.get("indicators", []) for n in item.split(",") if n]
    return _window(
        query,
        indicators=indicators or None,
        filters=[_split_pair(p, "customFilters") for p in multi.get("customFilters", [])],
        labels=dict(_split_pair(p, "labels") for p in multi.get("labels", [])),
    )


def _window(
    fields: Mapping[str, Any],
    *,
    indicators: list[str] | None,
    filters: list[tuple[str, str]],
    labels: dict[str, str],
) -> SLIWindow:
    def text(name: str, required: bool) -> str:
        value = fields.get(name)
        if value is None or value == "":
            if required:
                raise PreviewError(f"{name} is required")
            return ""
        if not isinstance(value, str):
            raise PreviewError(f"{name} must be a string")
        return value

    def moment(name: str) -> float:
        raw = fields.get(name)
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return float(raw)
        try:
            return parse_keptn(text(name, True))
        except TimestampError as exc:
            raise PreviewError(f"{name}: {exc}") from None

    start_s, end_s = moment("start"), moment("end")
    if end_s < start_s:
        raise PreviewError("end is before start")
    return SLIWindow(
        project=text("project", True),
        stage=text("stage", True),
        service=text("service", True),
        start_s=start_s,
        end_s=end_s,
        indicators=tuple(indicators) if indicators else None,
        custom_filters=tuple(filters),
        labels=labels,
        deployment=text("deployment", False),
        context=text("context", False),
    )


def _names(raw: Any) -> list[str] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return [n for n in raw.split(",") if n]
    if isinstance(raw, list) and all(isinstance(n, str) and n for n in raw):
        return list(raw)
    raise PreviewError("indicators must be a list of names")


def _pairs(raw: Any, name: str) -> list[tuple[str, str]]:
    if raw is None:
        return []
    if isinstance(raw, Mapping):
        items = list(raw.items())
    elif isinstance(raw, list) and all(isinstance(i, Mapping) for i in raw):
        items = [(i.get("key"), i.get("value")) for i in raw]
    else:
        raise PreviewError(f"{name} must be an object or a list of {{key, value}}")
    if not all(isinstance(k, str) and k and isinstance(v, str) for k, v in items):
        raise PreviewError(f"{name} keys and values must be strings")
    return [(str(k), str(v)) for k, v in items]


def _split_pair(raw: str, name: str) -> tuple[str, str]:
    key, sep, value = raw.partition("=")
    if not sep or not key:
        raise PreviewError(f"{name} must be given as key=value, not {raw!r}")
    return key, value


def results_as_json(results: Sequence[MeasuredIndicator]) -> dict[str, Any]:
    return {
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
        ]
    }


def results_as_table(results: Sequence[MeasuredIndicator]) -> str:
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
    return "\n".join(lines)
