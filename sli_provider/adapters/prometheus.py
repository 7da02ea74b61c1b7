"""Prometheus behind one small interface: instant queries over aiohttp, on the event loop.

Not a synchronous client on a thread pool (prometheus-api-client over requests): the hand-off
plus requests' own work cost CPU on every query, a large share of what the service may add to
its queries' own time (figures in bench/README.md). Retries are ours (tenacity): counted, bounded
by the query's deadline, and never applied to 400 bad_data. The errors it raises are the querier
port's (ports/querier.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from sli_provider.adapters.prometheus_access import Connection
from sli_provider.adapters.retry import Deadline, with_retries
from sli_provider.ports.metrics_store import (
    PROMETHEUS,
    VICTORIAMETRICS,
    StoreKind,
    configured_kind,
)
from sli_provider.ports.querier import (
    PrometheusError,
    PrometheusUnavailable,
    QueryFailed,
    QueryRejected,
    QueryTimeout,
)
from sli_provider.ports.store_info import UNKNOWN_STORE, StoreInfo, identify
from sli_provider.ports.store_info import VICTORIAMETRICS as VICTORIAMETRICS_NAME

log = logging.getLogger(__name__)

# Identifying the store only decorates a preview: it must never hold one up for long.
STORE_INFO_TIMEOUT = 2.0
STORE_KIND_RETRY_SECONDS = 60.0
# The CLI's gate makes several clients of one URL in a run (pre-flight, run-series check, evaluation).
_ANNOUNCED_STORES: set[str] = set()


class _HTTPStatusError(PrometheusError):
    """An answer other than 200, with what Prometheus said about it."""

    def __init__(self, status: int, error_type: str, error: str, retry_after: str | None) -> None:
        super().__init__(f"HTTP {status} {error_type}: {error}".strip())
        self.status = status
        self.error_type = error_type
        self.error = error
        self.retry_after = retry_after


def _status_error(status: int, body: bytes, headers: Mapping[str, str]) -> _HTTPStatusError:
    text = body.decode("utf-8", "replace")
    error_type, error = "", text[:500]
    try:
        parsed = json.loads(text)
        error_type, error = str(parsed.get("errorType", "")), str(parsed.get("error", error))
    except (ValueError, AttributeError):
        pass
    return _HTTPStatusError(status, error_type, error, headers.get("Retry-After"))


def _retry_after(error: BaseException) -> float | None:
    """Seconds from a Retry-After header (the delta form; an HTTP date is left to backoff)."""
    if isinstance(error, _HTTPStatusError) and error.retry_after:
        try:
            return max(0.0, float(error.retry_after))
        except ValueError:
            return None
    return None


def _transient(error: BaseException) -> bool:
    """A 5xx or 429, or a connection that could not be made or broke off; never a TLS failure,
    which the next try would meet again."""
    if isinstance(error, _HTTPStatusError):
        return error.status >= 500 or error.status == 429
    if _is_tls_failure(error):
        return False
    return isinstance(error, aiohttp.ClientConnectionError) and not isinstance(
        error, aiohttp.ServerTimeoutError
    )


def _is_tls_failure(error: BaseException) -> bool:
    """A failed handshake, or one the server ended with an alert at the first read (a missing
    or refused client certificate under TLS 1.3), which aiohttp reports as an OS error."""
    if isinstance(error, aiohttp.ClientSSLError | aiohttp.ServerFingerprintMismatch):
        return True
    return any(isinstance(cause, ssl.SSLError) for cause in _causes(error))


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what lies under it, outermost first: an error held by an attribute
    (urllib3-style ``reason``) or an argument (aiohttp's ``os_error``), else its cause or
    context; each once."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        inner = getattr(current, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in current.args if isinstance(a, BaseException)), None)
        current = inner or current.__cause__ or current.__context__


class PrometheusClient:
    """Instant queries and store questions to one Prometheus, over one aiohttp session made on
    first use (in the running loop) and closed by :meth:`aclose`."""

    def __init__(
        self,
        url: str,
        *,
        concurrency: int,
        timeout: float,
        attempts: int,
        max_wait: float,
        connection: Connection | None = None,
        on_retry: Callable[[BaseException, int], None] | None = None,
        store: str = "prometheus",
    ) -> None:
        self._url = url.rstrip("/")
        self._store = configured_kind(store)  # None until asked (METRICS_STORE=auto)
        self._asking_store = asyncio.Lock()
        self._store_asked_again_at = 0.0
        self._shown_url = display_url(self._url)
        self._origin = origin_of(self._url)
        self._timeout = timeout
        self._attempts = attempts
        self._max_wait = max_wait
        self._on_retry = on_retry
        self._connection = connection or Connection()
        # The query concurrency, and room for the store questions and /ready beside it.
        self._connection_limit = concurrency + 2
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._store_info: StoreInfo | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("PrometheusClient is closed")
        if self._session is None:
            try:
                tls = self._connection.tls.context()
            except (ssl.SSLError, OSError) as exc:
                raise PrometheusUnavailable(
                    f"the TLS settings for {self._origin} cannot be used: {connection_reason(exc)}"
                ) from None
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connection_limit, ssl=tls)
            )
        return self._session

    async def _get(self, path: str, params: Mapping[str, str], timeout: float) -> Any:
        """The JSON body of a 200 answer to GET ``path``; ``_HTTPStatusError`` for any other."""
        async with self._http().get(
            self._url + path,
            params=params,
            headers=self._connection.request_headers(),
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            body = await response.read()
            if response.status != 200:
                raise _status_error(response.status, body, response.headers)
        return json.loads(body)

    async def instant(self, query: str, at: float) -> Any:
        # ``timeout`` is the deadline of the whole query, retries included: each try gets what
        # is left, so a query never takes tries times timeout.
        deadline = Deadline(self._timeout)
        store = await self.store_kind()

        async def attempt() -> Any:
            left = max(deadline.remaining(), 0.001)
            # Prometheus' durations take integer units: "9.5s" is refused, "9500ms" is not.
            params = {
                "query": query,
                "time": f"{at:.3f}",
                "timeout": f"{max(1, int(left * 1000))}ms",
                **store.query_params,
            }
            return (await self._get("/api/v1/query", params, left))["data"]["result"]

        try:
            return await with_retries(
                attempt,
                attempts=self._attempts,
                max_wait=self._max_wait,
                retryable=_transient,
                deadline=deadline,
                on_retry=self._on_retry,
                server_wait=_retry_after,
            )
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise QueryTimeout(
                f"no answer from Prometheus within {self._timeout:g} s (retries included)"
            ) from None
        except _HTTPStatusError as exc:
            raise self._classify(exc) from None
        except aiohttp.ClientConnectorError as exc:
            if _is_tls_failure(exc):
                raise self._tls_failure(exc) from None
            raise PrometheusUnavailable(
                f"Prometheus at {self._origin} is unreachable (retried for up to "
                f"{self._timeout:g} s, {self._attempts} tries): {connection_reason(exc)}"
            ) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise QueryFailed(
                f"Prometheus answered something that is not a query result: {exc}"
            ) from None
        except aiohttp.ClientError as exc:  # the answer broke off (connection reset, bad chunk)
            if _is_tls_failure(exc):
                raise self._tls_failure(exc) from None
            raise QueryFailed(f"Prometheus' answer broke off: {connection_reason(exc)}") from None

    def _tls_failure(self, exc: BaseException) -> PrometheusUnavailable:
        return PrometheusUnavailable(
            f"TLS failure talking to {self._origin}: {connection_reason(exc)}"
        )

    def _classify(self, exc: _HTTPStatusError) -> PrometheusError:
        if exc.status in (401, 403):
            return PrometheusUnavailable(
                f"Prometheus at {self._shown_url} refused the credentials (HTTP {exc.status})"
            )
        if exc.status == 503 and exc.error_type == "timeout":
            return QueryTimeout(f"Prometheus gave up on the query: {exc.error}")
        if exc.status >= 500 or exc.status == 429:
            return QueryFailed(
                f"Prometheus failed (retried for up to {self._timeout:g} s, {self._attempts} "
                f"tries): {exc}"
            )
        if not exc.error_type:
            # Prometheus explains a bad query with an errorType; a bare 4xx means the URL does
            # not lead to Prometheus' API (wrong path, http to an https port, a proxy's error).
            return PrometheusUnavailable(
                f"{self._shown_url} does not answer like Prometheus' API: HTTP {exc.status} "
                f"{exc.error.strip()[:200]}"
            )
        return QueryRejected(
            f"Prometheus rejected the query ({exc.error_type or exc.status}): {exc.error}"
        )

    async def store_kind(self) -> StoreKind:
        if self._store is not None:
            return self._store
        async with self._asking_store:  # the first queries come together: ask once
            return self._store or await self._ask_store_kind()

    async def _ask_store_kind(self) -> StoreKind:
        if time.monotonic() < self._store_asked_again_at:
            return PROMETHEUS
        info = await self.store_info()
        if not info.known:
            # Unreachable, or a store that answers neither question: plain PromQL, and asked
            # again a minute later rather than before every query.
            self._store_asked_again_at = time.monotonic() + STORE_KIND_RETRY_SECONDS
            return PROMETHEUS
        kind = VICTORIAMETRICS if info.name == VICTORIAMETRICS_NAME else PROMETHEUS
        if self._shown_url not in _ANNOUNCED_STORES:  # once per process, not once per client
            _ANNOUNCED_STORES.add(self._shown_url)
            log.info("metrics store at %s: %s", self._shown_url, info.describe())
        self._store = kind
        return kind

    async def store_info(self) -> StoreInfo:
        """Asked once per client (two GETs, each within ``STORE_INFO_TIMEOUT``) and kept once the
        store is identified; until then (unreachable, 5xx, a gateway that routes neither
        endpoint) ``UNKNOWN_STORE``, and asked again next time."""
        if self._store_info is not None:
            return self._store_info
        timeout = min(self._timeout, STORE_INFO_TIMEOUT)

        async def get(path: str, params: Mapping[str, str]) -> Any:
            try:
                return await self._get(path, params, timeout)
            except (_HTTPStatusError, ValueError):
                return None  # answered, just not this

        try:
            buildinfo = await get("/api/v1/status/buildinfo", {})
            traced = await get("/api/v1/query", {"query": "1", "trace": "1"})
        except (aiohttp.ClientError, TimeoutError, PrometheusUnavailable, RuntimeError) as exc:
            log.debug("store info of %s unavailable: %s", self._shown_url, connection_reason(exc))
            return UNKNOWN_STORE
        info = identify(buildinfo, traced)
        if info.known:
            self._store_info = info
        return info

    async def ready(self) -> bool:
        # The query API itself, not Prometheus' /-/ready: the scale-out stores serve their API
        # under a path (VictoriaMetrics' /prometheus, /select/<tenant>/prometheus, Mimir's
        # /prometheus) where /-/ready does not exist; Prometheus answers its API with 503 until
        # it is ready, as /-/ready does.
        try:
            await self._get("/api/v1/query", {"query": "1"}, self._timeout)
        # PrometheusUnavailable: TLS settings that cannot be loaded.
        except (
            _HTTPStatusError,
            PrometheusUnavailable,
            ValueError,
            aiohttp.ClientError,
            TimeoutError,
        ):
            return False
        return True

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._session is not None:
            await self._session.close()


def connection_reason(exc: BaseException) -> str:
    """Why a connection failed, without the request: an HTTP client's own message may repeat the
    request's URL and query string (the PromQL, whose label values the user may not want in an
    event).

    The deepest error in the chain that says why (``Connection refused``, ``Name or service not
    known``, a TLS verification failure), else the name of the deepest error's type.
    """
    deepest = exc
    reason = ""
    for current in _causes(exc):
        deepest = current
        if isinstance(current, ssl.SSLError):
            reason = current.strerror or str(current.reason or "") or reason
        elif isinstance(current, OSError) and current.errno and current.errno > 0:
            # asyncio's "Connect call failed ('127.0.0.1', 9)" names the address, not the cause.
            reason = os.strerror(current.errno)
        elif isinstance(current, OSError) and current.strerror:
            reason = current.strerror  # getaddrinfo's "Name or service not known"
    return (reason or type(deepest).__name__)[:300]


def _host_port(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # IPv6
    if parts.port:
        host += f":{parts.port}"
    return parts.scheme, host


def origin_of(url: str) -> str:
    """``scheme://host:port`` of ``url``: no credentials, path or query string, for messages
    about reaching the server at all."""
    scheme, host = _host_port(url)
    return f"{scheme}://{host}"


def display_url(url: str) -> str:
    """The URL without userinfo or query string (where tokens go), for messages and logs."""
    parts = urlsplit(url)
    scheme, host = _host_port(url)
    return urlunsplit((scheme, host, parts.path, "", ""))
