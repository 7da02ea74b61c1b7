"""Placeholders in PromQL templates, rendered so that no value can change a query's structure.

The placeholders of keptn-contrib/prometheus-service work as there, so an existing
``prometheus/sli.yaml`` works unchanged: ``$PROJECT``, ``$STAGE``, ``$SERVICE``, ``$DEPLOYMENT``,
``$DURATION_SECONDS``, ``$LABEL.<key>`` and each customFilter as ``$<key>`` and ``$<KEY>`` (filters
take precedence, with quotes stripped, as there). New: ``$CONTEXT``, ``$START``, ``$END`` and
``$SELECTOR``.

Where prometheus-service does plain substring replacement, this module scans the template the way
the PromQL lexer does, so it knows whether a placeholder sits inside a string literal:

* inside ``"…"`` or ``'…'`` a value is escaped for that literal, so quotes, backslashes and
  newlines stay part of the string;
* inside a backtick raw string a value with a backtick is refused (raw strings have no escapes);
* outside a string an event value must be a plain word (``[A-Za-z0-9_:.]``), so ``or vector(1)``
  or ``} or {`` cannot be smuggled in;
* the longest known name wins, so a filter called ``DURATION`` cannot eat ``$DURATION_SECONDS``;
* a ``$NAME`` that resolves to nothing fails the indicator and names the placeholder; no broken
  PromQL is ever sent.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sli_provider.errors import SliProviderError
from sli_provider.sli.window import SLIWindow

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_:.]*")
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
LABEL_PREFIX = "LABEL."


class TemplateError(SliProviderError, ValueError):
    """The template cannot be rendered safely; the message names the placeholder."""


@dataclass(frozen=True)
class Value:
    """A placeholder value; ``trusted`` values are computed here and inserted as they are."""

    text: str
    trusted: bool = False


def duration_seconds(window: SLIWindow) -> int:
    """The window's length in whole seconds (at least 1), for PromQL ranges."""
    return max(1, math.ceil(window.end_s - window.start_s))


def placeholders(window: SLIWindow, selector: str | None = None) -> dict[str, Value]:
    """Every placeholder's value for ``window``; ``selector`` replaces the scope's $SELECTOR."""
    values: dict[str, Value] = {
        "PROJECT": Value(window.project),
        "STAGE": Value(window.stage),
        "SERVICE": Value(window.service),
        "DEPLOYMENT": Value(_deployment(window)),
        "DURATION_SECONDS": Value(f"{duration_seconds(window)}s", trusted=True),
        "START": Value(_unix(window.start_s), trusted=True),
        "END": Value(_unix(window.end_s), trusted=True),
    }
    if window.context:
        values["CONTEXT"] = Value(window.context)
    values["SELECTOR"] = Value(
        selector if selector is not None else scope_selector(window), trusted=True
    )
    for key, raw in window.custom_filters:
        cleaned = raw.replace("'", "").replace('"', "")
        values[key] = Value(cleaned)
        values[key.upper()] = Value(cleaned)
    for key, raw in window.labels.items():
        values[LABEL_PREFIX + key] = Value(raw)
    return values


def _deployment(window: SLIWindow) -> str:
    # prometheus-service: the event's deployment, else the label, else "primary".
    return window.deployment or window.labels.get("deployment", "") or "primary"


def _unix(seconds: float) -> str:
    # Millisecond precision: truncating `end` to whole seconds loses k6's final flush.
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def quote_promql(value: str) -> str:
    """A PromQL double-quoted string literal holding exactly ``value``."""
    # JSON escapes (\" \\ \n \uXXXX …) are all valid escapes of PromQL's Go-style strings.
    return json.dumps(value, ensure_ascii=False)


def _escape_for(quote: str, value: str) -> str:
    if quote == '"':
        return quote_promql(value)[1:-1]
    if quote == "'":
        inner = quote_promql(value)[1:-1]
        return inner.replace('\\"', '"').replace("'", "\\'")
    if "`" in value:
        raise TemplateError("contains a backtick, which a raw `…` string cannot hold")
    return value


