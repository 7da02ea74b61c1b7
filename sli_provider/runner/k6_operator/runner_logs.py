"""What a runner's log says about its own part of the run: thresholds and iterations.

k6-operator gives each runner only its segment of the test, so each judges its thresholds on
its own samples and prints its own end-of-test summary; that text is all a runner pod leaves
(no ``--summary-export`` file can be read back from a finished pod). k6 >= 1.0 prints::

      █ THRESHOLDS

        http_req_duration
        ✗ 'p(95)<200' p(95)=250ms
      ...
        iterations.............................: 3   16263.33/s
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sli_provider.runner.summary import Threshold

_SECTION = re.compile(r"^\s*█\s+(\S.*?)\s*$")
_CHECKED = re.compile(r"^\s*([✓✗])\s+'(.+?)'")
_METRIC = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_{}:,=\- ]*?)\s*$")
_ITERATIONS = re.compile(r"^\s*iterations\.*:\s*(\d+(?:\.\d+)?)\s")


@dataclass(frozen=True)
class RunnerReport:
    thresholds: tuple[Threshold, ...]
    iterations: float | None


def read_runner_log(lines: Iterable[str]) -> RunnerReport:
    thresholds: list[Threshold] = []
    iterations: float | None = None
    section = ""
    metric: str | None = None
    for line in lines:
        header = _SECTION.match(line)
        if header:
            section, metric = header.group(1).upper(), None
            continue
        if section == "THRESHOLDS":
            checked = _CHECKED.match(line)
            if checked and metric is not None:
                thresholds.append(Threshold(metric, checked.group(2), checked.group(1) == "✓"))
                continue
            named = _METRIC.match(line)
            if named and named.group(1):
                metric = named.group(1)
        elif section == "TOTAL RESULTS":
            counted = _ITERATIONS.match(line)
            if counted:
                iterations = float(counted.group(1))
    return RunnerReport(tuple(thresholds), iterations)
