"""``SimulatedKubernetes``: the simulated API server and operator as one async context manager."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

from devkit._http import LoopbackSite
from devkit.kube.api import ApiState, build_app
from devkit.kube.images import ImageTable
from devkit.kube.operator import SimulatedOperator
from devkit.kube.pods import ContainerProcess, pod_home
from devkit.kube.resources import ResourceType
from devkit.kube.schema import load_crd_schema
from devkit.kube.store import Store

DEFAULT_NAMESPACE = "keptn"


class SimulatedKubernetes:
    """``async with SimulatedKubernetes(images=...) as kube:`` an API server at ``kube.url``.

    ``images`` maps container images to local k6 binaries (default: ``grafana/k6:*`` → the
    venv's k6); ``runner_timeout`` bounds every k6 process (killed past it, exit code 137).
    """

    def __init__(
        self,
        *,
        namespaces: Iterable[str] = (DEFAULT_NAMESPACE,),
        images: ImageTable | None = None,
        runner_timeout: float = 120.0,
        init_timeout: float = 60.0,
    ) -> None:
        self.namespaces = tuple(namespaces)
        self.token = secrets.token_urlsafe(24)
        self.store = Store()
        self._images = images
        self._runner_timeout = runner_timeout
        self._init_timeout = init_timeout
        self._workdir: Path | None = None
        self._operator: SimulatedOperator | None = None
        self._site: LoopbackSite | None = None
        self._state: ApiState | None = None

    @property
    def namespace(self) -> str:
        return self.namespaces[0]

    @property
    def url(self) -> str:
        if self._site is None:
            raise RuntimeError("the simulated Kubernetes is not running")
        return self._site.url

    async def __aenter__(self) -> Self:
        self._workdir = Path(tempfile.mkdtemp(prefix="kube-sim-"))
        try:
            self._operator = SimulatedOperator(
                self.store,
                self._images or ImageTable.stock(),
                self._workdir,
                runner_timeout=self._runner_timeout,
                init_timeout=self._init_timeout,
            )
            self._state = state = ApiState(
                self.store,
                load_crd_schema(),
                frozenset(self.namespaces),
                self.token,
                self._operator,
            )
            self._site = LoopbackSite(build_app(state))
            await self._site.start()
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        failures = self._operator.failures if self._operator else []
        await self._close()
        if failures and exc is None:
            raise RuntimeError(f"the simulated operator failed: {failures[0]!r}") from failures[0]

    async def _close(self) -> None:
        self.store.cut_watches()  # open watch streams would hold up the server's shutdown
        try:
            if self._site is not None:
                await self._site.stop()
                self._site = None
        finally:
            try:
                if self._operator is not None:
                    await self._operator.close()
            finally:
                if self._workdir is not None:
                    shutil.rmtree(self._workdir, ignore_errors=True)
                    self._workdir = None

    def kubeconfig(
        self, path: Path, *, namespace: str | None = None, token: str | None = None
    ) -> Path:
        """Write a kubeconfig for this server (plain http, bearer token) and return its path."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "sim", "cluster": {"server": self.url}}],
            "users": [{"name": "sim", "user": {"token": token or self.token}}],
            "contexts": [
                {
                    "name": "sim",
                    "context": {
                        "cluster": "sim",
                        "user": "sim",
                        "namespace": namespace or self.namespace,
                    },
                }
            ],
            "current-context": "sim",
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return path

    # --- for tests to look inside -----------------------------------------------------------

    def objects(self, resource: ResourceType, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.store.objects(resource, namespace)

    def k6_processes(self) -> list[ContainerProcess]:
        """Every container process started so far (initializers' and runners'), ended or not."""
        return self._operator.processes() if self._operator else []

    def pod_dir(self, namespace: str, pod: str) -> Path:
        """The pod's own working directory (its k6's cwd and HOME): a relative path in a
        TestRun's args, such as ``--out json=samples.json``, lands here, one file per runner
        as in separate pods. Removed when the context exits."""
        if self._workdir is None:
            raise RuntimeError("the simulated Kubernetes is not running")
        return pod_home(self._workdir, namespace, pod)

    def k6_running(self) -> bool:
        return self._operator.k6_running() if self._operator else False

    async def k6_stopped(self, within: float = 5.0) -> bool:
        """Whether every k6 runner has exited, waiting up to ``within`` seconds: a deleted
        pod's k6 gets SIGTERM and exits within moments, not at once."""
        deadline = time.monotonic() + within
        while self.k6_running() and time.monotonic() < deadline:  # noqa: ASYNC110 (processes, polled)
            await asyncio.sleep(0.1)
        return not self.k6_running()

    def deny(self, subresource: str) -> None:
        """Answer requests for ``subresource`` (``services/proxy``) 403 Forbidden from now on,
        as the real server does for a client whose role lacks it."""
        if self._state is None:
            raise RuntimeError("the simulated Kubernetes is not running")
        self._state.denied.add(subresource)

    def cut_watches(self) -> int:
        """End every open watch stream now; returns how many were open."""
        return self.store.cut_watches()

    def compact(self) -> int:
        """Forget the event history: a watch from an older resourceVersion gets 410 Gone."""
        return self.store.compact()
