"""Whether the settings can work together; a ConfigError names the variable that cannot."""

from __future__ import annotations

import re
from dataclasses import fields
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sli_provider.config.values import NATS_DELIVERIES, ConfigError, without_userinfo
from sli_provider.ports.metrics_store import METRICS_STORES

if TYPE_CHECKING:
    from sli_provider.config.settings import Settings


def check(settings: Settings) -> None:
    """Raise a ConfigError for the first setting that cannot be used as given."""
    if not 0 < settings.port < 65536:
        raise ConfigError(f"PORT must be 1-65535, not {settings.port}")
    for name in (
        "query_concurrency",
        "query_attempts",
        "reply_attempts",
        "max_parallel_tests",
        "max_events_in_flight",
    ):
        if getattr(settings, name) < 1:
            raise ConfigError(f"{_env_name(settings, name)} must be at least 1")
    for name in (
        "query_timeout_seconds",
        "http_timeout_seconds",
        "shutdown_grace_seconds",
        "gate_deadline_seconds",
    ):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"{_env_name(settings, name)} must be positive")
    for name in (
        "nats_timeout_seconds",
        "get_sli_deadline_seconds",
        "nats_ack_wait_seconds",
        "journal_ttl_seconds",
    ):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"{_env_name(settings, name)} must be positive")
    if settings.freshness_wait_seconds < 0:
        raise ConfigError("FRESHNESS_WAIT_SECONDS must be 0 (off) or positive")
    if settings.metrics_store not in METRICS_STORES:
        raise ConfigError(
            f"METRICS_STORE must be one of {', '.join(METRICS_STORES)}, "
            f"not {settings.metrics_store!r}"
        )
    if settings.nats_delivery not in NATS_DELIVERIES:
        raise ConfigError(
            f"NATS_DELIVERY must be jetstream or core, not {settings.nats_delivery!r}"
        )
    if (
        settings.journal_path is not None
        and settings.nats_url
        and settings.nats_delivery == "jetstream"
    ):
        raise ConfigError(
            "JOURNAL_PATH is for HTTP and NATS_DELIVERY=core; with jetstream the replicas "
            "already share a journal in NATS: unset JOURNAL_PATH"
        )
    if settings.k6_operator_namespace is not None and not _DNS_LABEL.fullmatch(
        settings.k6_operator_namespace
    ):
        raise ConfigError(
            f"K6_OPERATOR_NAMESPACE must be a namespace name, not {settings.k6_operator_namespace!r}"
        )
    if settings.k6_operator_remote_write_secret is not None and not _DNS_SUBDOMAIN.fullmatch(
        settings.k6_operator_remote_write_secret
    ):
        raise ConfigError("K6_OPERATOR_REMOTE_WRITE_SECRET must be the name of a Secret")
    if settings.keptn_api_token and not settings.keptn_api_url:
        raise ConfigError("KEPTN_API_TOKEN is set but KEPTN_API_URL is not")
    if settings.prometheus_password is not None and settings.prometheus_username is None:
        # Basic auth needs the user; the password alone would be silently never sent.
        raise ConfigError("PROMETHEUS_PASSWORD is set but PROMETHEUS_USERNAME is not")
    if settings.nats_url and not _is_nats_url(settings.nats_url):
        shown = without_userinfo(settings.nats_url)
        raise ConfigError(
            f"NATS_URL must be a nats://, tls://, ws:// or wss:// URL (or host:port), not {shown!r}"
        )
    for name in ("prometheus_url", "keptn_api_url", "distributor_url", "resource_service_url"):
        url = getattr(settings, name)
        if url is not None and not _is_http_url(url):
            shown = without_userinfo(url)
            raise ConfigError(f"{_env_name(settings, name)} must be an http(s) URL, not {shown!r}")


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(
    r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _is_nats_url(url: str) -> bool:
    """What nats-py connects to: its schemes, or a bare host[:port] it gives ``nats://``. Any
    other scheme (http://x) it would take for a host named after the scheme."""
    if "://" not in url:
        return bool(url.strip()) and "/" not in url
    parts = urlsplit(url)
    return parts.scheme in ("nats", "tls", "ws", "wss") and bool(parts.hostname)


def _env_name(settings: Settings, field_name: str) -> str:
    for f in fields(settings):
        if f.name == field_name:
            env: str = f.metadata["setting"].env
            return env
    raise KeyError(field_name)
