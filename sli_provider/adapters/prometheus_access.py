"""How to reach a Prometheus: URL, credentials, headers and TLS, globally or per project.

Everything here describes one :class:`Connection` (TLS and the headers of each request);
nothing changes process-wide state (the peers that turn TLS checks off do it for the whole
process). Credentials come from values or files; a bearer-token file is re-read when it changes,
as Kubernetes rotates projected tokens.

Per-project overrides (``PROMETHEUS_PROJECTS_FILE``)::

    projects:
      shop:
        url: https://mimir.example.org/prometheus
        headers: {X-Scope-OrgID: shop}
        username: shop-reader
        password_file: /etc/sli-provider/shop-password   # or password: …
        bearer_token_file: /var/run/secrets/…            # or bearer_token: …
        ca_file: /etc/sli-provider/ca.pem
        cert_file: …                                      # with key_file: mTLS
        insecure_skip_verify: false
        remote_write_url: https://mimir.example.org/api/v1/push
"""

from __future__ import annotations

import base64
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from sli_provider.config import ConfigError, Secret, Settings, parse_bool, read_secret_file
from sli_provider.k6.invocation import (
    RemoteWriteTarget,
    SecretFile,
    SecretSource,
    remote_write_url,
)
from sli_provider.yaml_problem import yaml_problem


@dataclass(frozen=True)
class PrometheusAccess:
    url: str
    username: str | None = None
    password: Secret | None = None
    bearer_token: Secret | None = None
    bearer_token_file: Path | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure_skip_verify: bool = False
    remote_write_url: str | None = None

    def validate(self, where: str, name: Callable[[str], str] = str) -> PrometheusAccess:
        """``name`` turns a field into what the user wrote (a variable, or a key of the file)."""
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: the Prometheus URL must be http(s), not {self.url!r}")
        if self.bearer_token and self.bearer_token_file:
            raise ConfigError(f"{where}: give a bearer token or a token file, not both")
        if (self.bearer_token or self.bearer_token_file) and self.username:
            raise ConfigError(f"{where}: give basic auth or a bearer token, not both")
        if bool(self.cert_file) != bool(self.key_file):
            raise ConfigError(f"{where}: a client certificate needs its key and vice versa")
        for attribute in ("ca_file", "cert_file", "key_file", "bearer_token_file"):
            path: Path | None = getattr(self, attribute)
            if path is not None:
                _check_readable(path, f"{where}: {name(attribute)}")
        return self

    @property
    def write_url(self) -> str:
        """Where k6 writes: the explicit remote-write URL, else this Prometheus' receiver."""
        return self.remote_write_url or remote_write_url(self.url)

    def connection(self) -> Connection:
        """How each request to this Prometheus goes: its TLS settings, headers and credentials."""
        return Connection(
            headers=dict(self.headers),
            authorization=self._authorization(),
            tls=TLSSettings(self.ca_file, self.cert_file, self.key_file, self.insecure_skip_verify),
        )

    def _authorization(self) -> Callable[[], str] | None:
        """The Authorization header's value, asked on every request (a token file may rotate)."""
        if self.username is not None:
            password = self.password.reveal() if self.password else ""
            basic = _basic_credentials(self.username, password)
            return lambda: basic
        token = self.bearer_token
        if token is not None:
            return lambda: f"Bearer {token.reveal()}"
        if self.bearer_token_file is not None:
            read = _FileToken(self.bearer_token_file)
            return lambda: f"Bearer {read()}"
        return None

    def remote_write_target(self) -> RemoteWriteTarget:
        """k6's remote-write output for the same URL, credentials, headers and TLS.

        Credentials stay wrapped (a token file is read only when k6 starts, so rotation is
        seen); the back-end decides where they go, which is never the script's environment.
        """
        settings: dict[str, str] = {}
        secrets: dict[str, SecretSource] = {}
        if self.username is not None:
            settings["K6_PROMETHEUS_RW_USERNAME"] = self.username
            secrets["K6_PROMETHEUS_RW_PASSWORD"] = self.password or Secret("")
        if self.bearer_token is not None:
            secrets["K6_PROMETHEUS_RW_BEARER_TOKEN"] = self.bearer_token
        elif self.bearer_token_file is not None:
            secrets["K6_PROMETHEUS_RW_BEARER_TOKEN"] = SecretFile(self.bearer_token_file)
        for name, value in self.headers.items():
            settings[f"K6_PROMETHEUS_RW_HEADERS_{name}"] = value
        if self.insecure_skip_verify:
            settings["K6_PROMETHEUS_RW_INSECURE_SKIP_TLS_VERIFY"] = "true"
        elif self.ca_file is not None:
            # k6 has no CA option for remote write; Go reads extra roots from SSL_CERT_FILE.
            settings["SSL_CERT_FILE"] = str(self.ca_file)
        if self.cert_file is not None and self.key_file is not None:
            settings["K6_PROMETHEUS_RW_CLIENT_CERTIFICATE"] = str(self.cert_file)
            settings["K6_PROMETHEUS_RW_CLIENT_CERTIFICATE_KEY"] = str(self.key_file)
        return RemoteWriteTarget(self.write_url, settings, secrets)


def _check_readable(path: Path, where: str) -> None:
    """Found at start, not at the first query: the file exists, is a file and can be opened."""
    if not path.is_file():
        raise ConfigError(f"{where}: {path} is not a readable file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class PrometheusTargets:
    """The default Prometheus and each project's own, parsed once per process."""

    default: PrometheusAccess
    projects: Mapping[str, PrometheusAccess] = field(default_factory=dict)

    def access_for(self, project: str) -> PrometheusAccess:
        return self.projects.get(project, self.default)


def load_prometheus_targets(settings: Settings) -> PrometheusTargets:
    """The settings' Prometheus access, with PROMETHEUS_PROJECTS_FILE and its files read once."""
    default = default_access(settings)
    path = settings.prometheus_projects_file
    if path is None:
        return PrometheusTargets(default)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"PROMETHEUS_PROJECTS_FILE {path}: {reason}") from None
    origin = f"PROMETHEUS_PROJECTS_FILE {path}"
    return PrometheusTargets(default, project_overrides(text, origin, default))


