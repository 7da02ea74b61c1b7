"""What ``sli-provider run`` checks before k6 starts: a problem found after a 30-minute test
is found too late.

* Prometheus answers a query (with the project's credentials);
* its remote-write receiver exists: an empty snappy body is POSTed, which a receiver refuses
  with 400 (``snappy: corrupt input``, nothing written) and a Prometheus without
  ``--web.enable-remote-write-receiver`` answers with 404;
* sli.yaml (every level the scope reads) and slo.yaml parse;
* the history database opens, checked last: opening a missing one creates it, which a run that
  stops at an earlier check must not leave behind.
"""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp

from sli_provider.adapters.history_store import HistoryError, HistoryStore
from sli_provider.adapters.prometheus import (
    connection_reason,
    display_url,
    origin_of,
)
from sli_provider.adapters.prometheus_access import PrometheusAccess
from sli_provider.errors import SliProviderError
from sli_provider.gate.slo import SLOParseError, parse_slo
from sli_provider.metrics import ServiceMetrics
from sli_provider.pipeline.evaluation import ProviderUnavailable
from sli_provider.ports.querier import PrometheusError
from sli_provider.wiring import Configuration, make_evaluator, make_prometheus

_EMPTY_WRITE_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


class PreflightError(SliProviderError):
    """``run`` would fail after k6; the message says what to fix first."""


def check_slo_text(text: str) -> None:
    try:
        parse_slo(text)
    except SLOParseError as exc:
        raise PreflightError(f"slo.yaml cannot be read: {exc}") from None


def check_history(path: Path) -> None:
    try:
        with HistoryStore(path):
            pass
    except (HistoryError, OSError) as exc:
        raise PreflightError(f"the history cannot be opened: {exc}") from None


async def check_services(
    configuration: Configuration, project: str, stage: str, service: str
) -> None:
    """Prometheus answers and accepts remote write; the scope's sli.yaml files parse."""
    metrics = ServiceMetrics()
    prometheus = make_prometheus(configuration, metrics)
    access = prometheus.access_for(project)
    try:
        try:
            await prometheus.for_project(project).instant("vector(1)", time.time())
        except PrometheusError as exc:
            raise PreflightError(
                f"Prometheus ({origin_of(access.url)}) does not answer: {exc}"
            ) from None
        await check_remote_write(access, configuration.settings.http_timeout_seconds)
        async with aiohttp.ClientSession() as session:
            evaluator = make_evaluator(
                configuration, session=session, prometheus=prometheus, metrics=metrics
            )
            try:
                await evaluator.load_config(project, stage, service, "")
            except ProviderUnavailable as exc:
                raise PreflightError(str(exc)) from None
    finally:
        await prometheus.aclose()


async def check_remote_write(access: PrometheusAccess, timeout: float) -> None:
    url = access.remote_write_target().url
    shown = display_url(url)

    connection = access.connection()
    try:
        tls = connection.tls.context()
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as session,
            session.post(
                url,
                data=b"",
                headers={**connection.request_headers(), **_EMPTY_WRITE_HEADERS},
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response,
        ):
            status = response.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:  # ssl.SSLError is an OSError
        raise PreflightError(f"k6 could not write to {shown}: {connection_reason(exc)}") from None
    if status == 404:
        raise PreflightError(
            f"Prometheus does not accept remote write at {shown} (404): start it with "
            "--web.enable-remote-write-receiver, or set PROMETHEUS_REMOTE_WRITE_URL"
        )
    if status in (401, 403):
        raise PreflightError(f"Prometheus refused k6's credentials at {shown} (HTTP {status})")
    if status >= 500:
        raise PreflightError(f"remote write at {shown} answers HTTP {status}")
