"""What a devkit metrics store offers a test, whichever store it is (Prometheus, VictoriaMetrics)."""

from __future__ import annotations

from typing import Any, Protocol


class MetricsStore(Protocol):
    """A running store k6 remote-writes into and the SLI provider queries."""

    @property
    def store_name(self) -> str:
        """``prometheus`` or ``victoriametrics``: for test ids and store-specific expectations."""
        ...

    @property
    def url(self) -> str:
        """The base URL of the Prometheus query API (the ``prometheus_url`` setting)."""
        ...

    @property
    def remote_write_url(self) -> str: ...

    async def settle(self) -> float:
        """Wait until what was written before shows in queries; returns the seconds waited."""
        ...

    async def query(self, promql: str, *, at: float | None = None) -> list[dict[str, Any]]: ...

    def log_tail(self, lines: int = ...) -> str: ...
