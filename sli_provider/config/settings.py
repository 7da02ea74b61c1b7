"""The one typed configuration object, :class:`Settings`: every setting with its variable, flag
and help text (the flags, the README's table and the startup log line are made from them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sli_provider.config.validation import check
from sli_provider.config.values import (
    DISTRIBUTOR_URL,
    K6_RUNNER_IMAGE,
    LogLevel,
    Secret,
    Setting,
    without_userinfo,
)


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
            "token /preview and /gate then require as 'Authorization: Bearer <token>' (unset: open)",
            secret=True,
        ),
    )
    github_step_summary: Path | None = field(
        default=None,
        metadata=_setting(
            "GITHUB_STEP_SUMMARY",
            "run and evaluate append the gate's Markdown summary to this file (GitHub Actions "
            "sets it)",
        ),
    )
    gate_history: Path = field(
        default=Path(".sli-provider") / "history.sqlite3",
        metadata=_setting(
            "GATE_HISTORY",
            "the SQLite history /gate compares with and adds to (with NATS_URL and jetstream "
            "delivery: a bucket on that NATS instead)",
        ),
    )
    gate_deadline_seconds: float = field(
        default=8.0,
        metadata=_setting(
            "GATE_DEADLINE_SECONDS",
            "time /gate gets to find the run, query and score; then it answers that it cannot "
            "judge (callers give up after 10 s by default)",
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
        check(self)
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
                shown[f.name] = without_userinfo(value)
            else:
                shown[f.name] = str(value)
        return shown
