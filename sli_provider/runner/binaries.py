"""The k6 binaries the operator configured, what each provides, and the choice for a run.

``K6_BINARY`` is the binary named ``default``; ``K6_BINARIES`` adds ``name=path`` pairs (xk6
builds). Each is asked what it is at start-up (``k6 version --json`` on k6 >= 1.0, the text of
``k6 version`` on older ones) and again before a run when its file changed. The choice happens
in :meth:`K6Registry.choose` only: a named binary (a workload's ``k6: <name>``), else the default
when it provides every extension the script imports, else the first configured one that does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sli_provider.config import ConfigError
from sli_provider.runner.backend import K6StartError
from sli_provider.runner.extensions import EXTENSION_PREFIX

DEFAULT_NAME = "default"
PROBE_TIMEOUT_SECONDS = 10.0
BINARY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# "k6 v1.1.0 (commit/…)" or "k6-linux-amd64 v1.7.0 (go1.25.0, linux/amd64)": the binary's own
# file name comes first, so only the version token is matched.
_TEXT_VERSION = re.compile(r"^\S+\s+(v\d+\.\d+\.\d+\S*)", re.MULTILINE)
# "  github.com/grafana/xk6-faker v0.4.4, k6/x/faker [js]"
_TEXT_EXTENSION = re.compile(r"^\s+\S+\s+\S+,\s+(k6/x/\S+)\s+\[js\]", re.MULTILINE)
HOW_TO_GET_ONE = (
    "build a k6 that provides them with xk6 (xk6 build --with <extension module>) and add it "
    "to K6_BINARIES as name=path (see docs/runner.md, 'k6 extensions')"
)


class K6BinaryError(ConfigError):
    """A configured k6 binary cannot be used; the message names it and its path."""


class NoSuitableK6(K6StartError):
    """No configured k6 provides what the script imports (or the workload named none that
    exists); no k6 was started."""


@dataclass(frozen=True)
class FileStamp:
    mtime_ns: int
    size: int


@dataclass(frozen=True)
class K6Binary:
    name: str
    path: str
    version: str
    # The k6/x/... imports its extensions provide.
    provides: frozenset[str]
    has_deps: bool
    stamp: FileStamp

    def describe(self) -> str:
        provided = ", ".join(sorted(self.provides)) or "no extensions"
        return f"{self.name} ({self.path}, k6 {self.version}): {provided}"


def _stamp(path: str) -> FileStamp:
    stat = os.stat(path)
    return FileStamp(stat.st_mtime_ns, stat.st_size)


def _ask(path: str, *args: str) -> subprocess.CompletedProcess[str]:
    # Nothing of this process's environment: a probe must not try to download anything.
    env = {"K6_AUTO_EXTENSION_RESOLUTION": "false", "K6_NO_USAGE_REPORT": "true"}
    return subprocess.run(  # noqa: S603 - the operator's configured path, no shell
        [path, *args],
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_SECONDS,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def parse_version_json(text: str) -> tuple[str, frozenset[str]] | None:
    """``k6 version --json`` (k6 >= 1.0) → version and provided imports; None if not that."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("version"), str):
        return None
    provides: set[str] = set()
    for extension in document.get("extensions") or []:
        if isinstance(extension, dict):
            provides.update(
                i for i in extension.get("imports") or [] if str(i).startswith(EXTENSION_PREFIX)
            )
    return document["version"], frozenset(provides)


def parse_version_text(text: str) -> tuple[str, frozenset[str]] | None:
    """The text of ``k6 version`` (any k6) → version and provided imports; None if not k6's."""
    match = _TEXT_VERSION.search(text)
    if match is None:
        return None
    return match.group(1), frozenset(_TEXT_EXTENSION.findall(text))


