"""Settings arrive typed and checked at the edge; what they point to is read there, once."""

from __future__ import annotations

import base64
import importlib
import inspect
import json
import os
import pkgutil
from dataclasses import fields
from pathlib import Path

import pytest
from aiohttp import web

import sli_provider
from sli_provider.adapters.prometheus_access import load_prometheus_targets
from sli_provider.config import ConfigError, LogLevel, Secret, Settings, settings_from
from sli_provider.errors import SliProviderError
from sli_provider.service.app import COMPONENTS, build_app
from sli_provider.wiring import load_configuration

ROOT = Path(__file__).resolve().parent.parent
SECRETS = [f.metadata["setting"] for f in fields(Settings) if f.metadata["setting"].secret]
READ_ONCE = [s for s in SECRETS if s.env != "PROMETHEUS_BEARER_TOKEN"]  # that one is re-read


# --- booleans, numbers, the log level ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("Yes", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        (" NO ", False),
    ],
)
@pytest.mark.parametrize("variable", ["RUNNER_ENABLED", "PROMETHEUS_INSECURE_SKIP_VERIFY"])
def test_booleans_accept_the_six_words_in_any_case(variable: str, raw: str, expected: bool) -> None:
    settings = settings_from({variable: raw})
    assert getattr(settings, variable.lower()) is expected


@pytest.mark.parametrize("raw", ["flase", "on", "off", "y", "2", "enabled"])
def test_any_other_boolean_is_an_error_naming_variable_and_words(raw: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings_from({"RUNNER_ENABLED": raw})
    assert str(error.value) == (
        f"RUNNER_ENABLED must be true, false, 1, 0, yes or no (any case), not {raw!r}"
    )


def test_log_level_is_typed_and_checked() -> None:
    assert settings_from({"LOG_LEVEL": "debug"}).log_level is LogLevel.DEBUG
    with pytest.raises(ConfigError, match="LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR"):
        settings_from({"LOG_LEVEL": "verbose"})


def test_the_charts_log_levels_are_the_services() -> None:
    schema = json.loads((ROOT / "chart" / "values.schema.json").read_text())
    assert schema["properties"]["logLevel"]["enum"] == [level.value for level in LogLevel]


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf"])
def test_a_seconds_setting_must_be_finite(raw: str) -> None:
    with pytest.raises(ConfigError, match="QUERY_TIMEOUT_SECONDS must be a finite number"):
        settings_from({"QUERY_TIMEOUT_SECONDS": raw})


@pytest.mark.parametrize("variable", ["KEPTN_API_URL", "DISTRIBUTOR_URL", "RESOURCE_SERVICE_URL"])
def test_keptn_urls_must_be_http(variable: str) -> None:
    with pytest.raises(ConfigError, match=f"{variable} must be an http\\(s\\) URL"):
        settings_from({variable: "keptn:8080"})


@pytest.mark.parametrize("url", ["http://keptn-nats:4222", "https://u:s3cret@nats", "nats://"])
def test_a_nats_url_of_another_scheme_is_refused_at_start(url: str) -> None:
    """nats-py would take http://x for a host named "http" and retry it until the deadline."""
    with pytest.raises(ConfigError, match="NATS_URL must be a nats://") as refused:
        settings_from({"NATS_URL": url})
    assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "nats://keptn-nats",
        "nats://u:p@keptn-nats:4222",
        "tls://nats:4443",
        "wss://nats",
        "keptn-nats:4222",
        "keptn-nats",
    ],
)
def test_nats_urls_nats_py_understands_are_accepted(url: str) -> None:
    assert settings_from({"NATS_URL": url}).nats_url == url


