"""The configuration edge (environment and flags) and the CLI, run as a user would."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from devkit.k6run import LoadRun
from devkit.prometheus import PrometheusServer
from sli_provider.config import ConfigError, Secret, Settings, settings_from
from sli_provider.k6.invocation import RunTags
from sli_provider.keptn.timestamps import format_keptn
from sli_provider.logs import JSONFormatter


def test_defaults_match_the_documented_ones() -> None:
    s = settings_from({})
    assert (s.port, s.prometheus_url, s.sli_provider) == (8080, "http://localhost:9090", "k6")
    assert s.event_url == "http://localhost:8081/event"
    assert s.resources_url == "http://localhost:8081/resource-service"


def test_keptn_api_mode_and_flag_precedence() -> None:
    env = {
        "KEPTN_API_URL": "https://keptn.example.org/api/",
        "KEPTN_API_TOKEN": "t0k",
        "PORT": "9000",
    }
    s = settings_from(env, {"port": "9100"})
    assert s.port == 9100
    assert s.event_url == "https://keptn.example.org/api/v1/event"
    assert s.resources_url == "https://keptn.example.org/api/resource-service"
    assert s.keptn_api_token == Secret("t0k")
    assert "t0k" not in repr(s) and "t0k" not in json.dumps(s.describe())


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "eighty"}, "PORT must be a number"),
        ({"PORT": "0"}, "PORT must be"),
        ({"QUERY_CONCURRENCY": "0"}, "QUERY_CONCURRENCY"),
        ({"KEPTN_API_TOKEN": "x"}, "KEPTN_API_URL is not"),
        ({"PROMETHEUS_URL": "localhost:9090"}, r"http\(s\) URL"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from(env)


def test_userinfo_in_urls_is_not_logged() -> None:
    s = Settings(prometheus_url="https://user:pw@prom.example.org")
    assert "pw" not in json.dumps(s.describe())


def test_log_lines_are_json_with_context() -> None:
    from sli_provider import logs

    token = logs.keptn_context.set("ctx-9")
    try:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
        line = json.loads(JSONFormatter().format(record))
    finally:
        logs.keptn_context.reset(token)
    assert line["message"] == "hello world"
    assert line["shkeptncontext"] == "ctx-9"


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "sli-provider"), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_cli_preview_prints_a_table_and_json(
    prometheus: PrometheusServer, load_run: LoadRun, load_tags: RunTags, tmp_path: Path
) -> None:
    env = {
        "PROMETHEUS_URL": prometheus.url,
        "SLI_CONFIG_DIR": str(tmp_path),
        "LOG_LEVEL": "WARNING",
    }
    common = [
        "--project", load_tags.project, "--stage", load_tags.stage, "--service", load_tags.service,
        "--start", format_keptn(load_run.start), "--end", format_keptn(load_run.end),
        "--context", load_tags.context,
    ]  # fmt: skip
    table = run_cli("preview", *common, "--indicators", "http_reqs_total,vus_max", env=env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["indicator", "value", "ok", "ms"]
    count = load_run.summary["metrics"]["http_reqs"]["values"]["count"]
    assert lines[1].split()[:3] == ["http_reqs_total", f"{count:.6g}", "yes"]

    as_json = run_cli("preview", *common, "--json", "--indicators", "nope", env=env)
    assert as_json.returncode == 1  # an indicator failed
    (item,) = json.loads(as_json.stdout)["indicators"]
    assert item["metric"] == "nope" and "unknown indicator" in item["message"]


def test_cli_reports_configuration_errors() -> None:
    result = run_cli("serve", env={"PORT": "x"})
    assert result.returncode == 2
    assert "PORT must be a number" in result.stderr