def probe(name: str, path: str) -> K6Binary:
    """Ask the binary at ``path`` what it is; ``K6BinaryError`` when it does not answer like k6."""
    where = f"k6 binary {name!r} ({path})"
    try:
        stamp = _stamp(path)
        answer = _ask(path, "version", "--json")
        parsed = parse_version_json(answer.stdout) if answer.returncode == 0 else None
        if parsed is None:
            answer = _ask(path, "version")
            parsed = parse_version_text(answer.stdout) if answer.returncode == 0 else None
        if parsed is None:
            raise K6BinaryError(f"{where} does not answer 'version' like k6")
        has_deps = _ask(path, "deps", "--help").returncode == 0
    except subprocess.TimeoutExpired:
        raise K6BinaryError(f"{where} did not answer within {PROBE_TIMEOUT_SECONDS:g} s") from None
    except OSError as exc:
        raise K6BinaryError(f"{where} cannot be run: {exc.strerror or exc}") from None
    version, provides = parsed
    return K6Binary(name, path, version, provides, has_deps, stamp)


class K6Registry:
    """The probed binaries, the default first, in the order the operator configured them."""

    def __init__(self, binaries: Iterable[K6Binary]) -> None:
        self._binaries = {b.name: b for b in binaries}

    @classmethod
    def probe_all(cls, paths: Mapping[str, str]) -> K6Registry:
        return cls(probe(name, path) for name, path in paths.items())

    @property
    def binaries(self) -> tuple[K6Binary, ...]:
        return tuple(self._binaries.values())

    def including(self, name: str, path: str) -> K6Registry:
        """This registry plus one more binary (``sli-provider run --k6 PATH``)."""
        return K6Registry([*self._binaries.values(), probe(name, path)])

    def refresh(self) -> None:
        """Re-probe each binary whose file changed (or vanished) since it was last asked."""
        for name, binary in list(self._binaries.items()):
            try:
                unchanged = _stamp(binary.path) == binary.stamp
            except OSError:
                unchanged = False
            if not unchanged:
                try:
                    self._binaries[name] = probe(name, binary.path)
                except K6BinaryError as exc:
                    raise K6StartError(f"{exc} (its file changed since start-up)") from None

    def deps_binary(self) -> K6Binary | None:
        """A binary that can list a script's dependencies itself (``k6 deps``)."""
        return next((b for b in self._binaries.values() if b.has_deps), None)

    def choose(
        self,
        needed: frozenset[str],
        requested: str | None = None,
        *,
        auto_extension_resolution: bool = False,
    ) -> K6Binary:
        """The binary for a script that imports ``needed``; ``NoSuitableK6`` when none fits.

        With ``auto_extension_resolution`` a binary that lacks imports is started anyway (the
        named one, else the default): k6 >= 1.2 then fetches a build that has them.
        """
        if requested is not None:
            binary = self._binaries.get(requested)
            if binary is None:
                known = ", ".join(self._binaries) or "none"
                raise NoSuitableK6(
                    f"the workload asks for k6 {requested!r}, which is not configured "
                    f"(K6_BINARIES names: {known})"
                )
            candidates = [binary]
        else:
            candidates = list(self._binaries.values())
        for binary in candidates:
            if needed <= binary.provides:
                return binary
        if auto_extension_resolution and candidates:
            return candidates[0]
        if requested is not None:
            problem = f"k6 {requested!r} lacks " + ", ".join(
                sorted(needed - candidates[0].provides)
            )
        else:
            provided = set().union(*(b.provides for b in candidates))
            nobody = sorted(needed - provided)
            problem = "no configured k6 provides " + (
                ", ".join(nobody) if nobody else "all of them at once"
            )
        offered = "; ".join(b.describe() for b in self._binaries.values()) or "none"
        raise NoSuitableK6(
            f"the script imports {', '.join(sorted(needed))} and {problem}; no k6 was started. "
            f"Configured k6 binaries: {offered}. To run it, {HOW_TO_GET_ONE}"
        )


def configured_paths(default_path: str | None, binaries: Mapping[str, str]) -> dict[str, str]:
    """``default`` (K6_BINARY or the k6 found) first, then K6_BINARIES in their order."""
    paths = {DEFAULT_NAME: default_path} if default_path else {}
    for name, path in binaries.items():
        if name == DEFAULT_NAME:
            raise ConfigError("K6_BINARIES: the name 'default' is K6_BINARY's; choose another")
        if not BINARY_NAME.fullmatch(name):
            raise ConfigError(f"K6_BINARIES: {name!r} is not a name (letters, digits, _ . -)")
        if not path:
            raise ConfigError(f"K6_BINARIES: {name!r} has no path")
        paths[name] = path
    return paths
