"""The querier port: what the SLI logic needs from Prometheus, and the errors it may raise.

Error tree::

    PrometheusError
    ├── QueryRejected         4xx other than 401/403/429: the query itself is wrong (bad_data)
    ├── QueryTimeout          no answer within the query deadline
    ├── QueryFailed           5xx/429 that outlived the retries
    └── PrometheusUnavailable the provider cannot work: unreachable, TLS or auth failure
"""

from __future__ import annotations

from typing import Any, Protocol

from sli_provider.errors import SliProviderError
from sli_provider.ports.metrics_store import StoreKind
from sli_provider.ports.store_info import StoreInfo


class PrometheusError(SliProviderError):
    pass


class QueryRejected(PrometheusError):
    pass


class QueryTimeout(PrometheusError):
    pass


class QueryFailed(PrometheusError):
    pass


class PrometheusUnavailable(PrometheusError):
    pass


class Querier(Protocol):
    """What the SLI logic needs from Prometheus."""

    async def instant(self, query: str, at: float) -> Any:
        """``data.result`` of an instant query evaluated at unix time ``at``."""
        ...

    async def store_kind(self) -> StoreKind:
        """Which store answers (METRICS_STORE, else asked once), for store-specific reading."""
        ...

    async def store_info(self) -> StoreInfo:
        """Which store answers (for previews); ``UNKNOWN_STORE`` when it cannot be asked."""
        ...

    async def ready(self) -> bool: ...

    async def aclose(self) -> None: ...
