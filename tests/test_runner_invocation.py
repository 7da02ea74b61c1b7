"""k6's arguments as a pure value: what every run is told, and what never appears in them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sli_provider.adapters.prometheus_access import PrometheusAccess
from sli_provider.config import Secret
from sli_provider.k6.invocation import (
    SUMMARY_TREND_STATS,
    TREND_STATS,
    RemoteWriteTarget,
    RunTags,
    SecretFile,
    build_invocation,
)
from sli_provider.runner.local import find_k6_binary

TAGS = RunTags("shop", "staging", "web", "ctx-1")
PASSWORD, TOKEN = "pa55-w0rd-secret", "t0ken-secret"
WRITE_URL = "https://prom.example.org/api/v1/write"


def option_values(options: tuple[str, ...], flag: str) -> list[str]:
    return [options[i + 1] for i, option in enumerate(options) if option == flag]


@pytest.fixture
def no_k6_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No k6 beside Python and none on PATH: any binary lookup would fail."""
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError):
        find_k6_binary()


def test_every_run_is_tagged_and_exported_as_the_slis_expect(no_k6_anywhere: None) -> None:
    invocation = build_invocation(
        script="k6/load.js",
        remote_write=RemoteWriteTarget(WRITE_URL, {"K6_PROMETHEUS_RW_HEADERS_X-Scope-OrgID": "t"}),
        tags=TAGS,
        script_env={"TARGET_URL": "http://target", "VUS": "2"},
        vus=3,
        duration="10s",
        iterations=7,
    )

    options = invocation.options
    assert options[0] == "run"
    assert "--include-system-env-vars=false" in options
    assert option_values(options, "--out") == ["experimental-prometheus-rw"]
    assert option_values(options, "--system-tags") == [""]
    assert option_values(options, "--summary-trend-stats") == [",".join(SUMMARY_TREND_STATS)]
    assert option_values(options, "--tag") == [
        "keptn_project=shop",
        "keptn_stage=staging",
        "keptn_service=web",
        "keptn_context=ctx-1",
    ]
    assert option_values(options, "--env") == ["TARGET_URL=http://target", "VUS=2"]
    assert option_values(options, "--vus") == ["3"]
    assert option_values(options, "--duration") == ["10s"]
    assert option_values(options, "--iterations") == ["7"]
    assert invocation.script == "k6/load.js"
    assert invocation.env == {
        "K6_PROMETHEUS_RW_SERVER_URL": WRITE_URL,
        "K6_PROMETHEUS_RW_PUSH_INTERVAL": "1s",
        "K6_PROMETHEUS_RW_STALE_MARKERS": "true",
        "K6_PROMETHEUS_RW_TREND_STATS": ",".join(TREND_STATS),
        "K6_NO_COLOR": "true",
        "K6_PROMETHEUS_RW_HEADERS_X-Scope-OrgID": "t",
    }
    assert {"sum", "p(95)", "count"} <= set(TREND_STATS)


def test_the_back_end_names_the_binary_and_adds_its_options_before_the_script(
    no_k6_anywhere: None,
) -> None:
    invocation = build_invocation(
        script="/private/k6/load.js", remote_write=RemoteWriteTarget(WRITE_URL), tags=TAGS
    )
    argv = invocation.argv("/opt/k6", "--summary-export", "/private/summary.json")

    assert argv == (
        "/opt/k6",
        *invocation.options,
        "--summary-export",
        "/private/summary.json",
        "/private/k6/load.js",
    )
    # Local-process details are the back-end's: none of them is in k6's own options or env.
    assert "--summary-export" not in invocation.options
    assert "HOME" not in invocation.env


def test_native_histograms_replace_the_trend_stats() -> None:
    invocation = build_invocation(
        script="a.js",
        remote_write=RemoteWriteTarget(WRITE_URL),
        tags=TAGS,
        trend_mode="native-histogram",
    )
    assert invocation.env["K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM"] == "true"
    assert "K6_PROMETHEUS_RW_TREND_STATS" not in invocation.env


@pytest.mark.parametrize(
    "access",
    [
        PrometheusAccess(url="https://prom", username="writer", password=Secret(PASSWORD)),
        PrometheusAccess(url="https://prom", bearer_token=Secret(TOKEN)),
    ],
    ids=["basic-auth", "bearer-token"],
)
def test_credentials_stay_wrapped_out_of_argv_and_plain_env(
    access: PrometheusAccess, no_k6_anywhere: None
) -> None:
    target = access.remote_write_target()
    invocation = build_invocation(
        script="a.js", remote_write=target, tags=TAGS, script_env={"TARGET_URL": "http://t"}
    )

    plain = " ".join([*invocation.argv("k6"), *invocation.env.values(), repr(target)])
    assert PASSWORD not in plain and TOKEN not in plain
    assert all(isinstance(s, Secret) for s in invocation.secrets.values())
    revealed = {name: s.reveal() for name, s in invocation.secrets.items()}
    if access.username:
        assert revealed == {"K6_PROMETHEUS_RW_PASSWORD": PASSWORD}
        assert invocation.env["K6_PROMETHEUS_RW_USERNAME"] == "writer"
    else:
        assert revealed == {"K6_PROMETHEUS_RW_BEARER_TOKEN": TOKEN}
    assert invocation.env["K6_PROMETHEUS_RW_SERVER_URL"] == "https://prom/api/v1/write"


def test_a_token_file_is_read_when_k6_starts_not_when_the_target_is_built(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    access = PrometheusAccess(
        url="https://prom",
        bearer_token_file=token_file,
        remote_write_url="https://mimir/api/v1/push",
    )

    target = access.remote_write_target()
    token_file.write_text("rotated\n")

    assert target.url == "https://mimir/api/v1/push"
    assert target.secrets == {"K6_PROMETHEUS_RW_BEARER_TOKEN": SecretFile(token_file)}
    assert target.secrets["K6_PROMETHEUS_RW_BEARER_TOKEN"].reveal() == "rotated"


def test_tls_settings_are_plain_k6_options(tmp_path: Path) -> None:
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "cert.pem", "key.pem"))
    access = PrometheusAccess(
        url="https://prom",
        ca_file=ca,
        cert_file=cert,
        key_file=key,
        headers={"X-Scope-OrgID": "team"},
    )

    target = access.remote_write_target()

    assert target.secrets == {}
    assert target.settings == {
        "K6_PROMETHEUS_RW_HEADERS_X-Scope-OrgID": "team",
        "SSL_CERT_FILE": str(ca),
        "K6_PROMETHEUS_RW_CLIENT_CERTIFICATE": str(cert),
        "K6_PROMETHEUS_RW_CLIENT_CERTIFICATE_KEY": str(key),
    }
