"""The configuration edge (environment and flags) and the CLI, run as a user would."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest

from devkit.k6run import ONE_SCRIPT, LoadRun
from devkit.ports import free_port
from devkit.prometheus import PrometheusServer
from devkit.target import TargetServer
from sli_provider import cli
from sli_provider.config import ConfigError, Secret, Settings, settings_from
from sli_provider.config.command_settings import COMMAND_SETTINGS
from sli_provider.k6.invocation import RunTags
from sli_provider.logs import JSONFormatter
from tests.helpers import scope_args

ROOT = Path(__file__).resolve().parent.parent


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


def run_cli(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    # `python -m sli_provider` from the checkout is the `sli-provider` script of this very code
    # (the installed script may belong to another checkout sharing the virtualenv).
    command = [sys.executable, "-m", "sli_provider", *args]
    return subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_cli_preview_prints_a_table_and_json(
    prometheus: PrometheusServer, load_run: LoadRun, load_tags: RunTags, tmp_path: Path
) -> None:
    env = {
        "PROMETHEUS_URL": prometheus.url,
        "SLI_CONFIG_DIR": str(tmp_path),
        "LOG_LEVEL": "WARNING",
    }
    common = scope_args(load_run, load_tags)
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


# --- configuration errors: one line, exit 2 ---------------------------------------------------------


def serve_env(**extra: str) -> dict[str, str]:
    """A ``serve`` that would start if the configuration were accepted (on a free port)."""
    return {"HOST": "127.0.0.1", "PORT": str(free_port()), **extra}


def assert_one_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR"),
        ({"RUNNER_ENABLED": "flase"}, "RUNNER_ENABLED must be true, false, 1, 0, yes or no"),
        ({"PROMETHEUS_INSECURE_SKIP_VERIFY": "on"}, "PROMETHEUS_INSECURE_SKIP_VERIFY must be"),
        ({"PROMETHEUS_BEARER_TOKEN_FILE": "/nonexistent/token"}, "PROMETHEUS_BEARER_TOKEN_FILE"),
        (
            {
                "KEPTN_API_URL": "https://keptn.example.org/api",
                "KEPTN_API_TOKEN_FILE": "/nonexistent/token",
            },
            "KEPTN_API_TOKEN_FILE: cannot read",
        ),
        ({"SLI_TEMPLATES_DIR": "/nonexistent"}, "SLI_TEMPLATES_DIR: no built-in SLI templates"),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else "",
)
def test_serve_with_a_bad_setting_says_so_in_one_line(env: dict[str, str], needle: str) -> None:
    # Before these were checked, some of them served on regardless: the timeout catches that.
    assert_one_line(run_cli("serve", env=serve_env(**env), timeout=20), needle)


def test_a_missing_password_file_of_a_project_is_one_line_naming_it(tmp_path: Path) -> None:
    projects = tmp_path / "projects.yaml"
    missing = tmp_path / "shop-password"
    projects.write_text(f"projects:\n  shop:\n    username: u\n    password_file: {missing}\n")
    result = run_cli("serve", env=serve_env(PROMETHEUS_PROJECTS_FILE=str(projects)), timeout=20)
    assert_one_line(result, f"password_file: cannot read {missing}: No such file or directory")


def test_serve_on_a_port_in_use_says_so_in_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "WARNING"}
        result = run_cli("serve", env=env, timeout=20)
    assert_one_line(
        result, f"cannot listen on 127.0.0.1:{port} (HOST, PORT): Address already in use"
    )


# --- secrets are never flags --------------------------------------------------------------------------

SECRETS = [f.metadata["setting"].env for f in fields(Settings) if f.metadata["setting"].secret]
PREVIEW = [
    "preview",
    "--project",
    "p",
    "--stage",
    "s",
    "--service",
    "v",
    "--start",
    "x",
    "--end",
    "y",
]


@pytest.mark.parametrize("env", SECRETS)
@pytest.mark.parametrize("form", ["separate", "joined"])
def test_a_secret_given_as_a_flag_is_refused_without_echoing_it(
    env: str, form: str, capsys: pytest.CaptureFixture[str]
) -> None:
    flag = "--" + env.lower().replace("_", "-")
    given = [flag, "s3cret"] if form == "separate" else [f"{flag}=s3cret"]
    with pytest.raises(SystemExit) as exited:
        cli.main([*PREVIEW, *given], environ={})
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"{flag} is not accepted" in err and f"{env}_FILE" in err
    assert "s3cret" not in err


@pytest.mark.parametrize("command", ["serve", "preview", "evaluate", "run"])
def test_help_says_which_settings_are_secret_and_where_they_come_from(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([command, "--help"], environ={})
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "Secrets have no flag" in out
    # serve lists every secret; the other commands those of the settings they use
    used = COMMAND_SETTINGS.get(command)
    for f in fields(Settings):
        env = f.metadata["setting"].env
        if env not in SECRETS:
            continue
        flag = "--" + env.lower().replace("_", "-")
        listed = f"{env:<24} or {env}_FILE" in out
        assert listed == (used is None or f.name in used), env
        assert f"[{flag} " not in out  # the flag is not offered, only its -file variant


# --- what settings point to is read once per process ----------------------------------------------


@pytest.fixture
def spied_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """Every Path.read_text of this process, in order; logging restored after the CLI ran."""
    reads: list[Path] = []
    original = Path.read_text

    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        reads.append(self)
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", read_text)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield reads
    finally:
        root.handlers[:], root.level = handlers, level


@pytest.mark.parametrize("command", ["evaluate", "run"])
async def test_prometheus_access_is_read_once_per_command(
    command: str,
    prometheus: PrometheusServer,
    target: TargetServer,
    tmp_path: Path,
    spied_reads: list[Path],
) -> None:
    password = tmp_path / "shop-password"
    password.write_text("pw\n")
    projects = tmp_path / "projects.yaml"
    projects.write_text(
        f"projects:\n  shop:\n    url: {prometheus.url}\n    username: k6\n"
        f"    password_file: {password}\n"
    )
    slo = tmp_path / "slo.yaml"
    slo.write_text("objectives:\n  - sli: http_reqs_total\ntotal_score: {pass: '90%'}\n")
    gate = [
        "--slo",
        str(slo),
        "--project",
        "shop",
        "--stage",
        "dev",
        "--service",
        "web",
        "--history",
        str(tmp_path / "history.sqlite3"),
        "--no-store",
    ]
    if command == "evaluate":
        args = [
            "evaluate",
            *gate,
            "--start",
            "2024-01-01T00:00:00.000Z",
            "--end",
            "2024-01-01T00:01:00.000Z",
        ]
    else:
        args = ["run", *gate, "--script", str(ONE_SCRIPT), "--target", target.url]
    environ = {
        "PROMETHEUS_PROJECTS_FILE": str(projects),
        "SLI_CONFIG_DIR": str(tmp_path),
        "LOG_LEVEL": "ERROR",
        "QUERY_ATTEMPTS": "1",
    }
    # In a thread: the CLI runs its own event loop, as it does in its own process.
    code = await asyncio.to_thread(cli.main, args, environ)
    assert code in (0, 1)  # the gate ran to a verdict; the verdict is not the point here
    assert spied_reads.count(projects) == 1
    assert spied_reads.count(password) == 1