@pytest.mark.parametrize("where", ["PROMETHEUS_PASSWORD", "PROMETHEUS_PASSWORD_FILE"])
def test_a_prometheus_password_without_a_user_is_refused(where: str, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret")
    env = {where: "s3cret" if where == "PROMETHEUS_PASSWORD" else str(secret)}
    with pytest.raises(ConfigError) as refused:
        settings_from(env)
    assert str(refused.value) == "PROMETHEUS_PASSWORD is set but PROMETHEUS_USERNAME is not"
    assert settings_from({**env, "PROMETHEUS_USERNAME": "reader"}).prometheus_password


# --- PROMETHEUS_HEADERS ---------------------------------------------------------------------------


def test_prometheus_headers_are_a_mapping_from_the_edge_on() -> None:
    settings = settings_from({"PROMETHEUS_HEADERS": "X-Scope-OrgID=team-a, X-Extra = b,"})
    assert settings.prometheus_headers == {"X-Scope-OrgID": "team-a", "X-Extra": "b"}
    assert load_prometheus_targets(settings).default.headers == settings.prometheus_headers
    assert (
        load_prometheus_targets(settings).default.connection().request_headers()["X-Scope-OrgID"]
        == "team-a"
    )
    # The startup log names the headers, not their values.
    assert settings.describe()["prometheus_headers"] == "X-Extra,X-Scope-OrgID"


@pytest.mark.parametrize("raw", ["Authorization: s3cret", "Bad Name=s3cret", "=s3cret"])
def test_a_bad_header_names_the_variable_and_not_the_value(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"^PROMETHEUS_HEADERS: entry 1 ") as error:
        settings_from({"PROMETHEUS_HEADERS": raw})
    assert "s3cret" not in str(error.value)


# --- secrets: from the environment or a file, never a flag ----------------------------------------


@pytest.mark.parametrize("setting", READ_ONCE, ids=lambda s: s.env)
def test_a_secret_can_come_from_its_file_read_once_at_the_edge(
    setting: object, tmp_path: Path
) -> None:
    env = getattr(setting, "env")  # noqa: B009 (the parameter's type is private to config)
    path = tmp_path / "secret"
    path.write_text("  s3cret\n")
    # A token needs the API, a password its user.
    extra = {"KEPTN_API_URL": "https://keptn.example.org/api", "PROMETHEUS_USERNAME": "reader"}
    settings = settings_from({f"{env}_FILE": str(path), **extra})
    path.write_text("changed")  # read at the edge: a later change is not seen
    assert getattr(settings, env.lower()) == Secret("s3cret")
    assert "s3cret" not in repr(settings) and "s3cret" not in json.dumps(settings.describe())


@pytest.mark.parametrize("setting", READ_ONCE, ids=lambda s: s.env)
def test_a_secrets_file_flag_is_a_path_not_the_secret(setting: object, tmp_path: Path) -> None:
    env: str = getattr(setting, "env")  # noqa: B009
    path = tmp_path / "secret"
    path.write_text("s3cret")
    name = env.lower()
    settings = settings_from(
        {"KEPTN_API_URL": "https://k.example.org", "PROMETHEUS_USERNAME": "reader"},
        {f"{name}_file": str(path)},
    )
    assert getattr(settings, name) == Secret("s3cret")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "KEPTN_API_TOKEN_FILE: cannot read .*: No such file or directory"),
        ("\n", "KEPTN_API_TOKEN_FILE: .* is empty"),
    ],
)
def test_an_unusable_secret_file_is_an_error_naming_the_variable(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        settings_from({"KEPTN_API_URL": "https://k.example.org", "KEPTN_API_TOKEN_FILE": str(path)})


def test_a_secret_and_its_file_together_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "password"
    path.write_text("one")
    with pytest.raises(ConfigError, match="PROMETHEUS_PASSWORD and PROMETHEUS_PASSWORD_FILE"):
        settings_from({"PROMETHEUS_PASSWORD": "two", "PROMETHEUS_PASSWORD_FILE": str(path)})


def test_secrets_are_never_taken_from_flags() -> None:
    settings = settings_from({}, {"keptn_api_token": "s3cret", "prometheus_password": "s3cret"})
    assert settings.keptn_api_token is None and settings.prometheus_password is None


def test_the_settings_page_says_where_each_secret_comes_from() -> None:
    section = (ROOT / "docs" / "settings.md").read_text()
    for setting in SECRETS:
        row = next(line for line in section.splitlines() if line.startswith(f"| `{setting.env}`"))
        assert f"`{setting.env}_FILE`" in row or f"`{setting.env}_FILE`" in section, setting.env
        assert "secret" in row, setting.env
    assert "never flags" in section


# --- what the settings point to -------------------------------------------------------------------


def projects_file(tmp_path: Path, body: str) -> Settings:
    path = tmp_path / "projects.yaml"
    path.write_text(body)
    return Settings(prometheus_projects_file=path)


def test_a_missing_password_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    body = f"projects:\n  shop:\n    username: u\n    password_file: {missing}\n"
    settings = projects_file(tmp_path, body)
    with pytest.raises(ConfigError, match=f"'shop': password_file: cannot read {missing}"):
        load_configuration(settings)


def test_a_project_password_file_is_read_once(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("pw\n")
    settings = projects_file(
        tmp_path, f"projects:\n  shop:\n    username: u\n    password_file: {secret}\n"
    )
    targets = load_prometheus_targets(settings)
    secret.unlink()  # nothing reads it again
    assert targets.access_for("shop").password == Secret("pw")
    basic = "Basic " + base64.b64encode(b"u:pw").decode()
    assert targets.access_for("shop").connection().request_headers()["Authorization"] == basic


def test_password_and_password_file_together_are_an_error(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("pw")
    body = f"projects:\n  shop:\n    password: a\n    password_file: {secret}\n"
    with pytest.raises(ConfigError, match="give password or password_file, not both"):
        load_prometheus_targets(projects_file(tmp_path, body))


@pytest.mark.parametrize(
    ("raw", "expected"), [("false", False), ('"false"', False), ('"yes"', True), ("true", True)]
)
def test_a_projects_insecure_flag_means_what_it_says(
    tmp_path: Path, raw: str, expected: bool
) -> None:
    body = f"projects:\n  shop:\n    insecure_skip_verify: {raw}\n"
    access = load_prometheus_targets(projects_file(tmp_path, body)).access_for("shop")
    assert access.insecure_skip_verify is expected


def test_a_projects_bad_insecure_flag_is_an_error(tmp_path: Path) -> None:
    body = "projects:\n  shop:\n    insecure_skip_verify: flase\n"
    with pytest.raises(ConfigError, match="'shop': insecure_skip_verify must be true, false"):
        load_prometheus_targets(projects_file(tmp_path, body))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file regardless of its mode")
def test_an_unreadable_bearer_token_file_is_found_at_start(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    token.chmod(0)
    with pytest.raises(ConfigError, match="PROMETHEUS_BEARER_TOKEN_FILE: cannot read"):
        load_configuration(Settings(prometheus_bearer_token_file=token))


def test_a_templates_dir_without_templates_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^SLI_TEMPLATES_DIR: no built-in SLI templates found"):
        load_configuration(Settings(templates_dir=tmp_path))
    (tmp_path / "bad.yaml").write_text("indicators: [")
    with pytest.raises(ConfigError, match=r"^SLI_TEMPLATES_DIR: .*bad\.yaml: not valid YAML"):
        load_configuration(Settings(templates_dir=tmp_path))


# --- one exception root -----------------------------------------------------------------------------


def test_every_public_exception_of_the_project_is_a_sli_provider_error() -> None:
    stray = []
    for module_info in pkgutil.walk_packages(sli_provider.__path__, "sli_provider."):
        if module_info.name.endswith("__main__"):
            continue  # importing it runs the CLI
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
                and not name.startswith("_")
                and not issubclass(value, SliProviderError)
            ):
                stray.append(f"{module.__name__}.{name}")
    assert stray == []


async def test_the_service_uses_the_loaded_configuration_and_reads_no_file_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = tmp_path / "password"
    password.write_text("pw")
    projects = tmp_path / "projects.yaml"
    projects.write_text(f"projects:\n  shop:\n    username: u\n    password_file: {password}\n")
    configuration = load_configuration(
        Settings(prometheus_projects_file=projects, runner_enabled=False)
    )
    reads: list[Path] = []
    original = Path.read_text

    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        reads.append(self)
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", read_text)
    app = build_app(configuration)
    runner = web.AppRunner(app)
    await runner.setup()  # the lifecycle: clients, evaluator, runner
    try:
        assert app[COMPONENTS].prometheus.targets is configuration.prometheus
        assert app[COMPONENTS].prometheus.access_for("shop").password == Secret("pw")
    finally:
        await runner.cleanup()
    assert reads == []


def test_a_projects_file_problem_names_the_setting_and_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load_prometheus_targets(projects_file(tmp_path, "projects:\n  shop: [unclosed\n"))
    message = str(refused.value)
    assert message.startswith(f"PROMETHEUS_PROJECTS_FILE {tmp_path / 'projects.yaml'}: ")
    assert "not valid YAML: line 3: expected ',' or ']'" in message, message
    with pytest.raises(ConfigError, match=r"^PROMETHEUS_PROJECTS_FILE .*expected 'projects:'"):
        load_prometheus_targets(projects_file(tmp_path, "shop: {}\n"))


@pytest.mark.parametrize("key", ["password: pw", "password_file: PATH"])
def test_a_project_password_without_a_username_is_refused(tmp_path: Path, key: str) -> None:
    secret = tmp_path / "password"
    secret.write_text("pw\n")
    body = f"projects:\n  shop:\n    {key.replace('PATH', str(secret))}\n"
    with pytest.raises(ConfigError, match="'shop': password or password_file is set but username"):
        load_prometheus_targets(projects_file(tmp_path, body))
