"""The report's Jinja2 templates (templates/): the markup, apart from the charts' geometry.

Autoescaping is on: every user-supplied string (SLI names, display names, criteria, messages)
is escaped by the template, never by hand.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from sli_provider.gate.html_chart import SERIES_COLOUR, Chart, format_number


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("sli_provider.gate", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    environment.filters["number"] = format_number
    environment.filters["repr"] = repr
    environment.globals["series_colour"] = SERIES_COLOUR
    return environment


@cache
def report_css() -> str:
    return (files("sli_provider.gate") / "templates" / "report.css").read_text(encoding="utf-8")


def render_chart(chart: Chart) -> str:
    module: Any = _environment().get_template("chart.html.j2").module
    return str(module.chart_figure(chart))


def render_report(context: dict[str, Any]) -> str:
    return _environment().get_template("report.html.j2").render(css=report_css(), **context)