@dataclass(frozen=True)
class TLSSettings:
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure_skip_verify: bool = False

    def context(self) -> ssl.SSLContext | bool:
        """What aiohttp takes as ``ssl``: ``True`` for the system's trust store alone, else a
        context with the CA, the client certificate, or verification off. Raises
        ``ssl.SSLError`` or ``OSError`` when a file cannot be loaded."""
        if self.ca_file is None and self.cert_file is None and not self.insecure_skip_verify:
            return True
        context = ssl.create_default_context(
            cafile=str(self.ca_file) if self.ca_file is not None else None
        )
        if self.insecure_skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_file is not None and self.key_file is not None:
            context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context


@dataclass(frozen=True)
class Connection:
    """The settings of each request to one Prometheus. ``authorization`` is asked on every
    request, so a rotated token file is seen at the next query."""

    headers: Mapping[str, str] = field(default_factory=dict)
    authorization: Callable[[], str] | None = field(default=None, repr=False)
    tls: TLSSettings = field(default_factory=TLSSettings)

    def request_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.authorization is not None:
            headers["Authorization"] = self.authorization()
        return headers


def _basic_credentials(username: str, password: str) -> str:
    pair = f"{username}:{password}"
    try:
        encoded = pair.encode("latin-1")  # what requests and Go's net/http send
    except UnicodeEncodeError:
        encoded = pair.encode("utf-8")  # RFC 7617's charset="UTF-8"
    return "Basic " + base64.b64encode(encoded).decode("ascii")


class _FileToken:
    """The file's content, re-read only when its modification time or size changes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stamp: tuple[int, int] | None = None
        self._token = ""

    def __call__(self) -> str:
        stat = os.stat(self._path)
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:  # all requests are made on the one event loop: no lock
            self._token = self._path.read_text().strip()
            self._stamp = stamp
        return self._token


def default_access(settings: Settings) -> PrometheusAccess:
    return PrometheusAccess(
        url=settings.prometheus_url.rstrip("/"),
        username=settings.prometheus_username,
        password=settings.prometheus_password,
        bearer_token=settings.prometheus_bearer_token,
        bearer_token_file=settings.prometheus_bearer_token_file,
        headers=dict(settings.prometheus_headers),
        ca_file=settings.prometheus_ca_file,
        cert_file=settings.prometheus_cert_file,
        key_file=settings.prometheus_key_file,
        insecure_skip_verify=settings.prometheus_insecure_skip_verify,
        remote_write_url=settings.prometheus_remote_write_url,
    ).validate("Prometheus settings", lambda attribute: f"PROMETHEUS_{attribute.upper()}")


def project_overrides(
    text: str, origin: str, base: PrometheusAccess
) -> dict[str, PrometheusAccess]:
    """Per-project access; each starts from nothing but the URL, so credentials never mix."""
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML: {yaml_problem(exc)}") from None
    projects = document.get("projects") if isinstance(document, Mapping) else None
    if not isinstance(projects, Mapping):
        raise ConfigError(f"{origin}: expected 'projects:' mapping project names to settings")
    overrides = {}
    for project, raw in projects.items():
        where = f"{origin} project {project!r}"
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: must be a mapping")
        overrides[str(project)] = _project_access(raw, where, base).validate(where)
    return overrides


_KEYS = {
    "url",
    "username",
    "password",
    "password_file",
    "bearer_token",
    "bearer_token_file",
    "headers",
    "ca_file",
    "cert_file",
    "key_file",
    "insecure_skip_verify",
    "remote_write_url",
}


def _project_access(raw: Mapping[str, Any], where: str, base: PrometheusAccess) -> PrometheusAccess:
    unknown = set(raw) - _KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")

    def text(key: str) -> str | None:
        value = raw.get(key)
        return None if value is None else str(value)

    def path(key: str) -> Path | None:
        value = text(key)
        return None if value is None else Path(value)

    password = text("password")
    password_file = path("password_file")
    if password is not None and password_file is not None:
        raise ConfigError(f"{where}: give password or password_file, not both")
    if (password is not None or password_file is not None) and text("username") is None:
        # Basic auth needs the user; the password alone would be silently never sent.
        raise ConfigError(f"{where}: password or password_file is set but username is not")
    if password_file is not None:
        password = read_secret_file(password_file, f"{where}: password_file")
    headers = raw.get("headers") or {}
    if not isinstance(headers, Mapping):
        raise ConfigError(f"{where}: headers must map names to values")
    token = text("bearer_token")
    return replace(
        PrometheusAccess(url=(text("url") or base.url).rstrip("/")),
        username=text("username"),
        password=Secret(password) if password is not None else None,
        bearer_token=Secret(token) if token is not None else None,
        bearer_token_file=path("bearer_token_file"),
        headers={str(k): str(v) for k, v in headers.items()},
        ca_file=path("ca_file"),
        cert_file=path("cert_file"),
        key_file=path("key_file"),
        insecure_skip_verify=_flag(raw.get("insecure_skip_verify", False), where),
        remote_write_url=text("remote_write_url"),
    )


def _flag(value: object, where: str) -> bool:
    # A quoted "false" is a non-empty string, which bool() would turn into True.
    if isinstance(value, bool):
        return value
    return parse_bool(str(value), f"{where}: insecure_skip_verify")
