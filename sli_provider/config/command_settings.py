"""Which settings each shell command uses, so that its ``--help`` lists only those.

Every setting is still read by every command (a flag or variable meant for ``serve`` does no
harm elsewhere); this only decides what each command's help shows. ``serve`` shows them all.
"""

from __future__ import annotations

# Reaching Prometheus and reading sli.yaml, as the service does for a get-sli.
_SLI_SETTINGS = frozenset(
    {
        "prometheus_url",
        "prometheus_username",
        "prometheus_password",
        "prometheus_bearer_token",
        "prometheus_bearer_token_file",
        "prometheus_headers",
        "prometheus_ca_file",
        "prometheus_cert_file",
        "prometheus_key_file",
        "prometheus_insecure_skip_verify",
        "prometheus_projects_file",
        "metrics_store",
        "query_concurrency",
        "query_timeout_seconds",
        "query_attempts",
        "retry_max_wait_seconds",
        "freshness_wait_seconds",
        "keptn_api_url",
        "keptn_api_token",
        "resource_service_url",
        "http_timeout_seconds",
        "sli_config_dir",
        "sli_resource",
        "templates_dir",
        "log_level",
    }
)
# Running k6 on this machine and where it writes its metrics.
_K6_SETTINGS = frozenset(
    {
        "prometheus_remote_write_url",
        "k6_binary",
        "k6_binaries",
        "k6_auto_extension_resolution",
        "runner_work_dir",
    }
)

COMMAND_SETTINGS: dict[str, frozenset[str]] = {
    "preview": _SLI_SETTINGS,
    "evaluate": _SLI_SETTINGS,
    "run": _SLI_SETTINGS | _K6_SETTINGS,
}

# Where a shell command reads a setting differently from the service, its help says so.
COMMAND_HELP = {
    "log_level": "JSON log records at DEBUG, INFO, WARNING or ERROR (default: none; warnings "
    "and errors as sentences) [LOG_LEVEL]",
}
