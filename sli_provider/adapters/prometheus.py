"""Prometheus behind one small interface, on top of prometheus-api-client (the user's choice).

prometheus-api-client is synchronous (requests), so queries run on a thread pool owned by this
adapter and sized to the query concurrency. Its own urllib3 retries are switched off: retries
are ours (tenacity), so they are counted, bounded and never applied to 400 bad_data.

Error tree::

    PrometheusError
    ├── QueryRejected         4xx other than 401/403/429: the query itself is wrong (bad_data)
    ├── QueryTimeout          no answer within the query deadline
    ├── QueryFailed           5xx/429 that outlived the retries
    └── PrometheusUnavailable the provider cannot work: unreachable, TLS or auth failure
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import requests
from prometheus_api_client import PrometheusConnect
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from sli_provider.adapters.daemon_pool import DaemonThreadPool
from sli_provider.adapters.metrics_store import (
    PROMETHEUS,
    VICTORIAMETRICS,
    StoreKind,
    configured_kind,
)
from sli_provider.adapters.retry import Deadline, with_retries
from sli_provider.adapters.store_info import UNKNOWN_STORE, StoreInfo, identify
from sli_provider.adapters.store_info import VICTORIAMETRICS as VICTORIAMETRICS_NAME
from sli_provider.errors import SliProviderError

log = logging.getLogger(__name__)

# Identifying the store only decorates a preview: it must never hold one up for long.
STORE_INFO_TIMEOUT = 2.0
STORE_KIND_RETRY_SECONDS = 60.0


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


class _HTTPStatusError(PrometheusError):
    """Raised from the response hook so the status survives prometheus-api-client."""

    def __init__(self, status: int, error_type: str, error: str, retry_after: str | None) -> None:
        super().__init__(f"HTTP {status} {error_type}: {error}".strip())
        self.status = status
        self.error_type = error_type
        self.error = error
        self.retry_after = retry_after


def _raise_for_prometheus_status(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    if response.status_code == 200:
        return
    error_type, error = "", response.text[:500]
    try:
        body = response.json()
        error_type, error = str(body.get("errorType", "")), str(body.get("error", error))
    except (ValueError, AttributeError):
        pass
    raise _HTTPStatusError(
        response.status_code, error_type, error, response.headers.get("Retry-After")
    )


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


def _retry_after(error: BaseException) -> float | None:
    """Seconds from a Retry-After header (the delta form; an HTTP date is left to backoff)."""
    if isinstance(error, _HTTPStatusError) and error.retry_after:
        try:
            return max(0.0, float(error.retry_after))
        except ValueError:
            return None
    return None


def _transient(error: BaseException) -> bool:
    if isinstance(error, _HTTPStatusError):
        return error.status >= 500 or error.status == 429
    return isinstance(error, requests.ConnectionError) and not isinstance(
        error, requests.exceptions.SSLError
    )


class PrometheusClient:
    """An async facade over one PrometheusConnect, with its own pool of worker threads."""

    def __init__(
        self,
        url: str,
        *,
        concurrency: int,
        timeout: float,
        attempts: int,
        max_wait: float,
        session: requests.Session | None = None,
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
        self._session = session or requests.Session()
        self._session.hooks["response"].append(_raise_for_prometheus_status)
        _read_environment_once(self._session)
        no_retries = Retry(total=0, raise_on_status=False)
        adapter = HTTPAdapter(max_retries=no_retries, pool_maxsize=concurrency + 2)
        self._client = PrometheusConnect(
            url=self._url, session=self._session, retry=no_retries, timeout=timeout
        )
        # PrometheusConnect mounts its own adapter for the URL; ours sizes the pool to match.
        self._session.mount(self._url, adapter)
        self._pool = DaemonThreadPool(max_workers=concurrency, thread_name_prefix="prometheus")
        self._closed = False
        self._store_info: StoreInfo | None = None

    async def _in_thread(self, call: Callable[[], Any]) -> Any:
        if self._closed:
            raise RuntimeError("PrometheusClient is closed")
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def instant(self, query: str, at: float) -> Any:
        # ``timeout`` is the deadline of the whole query, retries included: each try gets what
        # is left, so a query never takes tries times timeout (issue 14).
        deadline = Deadline(self._timeout)
        store = await self.store_kind()

        def call() -> Any:
            # Measured when the try starts in its thread, so time spent queued counts too.
            left = max(deadline.remaining(), 0.001)
            # Prometheus' durations take integer units: "9.5s" is refused, "9500ms" is not.
            params = {"time": f"{at:.3f}", "timeout": f"{max(1, int(left * 1000))}ms"}
            params.update(store.query_params)
            return self._client.custom_query(query=query, params=params, timeout=left)

        try:
            return await with_retries(
                lambda: self._in_thread(call),
                attempts=self._attempts,
                max_wait=self._max_wait,
                retryable=_transient,
                deadline=deadline,
                on_retry=self._on_retry,
                server_wait=_retry_after,
            )
        except TimeoutError:
            raise QueryTimeout(
                f"no answer from Prometheus within {self._timeout:g} s (retries included)"
            ) from None
        except _HTTPStatusError as exc:
            raise self._classify(exc) from None
        except requests.exceptions.SSLError as exc:
            raise PrometheusUnavailable(
                f"TLS failure talking to {self._origin}: {_connection_reason(exc)}"
            ) from None
        except requests.Timeout:
            raise QueryTimeout(
                f"no answer from Prometheus within {self._timeout:g} s (retries included)"
            ) from None
        except requests.ConnectionError as exc:
            raise PrometheusUnavailable(
                f"Prometheus at {self._origin} is unreachable (retried for up to "
                f"{self._timeout:g} s, {self._attempts} tries): {_connection_reason(exc)}"
            ) from None
        except (ValueError, KeyError) as exc:
            raise QueryFailed(
                f"Prometheus answered something that is not a query result: {exc}"
            ) from None
        except requests.RequestException as exc:  # the answer broke off (connection reset)
            raise QueryFailed(f"Prometheus' answer broke off: {_connection_reason(exc)}") from None

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

        def get(path: str, params: dict[str, str]) -> Any:
            try:
                response = self._session.get(self._url + path, params=params, timeout=timeout)
            except _HTTPStatusError:
                return None  # answered, just not this
            try:
                return response.json()
            except ValueError:
                return None

        try:
            buildinfo = await self._in_thread(lambda: get("/api/v1/status/buildinfo", {}))
            traced = await self._in_thread(
                lambda: get("/api/v1/query", {"query": "1", "trace": "1"})
            )
        except (requests.RequestException, RuntimeError) as exc:
            log.debug("store info of %s unavailable: %s", self._shown_url, _connection_reason(exc))
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
        def call() -> bool:
            try:
                response = self._session.get(
                    f"{self._url}/api/v1/query", params={"query": "1"}, timeout=self._timeout
                )
            except _HTTPStatusError:
                return False
            return response.status_code == 200

        try:
            return bool(await self._in_thread(call))
        except requests.RequestException:
            return False

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        # A thread blocked inside requests cannot be interrupted; it ends at the query timeout.
        # Waiting for it here would hold shutdown hostage, so queued work is dropped instead.
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._session.close()


_MERGED_SETTINGS_KEPT = 64


def _read_environment_once(session: requests.Session) -> None:
    """Keep what requests derives from the environment (proxy variables, CA bundle) per origin.

    requests reads every proxy variable from ``os.environ`` twice on each request: 0.45 ms of the
    ~1.2 ms a trivial query costs in the thread (bench/README.md). The process's environment does
    not change while it runs, so the result is the same each time; it is kept per origin and per
    request and session setting that goes into it, so any of those changing still counts.
    """
    merge = session.merge_environment_settings
    kept: dict[tuple[str, ...], dict[str, Any]] = {}

    def merged(url: str, proxies: Any, stream: Any, verify: Any, cert: Any) -> dict[str, Any]:
        parts = urlsplit(url)
        key = tuple(
            repr(part)
            for part in (
                parts.scheme, parts.netloc, sorted((proxies or {}).items()), stream, verify, cert,
                session.trust_env, sorted(session.proxies.items()), session.stream,
                session.verify, session.cert,
            )
        )  # fmt: skip
        settings = kept.get(key)  # one read: another worker thread may clear it meanwhile
        if settings is None:
            settings = {**merge(url, dict(proxies or {}), stream, verify, cert)}
            if len(kept) >= _MERGED_SETTINGS_KEPT:
                kept.clear()
            kept[key] = settings
        return dict(settings)

    setattr(session, "merge_environment_settings", merged)  # noqa: B010 (mypy: no method assignment)


def _connection_reason(exc: BaseException) -> str:
    """Why a connection failed, without the request: requests' own message repeats the request's
    path and query string (the PromQL, whose label values the user may not want in an event).

    The deepest error in the chain that says why (``Connection refused``, ``Name or service not
    known``, a TLS verification failure), else the name of the deepest error's type.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    deepest = exc
    reason = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        deepest = current
        if isinstance(current, OSError) and current.strerror:
            reason = current.strerror
        elif isinstance(current, ssl.SSLError) and current.reason:
            reason = str(current.reason)
        inner = getattr(current, "reason", None)  # urllib3's MaxRetryError and its kin
        if not isinstance(inner, BaseException):
            inner = next((a for a in current.args if isinstance(a, BaseException)), None)
        current = inner or current.__cause__ or current.__context__
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
