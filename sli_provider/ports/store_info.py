"""Which metrics store answers at the Prometheus URL, for /preview and ``sli-provider preview``.

Two answers are read, both through the query API's own path so that every URL shape works
(Prometheus at its root, VictoriaMetrics under ``/prometheus`` or ``/select/<tenant>/prometheus``,
Mimir under ``/prometheus``):

* ``/api/v1/status/buildinfo``: Prometheus states its version and revision there; Grafana Mimir
  adds ``application``. VictoriaMetrics 1.79 answers it with empty data.
* an instant query of ``1`` with ``trace=1``: VictoriaMetrics answers with a query trace beside
  the result (its own query argument since 1.78, which Prometheus ignores). That is how
  VictoriaMetrics is told apart, asked first because later versions are reported to state a
  Prometheus-like version (``2.24.0``) in their build info; its own version is not exposed on the
  query path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

UNKNOWN = "unknown"
PROMETHEUS = "Prometheus"
VICTORIAMETRICS = "VictoriaMetrics"


@dataclass(frozen=True)
class StoreInfo:
    """What identifies the store; ``name`` is ``unknown`` when it could not be asked."""

    name: str
    version: str | None = None
    revision: str | None = None

    @property
    def known(self) -> bool:
        return self.name != UNKNOWN

    def describe(self) -> str:
        """One line for the preview table: ``Prometheus 2.42.0 (revision abc)``."""
        text = self.name
        if self.version:
            text += f" {self.version}"
        if self.revision:
            text += f" (revision {self.revision})"
        return text

    def as_json(self) -> dict[str, str | None]:
        return {"name": self.name, "version": self.version, "revision": self.revision}


UNKNOWN_STORE = StoreInfo(UNKNOWN)


def identify(buildinfo: Any, traced_query: Any) -> StoreInfo:
    """The store from its buildinfo body and its answer to a traced query (None: no answer)."""
    if isinstance(traced_query, Mapping) and "trace" in traced_query:
        return StoreInfo(VICTORIAMETRICS)
    data = buildinfo.get("data") if isinstance(buildinfo, Mapping) else None
    if isinstance(data, Mapping) and isinstance(data.get("version"), str) and data["version"]:
        application = data.get("application")
        return StoreInfo(
            name=str(application) if isinstance(application, str) and application else PROMETHEUS,
            version=str(data["version"]),
            revision=_text(data.get("revision")),
        )
    return UNKNOWN_STORE


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
