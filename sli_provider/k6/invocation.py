"""The one place that decides how k6 is started so that the built-in SLIs find its metrics.

The service's runner, ``sli-provider run`` and the devkit all build their k6 arguments here
(through the runner's back-end), so the tags the SLI templates filter on and the options under
which the built-in SLIs equal k6's own end-of-test summary cannot drift apart.

Why these options (docs/runner.md, "Running k6 yourself", shows them as one command line):

* ``-o experimental-prometheus-rw`` ships with k6 >= 0.42; no xk6 build is needed.
* ``--system-tags ""`` leaves one series per metric (only the keptn_* tags split series), so the
  trend-stat gauges k6 writes are the whole run's values and equal the summary exactly.
  Percentiles of several series cannot be combined, which is what goes wrong with default tags.
* Trend stats include ``sum`` so the average is exact, and the percentiles the templates use.
* Stale markers keep an instant query of a later run from seeing this run's last values; the
  templates use range functions, which ignore stale markers.
* ``--include-system-env-vars=false``: the script sees only what is passed with ``-e``; k6's own
  environment (remote-write credentials) never reaches it.

Why ``build_invocation`` is pure (no file system, no binary lookup, no secret revealed):

* The same arguments must serve a local process and a back-end that runs k6 elsewhere (a pod),
  where the binary, the script's path and the home directory are that back-end's business. So a
  ``K6Invocation`` holds only what k6 is told; the back-end names the binary and adds its own
  options (``--summary-export`` to a file it will read) with ``K6Invocation.argv``, and sets
  process details (``HOME``, the working directory) itself.
* Remote-write credentials stay wrapped (``secrets``) until the back-end puts them where only
  k6 reads them: the local back-end into k6's process environment at exec time, a cluster
  back-end into a Secret. They never go into argv (``ps`` shows argv) or the script's ``--env``.
* Being pure, it can be tested without k6 installed, and building it cannot fail at run time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

TrendMode = Literal["stats", "native-histogram"]

# The stats the built-ins read first; then a dense quantile curve, from which the service merges
# the percentiles of a run split over several k6 instances (sli/quantile_merge.py). No fraction
# below 10: k6 names p(2.5) "_p25", the same as p(25).
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
    # Every whole percent: a coarser curve misses where a slower instance's samples begin
    # (with a step every 5 %, a merged p50 came out 3 % off; docs/builtin-slis.md has the rest).
    *(f"p({p})" for p in range(1, 94) if p not in (50, 90)),
    # The tail is where few samples decide: steps of 0.25 and 0.1 (p(99.25) → "_p9925").
    *(f"p({p / 100:g})" for p in range(9400, 9900, 25) if p not in (9500,)),
    *(f"p({p / 10:g})" for p in range(991, 1000)),
)
# A split run's runners (k6-operator) write a denser curve, finest in the tail: the union's
# p50..p99 falls at uneven ranks of unlike runners, and where a runner's samples are sparse
# (its tail) only points closer than the samples read them back exactly
# (quantile_merge.sample_at). Every whole percent to p(79), then steps of 0.25 to p(90), 0.1 to
# p(95), 0.05 to p(98), 0.02 to p(99.9) and 0.01 to p(99.99): 340 stats, the merged p50..p99
# within 0.5 % of the union in the measured runs (docs/k6-operator.md).
SPLIT_RUN_TREND_STATS: tuple[str, ...] = (
    *TREND_STATS[:10],
    *(f"p({p})" for p in range(1, 80) if p != 50),
    *(
        f"p({h / 100:g})"
        for start, stop, step in ((8000, 9000, 25), (9000, 9500, 10), (9500, 9800, 5))
        for h in range(start, stop, step)
        if h not in (9000, 9500)
    ),
    *(f"p({h / 100:g})" for h in range(9800, 9990, 2) if h != 9900),
    *(f"p({h / 100:g})" for h in range(9990, 10000)),
)
# For messages: the stats the built-ins read first, then "…" for the curve.
TREND_STATS_SHOWN = ",".join(TREND_STATS[:10]) + ",…"
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


class SecretSource(Protocol):
    """A credential that is only read out where it is handed to k6."""

    def reveal(self) -> str: ...


@dataclass(frozen=True)
class SecretFile:
    """A credential kept in a file (a rotated token): read when revealed, never before."""

    path: Path

    def reveal(self) -> str:
        return self.path.read_text(encoding="utf-8").strip()


@dataclass(frozen=True)
class RemoteWriteTarget:
    """Where k6 writes its metrics and how: ``settings`` are plain k6 output options (headers,
    TLS), ``secrets`` the credentials, both keyed by k6's environment variable names."""

    url: str
    settings: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, SecretSource] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"RemoteWriteTarget(url={self.url!r}, secrets={sorted(self.secrets)})"


@dataclass(frozen=True)
class K6Invocation:
    """What k6 is told for one run; nothing about the machine it runs on.

    ``options`` follow the binary (``run`` first), ``script`` comes last, ``env`` is k6's own
    environment (output settings), ``secrets`` are revealed into that environment by the
    back-end only.
    """

    options: tuple[str, ...]
    script: str
    env: Mapping[str, str]
    secrets: Mapping[str, SecretSource] = field(default_factory=dict)

    def argv(self, binary: str, *backend_options: str) -> tuple[str, ...]:
        """The command line: the back-end's binary, k6's options, the back-end's, the script."""
        return (binary, *self.options, *backend_options, self.script)


def build_invocation(
    *,
    script: str | Path,
    remote_write: RemoteWriteTarget,
    tags: RunTags,
    script_env: Mapping[str, str] | None = None,
    vus: int | None = None,
    duration: str | None = None,
    iterations: int | None = None,
    trend_mode: TrendMode = "stats",
    push_interval: str = DEFAULT_PUSH_INTERVAL,
    extra_args: Sequence[str] = (),
) -> K6Invocation:
    """k6's arguments and environment for one tagged run of ``script`` (a path as k6 sees it)."""
    options: list[str] = [
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
        options += ["--tag", f"{key}={value}"]
    for key, value in (script_env or {}).items():
        options += ["--env", f"{key}={value}"]
    if vus is not None:
        options += ["--vus", str(vus)]
    if duration is not None:
        options += ["--duration", duration]
    if iterations is not None:
        options += ["--iterations", str(iterations)]
    options += list(extra_args)

    env = {
        "K6_PROMETHEUS_RW_SERVER_URL": remote_write.url,
        "K6_PROMETHEUS_RW_PUSH_INTERVAL": push_interval,
        "K6_PROMETHEUS_RW_STALE_MARKERS": "true",
        "K6_NO_COLOR": "true",
    }
    if trend_mode == "native-histogram":
        env["K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM"] = "true"
    else:
        env["K6_PROMETHEUS_RW_TREND_STATS"] = ",".join(TREND_STATS)
    env.update(remote_write.settings)
    return K6Invocation(
        options=tuple(options), script=str(script), env=env, secrets=dict(remote_write.secrets)
    )


def remote_write_url(prometheus_url: str) -> str:
    """Prometheus' remote-write receiver endpoint for a base URL."""
    return prometheus_url.rstrip("/") + "/api/v1/write"
