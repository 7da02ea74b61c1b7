"""Which Prometheus-compatible store answers (``METRICS_STORE``), and what that changes per query.

VictoriaMetrics leaves samples younger than ``-search.latencyOffset`` (30 s by default) out of
an instant query near now: it evaluates at ``now - latencyOffset`` instead. A get-sli right after
a run would then read nothing of it. Two per-query overrides exist (from VictoriaMetrics'
sources, ``app/vmselect/prometheus/prometheus.go``):

* ``latency_offset``, since v1.85.2 (CHANGELOG 2022, issue 3481);
* ``nocache=1``, in every version including Debian's 1.79.5: the query handler shifts the time
  "only if `nocache` arg isn't set" (issue 241). It also skips the rollup-result cache, which
  does not hold samples of the last 5 minutes (``-search.cacheTimestampOffset``) anyway.

Which store answers is asked once (``PrometheusClient.store_info``: build info and a traced query,
ports/store_info.py); that does not tell VictoriaMetrics' version, so both are sent: an older
version ignores the unknown argument. New series
take seconds to become searchable in 1.79.5 (docs/metrics-stores.md); the freshness wait
(sli/freshness.py) covers that, bounded by ``FRESHNESS_WAIT_SECONDS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

METRICS_STORES = ("auto", "prometheus", "victoriametrics")


@dataclass(frozen=True)
class StoreKind:
    name: str
    query_params: Mapping[str, str] = field(default_factory=dict)
    # How long after a sample's time the store may still not show it (0: at once).
    hides_recent_seconds: float = 0.0


PROMETHEUS = StoreKind("prometheus")
VICTORIAMETRICS = StoreKind(
    "victoriametrics",
    query_params={"latency_offset": "0s", "nocache": "1"},
    # Its default -search.latencyOffset; also more than the ~10 s new series take in 1.79.5.
    hides_recent_seconds=30.0,
)
_BY_NAME = {kind.name: kind for kind in (PROMETHEUS, VICTORIAMETRICS)}


def configured_kind(setting: str) -> StoreKind | None:
    """The store METRICS_STORE names; None for ``auto`` (ask the store)."""
    return _BY_NAME.get(setting)
