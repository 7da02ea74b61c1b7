"""What to evaluate: a scope, a time window and the request's extras.

The one shape every layer passes on: the get-sli event holds one (``keptn.get_sli_task.GetSLIRequest``),
/preview and the CLI build one, the evaluator reads the SLI configuration and Prometheus for one,
and the templates take their placeholders from it (``sli.templating.placeholders``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SLIWindow:
    project: str
    stage: str
    service: str
    start_s: float  # unix seconds
    end_s: float
    indicators: tuple[str, ...] | None = None  # None: every indicator known for the scope
    custom_filters: tuple[tuple[str, str], ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    deployment: str = ""
    context: str = ""  # the shkeptncontext of the k6 run whose series are preferred
    gitcommitid: str = ""  # the version of the sli.yaml files to read
