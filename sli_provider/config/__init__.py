"""The service's one configuration object, built at the edge from the environment and flags.

Nothing else in the package reads ``os.environ``: the CLI calls :func:`settings_from` with the
environment and the parsed flags, and passes the result down. Values arrive typed (numbers,
booleans, paths, a header mapping, a log level); one that cannot be typed is a :class:`ConfigError`
naming its variable. Secrets are never flags, which every user of the host can read in ``ps``:
they come from the environment, or from a file named by ``<VARIABLE>_FILE`` (the flags: flags.py).
"""

from sli_provider.config.environment import (
    default_kubeconfig,
    has_own_file_setting,
    parse_bool,
    parse_headers,
    read_secret_file,
    settings_from,
)
from sli_provider.config.settings import Settings
from sli_provider.config.values import (
    DISTRIBUTOR_URL,
    K6_RUNNER_IMAGE,
    NATS_DELIVERIES,
    ConfigError,
    LogLevel,
    Secret,
    Setting,
)

__all__ = [
    "DISTRIBUTOR_URL",
    "K6_RUNNER_IMAGE",
    "NATS_DELIVERIES",
    "ConfigError",
    "LogLevel",
    "Secret",
    "Setting",
    "Settings",
    "default_kubeconfig",
    "has_own_file_setting",
    "parse_bool",
    "parse_headers",
    "read_secret_file",
    "settings_from",
]