def label_matchers(matchers: Sequence[tuple[str, str]]) -> str:
    """``name="value",…`` with values quoted; names must be valid Prometheus label names."""
    parts = []
    for name, value in matchers:
        if not _LABEL_NAME.fullmatch(name):
            raise TemplateError(f"{name!r} is not a valid Prometheus label name")
        operator, operand = "=", value
        # prometheus-service convention: a filter value may start with its own operator.
        for candidate in ("!=", "=~", "!~", "="):
            if value.startswith(candidate):
                operator, operand = candidate, value[len(candidate) :]
                break
        parts.append(f"{name}{operator}{quote_promql(operand)}")
    return ",".join(parts)


def scope_selector(window: SLIWindow, *, with_context: bool = False) -> str:
    """Matchers for the k6 series of this project/stage/service (and run).

    customFilters are not among them: as in prometheus-service a filter reaches a query only
    where the query names it (``$key``). A filter meant for one custom SLI (e.g. a label that only
    that SLI's metric has) would otherwise turn every built-in into "no data".
    """
    matchers = [
        ("keptn_project", window.project),
        ("keptn_stage", window.stage),
        ("keptn_service", window.service),
    ]
    if with_context:
        matchers.append(("keptn_context", window.context))
    return label_matchers(matchers)


def render(template: str, values: Mapping[str, Value]) -> str:
    """Replace every ``$NAME`` in ``template``; raise TemplateError if one cannot be placed safely."""
    names = sorted(values, key=len, reverse=True)
    out: list[str] = []
    quote: str | None = None  # the open string literal's quote character, if any
    i, n = 0, len(template)
    while i < n:
        char = template[i]
        if quote is None and char == "#":
            end = template.find("\n", i)
            end = n if end == -1 else end
            out.append(template[i:end])
            i = end
            continue
        if char == "$":
            consumed, text = _placeholder_at(template, i + 1, names, values, quote)
            if consumed:
                out.append(text)
                i += 1 + consumed
                continue
        if quote is None:
            if char in "\"'`":
                quote = char
        elif char == "\\" and quote != "`" and i + 1 < n:
            out.append(template[i : i + 2])
            i += 2
            continue
        elif char == quote:
            quote = None
        out.append(char)
        i += 1
    if quote is not None:
        raise TemplateError(f"unterminated {quote} string in the query")
    return "".join(out)


def _placeholder_at(
    template: str,
    pos: int,
    names: Sequence[str],
    values: Mapping[str, Value],
    quote: str | None,
) -> tuple[int, str]:
    """(characters consumed after ``$``, replacement); (0, "") when ``$`` is no placeholder."""
    for name in names:
        if template.startswith(name, pos):
            return len(name), _place(name, values[name], quote)
    if template.startswith(LABEL_PREFIX, pos):
        key = _IDENTIFIER.match(template, pos + len(LABEL_PREFIX))
        shown = LABEL_PREFIX + (key.group() if key else "")
        raise TemplateError(f"placeholder ${shown}: the event has no such label")
    ident = _IDENTIFIER.match(template, pos)
    if ident is None:
        return 0, ""  # a literal $, e.g. the end anchor of a regex
    name = ident.group()
    if name == "CONTEXT":
        raise TemplateError("placeholder $CONTEXT: the event has no shkeptncontext")
    raise TemplateError(
        f"unknown placeholder ${name} (not a built-in placeholder, label or customFilter)"
    )


def _place(name: str, value: Value, quote: str | None) -> str:
    if value.trusted:
        return value.text
    try:
        if quote is not None:
            return _escape_for(quote, value.text)
    except TemplateError as exc:
        raise TemplateError(f"placeholder ${name}: value {exc}") from None
    if not _PLAIN_WORD.fullmatch(value.text):
        raise TemplateError(
            f"placeholder ${name} is outside a quoted string and its value {value.text!r} is not "
            "a plain word; put the placeholder in quotes"
        )
    return value.text
