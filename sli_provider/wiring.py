"""How the parts are put together, for every front end: the web app and the CLI's commands.

What the settings point to (PROMETHEUS_PROJECTS_FILE and the credential files it names, the
built-in SLI templates) is read once, at the edge, by :func:`load_configuration`; the factories
below take the resulting :class:`Configuration` and read nothing from disk themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from sli_provider.adapters import store_info
from sli_provider.adapters.jetstream import JetStreamBus
from sli_provider.adapters.journal import KvJournal, bucket_name
from sli_provider.adapters.keptn_api import KeptnResourceReader, LocalResourceReader, ResourceReader
from sli_provider.adapters.nats_bus import Admission, NatsBus
from sli_provider.adapters.prometheus import PrometheusClient
from sli_provider.adapters.prometheus_access import (
    PrometheusAccess,
    PrometheusTargets,
    load_prometheus_targets,
)
from sli_provider.adapters.prometheus_router import PrometheusRouter
from sli_provider.config import ConfigError, Settings
from sli_provider.keptn.envelope import KeptnEvent
from sli_provider.runner.binaries import K6Registry, configured_paths
from sli_provider.runner.local import find_k6_binary
from sli_provider.service.dispatch import SUBSCRIBED_TYPES
from sli_provider.service.evaluation import MeasuredIndicator, SLIEvaluator
from sli_provider.service.metrics import ServiceMetrics
from sli_provider.sli.builtin import load_builtin_templates
from sli_provider.sli.config import IndicatorSpec, SLIConfigError
from sli_provider.sli.local_file import WorkingDirectorySLIFile
from sli_provider.sli.window import SLIWindow


@dataclass(frozen=True)
class Configuration:
    """The settings and what they point to, read once per process."""

    settings: Settings
    prometheus: PrometheusTargets
    builtins: Mapping[str, IndicatorSpec]
    # The probed k6 binaries; None where this process runs no k6 (evaluate, preview).
    k6: K6Registry | None = None
    # The CLI outside Keptn: this one sli.yaml instead of Keptn's resources (sli/local_file.py).
    local_sli_file: Path | None = None


def load_configuration(settings: Settings, *, k6: bool | None = None) -> Configuration:
    """Read every file the settings name; a ConfigError says which setting is wrong.

    ``k6``: whether this process runs k6 (default: when the service's runner is enabled), so
    the k6 binaries are asked what they are now, at start-up, rather than at the first run.
    """
    runs_k6 = settings.runner_enabled if k6 is None else k6
    return Configuration(
        settings,
        load_prometheus_targets(settings),
        _builtins(settings),
        load_k6_registry(settings) if runs_k6 else None,
    )


def load_k6_registry(settings: Settings) -> K6Registry:
    """K6_BINARY (or the k6 found beside Python / on PATH) as ``default``, then K6_BINARIES."""
    try:
        default: str | None = find_k6_binary(settings.k6_binary)
    except FileNotFoundError as exc:
        if not settings.k6_binaries:
            raise ConfigError(str(exc)) from None
        default = None  # the configured builds are enough
    return K6Registry.probe_all(configured_paths(default, settings.k6_binaries))


def _builtins(settings: Settings) -> dict[str, IndicatorSpec]:
    where = "SLI_TEMPLATES_DIR" if settings.templates_dir else "built-in SLI templates"
    try:
        return load_builtin_templates(settings.templates_dir)
    except SLIConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {exc.filename}: {exc.strerror or exc}") from None


def make_prometheus(configuration: Configuration, metrics: ServiceMetrics) -> PrometheusRouter:
    """A client for the default Prometheus and for each project's own, made on first use."""
    settings = configuration.settings

    def client(access: PrometheusAccess) -> PrometheusClient:
        return PrometheusClient(
            access.url,
            session=access.session(),
            concurrency=settings.query_concurrency,
            timeout=settings.query_timeout_seconds,
            attempts=settings.query_attempts,
            max_wait=settings.retry_max_wait_seconds,
            on_retry=lambda _error, _attempt: metrics.retries.labels("prometheus").inc(),
            store=settings.metrics_store,
        )

    return PrometheusRouter(configuration.prometheus, client)


def make_resources(settings: Settings, session: aiohttp.ClientSession) -> ResourceReader:
    """Keptn's resource service, or the local directory in local mode."""
    if settings.sli_config_dir is not None:
        return LocalResourceReader(settings.sli_config_dir)
    return KeptnResourceReader(
        session,
        settings.resources_url,
        token=settings.keptn_api_token.reveal() if settings.keptn_api_token else None,
        timeout=settings.http_timeout_seconds,
        attempts=settings.reply_attempts,
        max_wait=settings.retry_max_wait_seconds,
    )


def make_evaluator(
    configuration: Configuration,
    *,
    session: aiohttp.ClientSession,
    prometheus: PrometheusRouter,
    metrics: ServiceMetrics,
) -> SLIEvaluator:
    """The SLI pipeline: the service's get-sli and /preview, the CLI's preview and gate."""
    settings = configuration.settings
    resources: ResourceReader = (
        make_resources(settings, session)
        if configuration.local_sli_file is None
        else WorkingDirectorySLIFile(configuration.local_sli_file)
    )
    return SLIEvaluator(
        resources=resources,
        resource_uri=settings.sli_resource,
        prometheus=prometheus,
        builtins=configuration.builtins,
        concurrency=settings.query_concurrency,
        metrics=metrics,
        freshness_wait_seconds=settings.freshness_wait_seconds,
    )


async def preview_once(
    configuration: Configuration, window: SLIWindow
) -> tuple[list[MeasuredIndicator], store_info.StoreInfo]:
    """``evaluate_once`` and which store answered the window's project (``UNKNOWN_STORE`` when
    it cannot be told)."""
    results = await evaluate_once(configuration, window)
    prometheus = make_prometheus(configuration, ServiceMetrics())
    try:
        return results, await prometheus.for_project(window.project).store_info()
    finally:
        await prometheus.aclose()


async def evaluate_once(configuration: Configuration, window: SLIWindow) -> list[MeasuredIndicator]:
    """One evaluation outside the service, with clients made and closed around it."""
    metrics = ServiceMetrics()
    prometheus = make_prometheus(configuration, metrics)
    try:
        async with aiohttp.ClientSession() as session:
            evaluator = make_evaluator(
                configuration, session=session, prometheus=prometheus, metrics=metrics
            )
            return await evaluator.evaluate(window)
    finally:
        await prometheus.aclose()


@dataclass(frozen=True)
class NatsIngress:
    """The NATS side of the service: the bus, and in jetstream mode the journal that keeps
    replies single across replicas and redeliveries."""

    bus: NatsBus
    journal: KvJournal | None


def make_nats(
    settings: Settings,
    metrics: ServiceMetrics,
    *,
    on_event: Callable[[KeptnEvent], Awaitable[Admission]],
    on_malformed: Callable[[str], object],
) -> NatsIngress:
    """NATS_DELIVERY chooses the ingress here, and only here."""
    if not settings.nats_url:
        raise ConfigError("NATS_URL is not set")
    group = settings.nats_queue_group or settings.sli_provider
    common: dict[str, Any] = {
        "queue_group": group,
        "subjects": SUBSCRIBED_TYPES,
        "on_event": on_event,
        "on_malformed": on_malformed,
        "timeout": settings.nats_timeout_seconds,
        "attempts": settings.reply_attempts,
        "max_wait": settings.retry_max_wait_seconds,
    }
    if settings.nats_delivery == "core":
        return NatsIngress(NatsBus(settings.nats_url, **common), None)
    journal = KvJournal(
        bucket_name(group),
        ttl=settings.journal_ttl_seconds,
        timeout=settings.nats_timeout_seconds,
        on_recovery=metrics.journal_recoveries.inc,
    )
    bus = JetStreamBus(
        settings.nats_url,
        journal=journal,
        ack_wait=settings.nats_ack_wait_seconds,
        on_redelivery=metrics.redeliveries.inc,
        on_pending=lambda consumer, count: metrics.consumer_pending.labels(consumer).set(count),
        **common,
    )
    return NatsIngress(bus, journal)
