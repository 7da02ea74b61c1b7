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

from sli_provider.adapters.gate_history import (
    GateHistory,
    KvGateHistory,
    SqliteGateHistory,
    kv_bucket_name,
)
from sli_provider.adapters.jetstream import JetStreamBus
from sli_provider.adapters.journal import KvJournal, bucket_name
from sli_provider.adapters.keptn_api import KeptnResourceReader, LocalResourceReader
from sli_provider.adapters.nats_bus import Admission, NatsBus
from sli_provider.adapters.prometheus import PrometheusClient
from sli_provider.adapters.prometheus_access import (
    PrometheusAccess,
    PrometheusTargets,
    load_prometheus_targets,
)
from sli_provider.adapters.prometheus_router import PrometheusRouter
from sli_provider.adapters.sqlite_journal import SqliteJournal
from sli_provider.config import ConfigError, Settings
from sli_provider.keptn.envelope import KeptnEvent
from sli_provider.keptn.subscriptions import SUBSCRIBED_TYPES
from sli_provider.metrics import ServiceMetrics
from sli_provider.pipeline.evaluation import MeasuredIndicator, SLIEvaluator
from sli_provider.ports import store_info
from sli_provider.ports.resources import ResourceReader
from sli_provider.runner.backend import RunnerBackend
from sli_provider.runner.binaries import K6Registry, configured_paths
from sli_provider.runner.choice import ExecutorBackends
from sli_provider.runner.k6_operator.backend import K6OperatorBackend, StoreFor
from sli_provider.runner.k6_operator.kube import KubeError, connect
from sli_provider.runner.k6_operator.manifests import OperatorSettings
from sli_provider.runner.local import LocalK6Backend, find_k6_binary
from sli_provider.sli.builtin import load_builtin_templates
from sli_provider.sli.config import IndicatorSpec, SLIConfigError
from sli_provider.sli.local_file import WorkingDirectoryFiles
from sli_provider.sli.window import SLIWindow


@dataclass(frozen=True)
class Configuration:
    """The settings and what they point to, read once per process."""

    settings: Settings
    prometheus: PrometheusTargets
    builtins: Mapping[str, IndicatorSpec]
    # The probed k6 binaries; None where this process runs no k6 (evaluate, preview).
    k6: K6Registry | None = None
    # Outside Keptn: this directory's k6/sli.yaml and slo.yaml for every scope instead of
    # Keptn's resources (sli/local_file.py).
    local_dir: Path | None = None


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


def make_k6_operator(
    settings: Settings, store: StoreFor, k6: K6Registry | None = None
) -> K6OperatorBackend | None:
    """The k6-operator back-end when K6_OPERATOR_ENABLED; its client is made (and its
    kubeconfig read) now, so a wrong one stops the service at start-up. ``store``: where a
    project's k6 metrics are read, to judge a run's thresholds on the whole test."""
    if not settings.k6_operator_enabled:
        return None
    try:
        api = connect(settings.k6_operator_kubeconfig, settings.k6_operator_namespace)
    except KubeError as exc:
        raise ConfigError(f"K6_OPERATOR_KUBECONFIG: {exc}") from None
    return K6OperatorBackend(
        api,
        OperatorSettings(
            namespace=settings.k6_operator_namespace or api.namespace,
            runner_image=settings.k6_operator_runner_image,
            remote_write_secret=settings.k6_operator_remote_write_secret,
            replica=settings.k6_operator_replica,
        ),
        store=store,
        k6=_archiving_k6(settings, k6),
        binaries=k6,
    )


def _archiving_k6(settings: Settings, k6: K6Registry | None) -> str:
    """The k6 that inspects and archives scripts for TestRuns: the configured default (listed
    first); a script with extensions gets one of the binaries that has them."""
    if k6 is not None and k6.binaries:
        return k6.binaries[0].path
    try:
        return find_k6_binary(settings.k6_binary)
    except FileNotFoundError:
        return "k6"  # archiving then fails with a clear K6StartError; plain runs do not need it


def make_runner_backend(
    configuration: Configuration,
    *,
    k6_operator: K6OperatorBackend | None,
    on_line: Callable[[str], None] | None = None,
) -> RunnerBackend:
    """Each plan's executor chooses between these two, in runner/choice.py only."""
    settings = configuration.settings
    local = LocalK6Backend(
        binaries=configuration.k6,
        auto_extension_resolution=settings.k6_auto_extension_resolution,
        work_dir=settings.runner_work_dir,
        on_line=on_line,
    )
    return ExecutorBackends(local, k6_operator)


