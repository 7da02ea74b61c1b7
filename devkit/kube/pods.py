"""The kubelet's part: a pod's container env, its volumes, and its k6 process.

A container's env is built as the kubelet builds it: ``envFrom`` first, then ``env`` in order
(``value`` with ``$(VAR)`` references expanded, ``valueFrom.secretKeyRef``/``configMapKeyRef``
resolved from the Secrets and ConfigMaps the server holds, ``fieldRef`` for the pod's own
metadata). A missing Secret or key that is not ``optional`` keeps the container waiting in
``CreateContainerConfigError``, as on a node. Nothing of the test process's environment
reaches k6 beyond what a container gets: ``PATH``, ``HOME``, ``HOSTNAME`` and the service env.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from devkit.kube.resources import CONFIGMAPS, SECRETS
from devkit.kube.status import ApiError
from devkit.kube.store import Store, now_rfc3339

_REFERENCE = re.compile(r"\$\$|\$\(([-._a-zA-Z0-9]+)\)")
# What every container sees besides its spec's env (the kubernetes Service's env vars).
_CLUSTER_ENV = {
    "KUBERNETES_SERVICE_HOST": "10.96.0.1",
    "KUBERNETES_SERVICE_PORT": "443",
    "KUBERNETES_PORT": "tcp://10.96.0.1:443",
}
_KILL_WAIT_SECONDS = 10.0


def pod_home(workdir: Path, namespace: str, pod: str) -> Path:
    """A pod's own working directory (cwd and HOME of its containers) under ``workdir``; its
    volumes sit beside it (the ConfigMap volume in ``../test``)."""
    return workdir / namespace / pod / "home"


class ContainerConfigError(Exception):
    """The container cannot be created: a referenced Secret/ConfigMap (key) does not exist."""


def expand_references(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: defined names are replaced, ``$$`` escapes, others stay."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _REFERENCE.sub(replace, text)


def _lookup(store: Store, namespace: str, kind: str, name: str) -> dict[str, str] | None:
    resource = SECRETS if kind == "secret" else CONFIGMAPS
    try:
        obj = store.get(resource, namespace, name)
    except ApiError:
        return None
    if kind == "secret":
        return {
            key: base64.b64decode(value).decode("utf-8", errors="replace")
            for key, value in (obj.get("data") or {}).items()
        }
    data = dict(obj.get("data") or {})
    for key, value in (obj.get("binaryData") or {}).items():
        data[key] = base64.b64decode(value).decode("utf-8", errors="replace")
    return data


def container_env(
    store: Store, namespace: str, pod: Mapping[str, Any], container: Mapping[str, Any], home: Path
) -> dict[str, str]:
    env: dict[str, str] = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(home),
        "HOSTNAME": pod["spec"].get("hostname") or pod["metadata"]["name"],
        **_CLUSTER_ENV,
    }
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, field in (("secret", "secretRef"), ("configmap", "configMapRef")):
            if field not in source:
                continue
            ref = source[field]
            data = _lookup(store, namespace, kind, ref.get("name", ""))
            if data is None:
                if ref.get("optional"):
                    continue
                raise ContainerConfigError(f'{kind} "{ref.get("name", "")}" not found')
            env.update({prefix + key: value for key, value in data.items()})
    for var in container.get("env") or []:
        value = _env_value(store, namespace, pod, var, env)
        if value is not None:
            env[var["name"]] = value
    return env


def _env_value(
    store: Store,
    namespace: str,
    pod: Mapping[str, Any],
    var: Mapping[str, Any],
    env: Mapping[str, str],
) -> str | None:
    if "valueFrom" not in var:
        return expand_references(str(var.get("value", "")), env)
    source = var["valueFrom"]
    for kind, field in (("secret", "secretKeyRef"), ("configmap", "configMapKeyRef")):
        if field in source:
            ref = source[field]
            data = _lookup(store, namespace, kind, ref.get("name", ""))
            if data is not None and ref.get("key") in data:
                return data[ref["key"]]
            if ref.get("optional"):
                return None
            if data is None:
                raise ContainerConfigError(f'{kind} "{ref.get("name", "")}" not found')
            raise ContainerConfigError(
                f"couldn't find key {ref.get('key')} in {'Secret' if kind == 'secret' else 'ConfigMap'} "
                f"{namespace}/{ref.get('name')}"
            )
    if "fieldRef" in source:
        current: Any = pod
        for step in source["fieldRef"].get("fieldPath", "").split("."):
            current = current.get(step, "") if isinstance(current, Mapping) else ""
        return str(current)
    return None


def write_volume(directory: Path, configmap: Mapping[str, Any]) -> None:
    """A ConfigMap volume: one file per ``data``/``binaryData`` key."""
    directory.mkdir(parents=True, exist_ok=True)
    for key, value in (configmap.get("data") or {}).items():
        (directory / key).write_text(str(value), encoding="utf-8")
    for key, value in (configmap.get("binaryData") or {}).items():
        (directory / key).write_bytes(base64.b64decode(value))


class ContainerProcess:
    """A container's main process: a real process in its own process group, output to a file."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._process: asyncio.subprocess.Process | None = None
        self.argv: tuple[str, ...] = ()
        self.env: dict[str, str] = {}
        self.started_at: str | None = None
        self.finished_at: str | None = None

    async def start(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> None:
        self.argv = tuple(argv)
        self.env = dict(env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log: BinaryIO
        with self.log_path.open("wb") as log:
            self._process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,  # its own group, so killing it takes its children too
            )
        self.started_at = now_rfc3339()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def returncode(self) -> int | None:
        return self._process.returncode if self._process else None

    async def wait(self, timeout: float) -> int:
        """The exit code; past ``timeout`` seconds the process is killed (exit code 137)."""
        if self._process is None:
            raise RuntimeError("the container was never started")
        try:
            await asyncio.wait_for(self._process.wait(), timeout)
        except TimeoutError:
            await self.kill()
        finally:
            if self._process.returncode is None:  # cancelled: the pod goes with its owner
                await asyncio.shield(self.kill())
        self.finished_at = now_rfc3339()
        return _exit_code(self._process.returncode)

    async def kill(self) -> None:
        if self._process is None or self._process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        await asyncio.wait_for(self._process.wait(), _KILL_WAIT_SECONDS)

    def output(self) -> bytes:
        try:
            return self.log_path.read_bytes()
        except FileNotFoundError:
            return b""


def _exit_code(returncode: int | None) -> int:
    # A container killed by a signal reports 128 + the signal, as the container runtime does.
    if returncode is None:
        return 137
    return 128 - returncode if returncode < 0 else returncode
