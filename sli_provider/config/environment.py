"""Settings from the environment, the CLI's flags and secret files: :func:`settings_from`."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import fields
from functools import cache
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_origin, get_type_hints

from sli_provider.config.settings import Settings
from sli_provider.config.values import ConfigError, LogLevel, Secret, Setting

# Set in every pod by the kubelet: the service runs in a cluster and uses its service account.
_IN_CLUSTER_ENV = "KUBERNETES_SERVICE_HOST"


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