def make_prometheus(configuration: Configuration, metrics: ServiceMetrics) -> PrometheusRouter:
    """A client for the default Prometheus and for each project's own, made on first use."""
    settings = configuration.settings

    def client(access: PrometheusAccess) -> PrometheusClient:
        return PrometheusClient(
            access.url,
            connection=access.connection(),
            concurrency=settings.query_concurrency,
            timeout=settings.query_timeout_seconds,
            attempts=settings.query_attempts,
            max_wait=settings.retry_max_wait_seconds,
            on_retry=lambda _error, _attempt: metrics.retries.labels("prometheus").inc(),
            store=settings.metrics_store,
        )

    return PrometheusRouter(configuration.prometheus, client)


def make_config_reader(
    configuration: Configuration, session: aiohttp.ClientSession
) -> ResourceReader:
    """Where sli.yaml and slo.yaml are read, chosen here only: the working directory outside
    Keptn, SLI_CONFIG_DIR's layout, or Keptn's resource service."""
    if configuration.local_dir is not None:
        return WorkingDirectoryFiles(configuration.local_dir, configuration.settings.sli_resource)
    return make_resources(configuration.settings, session)


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
    return SLIEvaluator(
        resources=make_config_reader(configuration, session),
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


def make_gate_history(settings: Settings) -> GateHistory:
    """Where /gate's history lives, chosen here only: with NATS_URL and jetstream delivery a
    key-value bucket on that NATS, shared by the replicas; else the SQLite file GATE_HISTORY."""
    if settings.nats_url and settings.nats_delivery == "jetstream":
        group = settings.nats_queue_group or settings.sli_provider
        return KvGateHistory(
            settings.nats_url, kv_bucket_name(group), timeout=settings.nats_timeout_seconds
        )
    return SqliteGateHistory(settings.gate_history)


# A journal transaction on a local volume takes milliseconds; past this the disk is in trouble.
SQLITE_JOURNAL_TIMEOUT = 5.0

# Either one does what the service needs of a journal: start, record, resume (unfinished), aclose.
Journal = KvJournal | SqliteJournal


def make_journal(settings: Settings, metrics: ServiceMetrics) -> Journal | None:
    """Which journal keeps replies single, chosen here only.

    NATS_DELIVERY=jetstream: the replicas' shared JetStream key-value bucket (also for events
    that arrive over HTTP beside NATS). Otherwise (HTTP, core NATS) the SQLite file JOURNAL_PATH
    when it is set. None: the dispatcher's in-memory RecentIds, which forgets at exit. Both
    (jetstream and JOURNAL_PATH) is refused by Settings.validate: one journal per service.
    """
    if settings.nats_url and settings.nats_delivery == "jetstream":
        return KvJournal(
            bucket_name(settings.nats_queue_group or settings.sli_provider),
            ttl=settings.journal_ttl_seconds,
            timeout=settings.nats_timeout_seconds,
            on_recovery=metrics.journal_recoveries.inc,
        )
    if settings.journal_path is not None:
        return SqliteJournal(
            settings.journal_path, ttl=settings.journal_ttl_seconds, timeout=SQLITE_JOURNAL_TIMEOUT
        )
    return None


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
    journal: Journal | None,
    on_event: Callable[[KeptnEvent], Awaitable[Admission]],
    on_malformed: Callable[[str], object],
) -> NatsIngress:
    """NATS_DELIVERY chooses the ingress here, and only here; ``journal`` is
    :func:`make_journal`'s."""
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
        "on_dropped": metrics.events_dropped.inc,
    }
    if settings.nats_delivery == "core":
        return NatsIngress(NatsBus(settings.nats_url, **common), None)
    if not isinstance(journal, KvJournal):
        raise TypeError("jetstream delivery needs make_journal's KvJournal")
    bus = JetStreamBus(
        settings.nats_url,
        journal=journal,
        ack_wait=settings.nats_ack_wait_seconds,
        on_redelivery=metrics.redeliveries.inc,
        on_pending=lambda consumer, count: metrics.consumer_pending.labels(consumer).set(count),
        **common,
    )
    return NatsIngress(bus, journal)
