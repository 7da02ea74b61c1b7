"""The thin adapter between the back-end and the Kubernetes API (lightkube, async).

Only what a distributed run needs: create the TestRun and its ConfigMap, follow the TestRun's
``status.stage`` by watch, read the runner pods and their logs, delete TestRuns. API errors
become ``KubeError`` (a ``RunnerError``) with the API server's own message.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import httpx2 as httpx
from lightkube import ApiError, AsyncClient, ConfigError, KubeConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Pod
from lightkube.types import CascadeType, PatchType

from sli_provider.runner.backend import RunnerError

log = logging.getLogger(__name__)

TestRun = create_namespaced_resource("k6.io", "v1alpha1", "TestRun", "testruns")
TERMINAL_STAGES = frozenset({"finished", "error"})
# One request to the API server; a watch is re-opened at this interval (server-side) too.
REQUEST_TIMEOUT_SECONDS = 10.0
WATCH_WINDOW_SECONDS = 60
_RECONNECT_PAUSE_SECONDS = 0.5
_WATCH_SLACK_SECONDS = 15


# Every call this adapter makes, as RBAC rules (api group, resource) -> verbs; the chart's Role
# grants exactly these (tests/test_chart_k6_operator.py), in the TestRuns' namespace only.
RBAC_RULES: dict[tuple[str, str], frozenset[str]] = {
    ("k6.io", "testruns"): frozenset({"create", "get", "list", "watch", "delete"}),
    ("", "configmaps"): frozenset({"create", "patch", "delete"}),
    ("", "pods"): frozenset({"list"}),
    ("", "pods/log"): frozenset({"get"}),
    # k6's REST API on each runner, through the API server's service proxy: stop a run.
    ("", "services/proxy"): frozenset({"patch"}),
}
# A runner's log is read from its end only: its summary is there, a chatty script's output
# before it could be any size. Lines beyond LOG_LINE_BYTES are cut, and at most LOG_TAIL_BYTES
# of the last lines are kept, so one runner's log never holds more than that in memory.
LOG_TAIL_LINES = 400
LOG_LINE_BYTES = 4096
LOG_TAIL_BYTES = 256 * 1024
# k6's REST API body that stops a run (k6-operator's stop job sends the same).
STOP_BODY = {"data": {"type": "status", "id": "default", "attributes": {"stopped": True}}}
K6_API_PORT = 6565


class KubeError(RunnerError):
    """The Kubernetes API refused or failed a call; the message says which and why."""


@dataclass(frozen=True)
class RunnerPodState:
    """One runner pod as the API shows it; ``exit_code`` is None while it has not ended."""

    name: str
    instance: int | None
    exit_code: int | None
    started_at: float | None
    finished_at: float | None
    reason: str | None


@dataclass(frozen=True)
class StageReport:
    stage: str
    messages: tuple[str, ...]


def connect(kubeconfig: Path | None, namespace: str | None) -> KubeApi:
    """A client from ``kubeconfig``, or in-cluster from the pod's service account when None."""
    try:
        config = (
            KubeConfig.from_service_account()
            if kubeconfig is None
            else KubeConfig.from_file(kubeconfig)
        )
    except (ConfigError, OSError, KeyError) as exc:
        where = "the pod's service account" if kubeconfig is None else str(kubeconfig)
        raise KubeError(f"cannot read the Kubernetes access from {where}: {exc}") from None
    client = AsyncClient(
        config,
        namespace=namespace,
        timeout=httpx.Timeout(REQUEST_TIMEOUT_SECONDS),
        field_manager="k6-sli-provider",
    )
    return KubeApi(client)


def _api_error(action: str, exc: Exception) -> KubeError:
    if isinstance(exc, ApiError):
        return KubeError(
            f"cannot {action}: {exc.status.code} {exc.status.reason}: {exc.status.message}"
        )
    return KubeError(f"cannot {action}: {type(exc).__name__}: {exc}")


class KubeApi:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        # lightkube's overloads do not type generic (CRD) resources; the calls are the same.
        self._untyped = cast(Any, client)

    @property
    def namespace(self) -> str:
        namespace: str = self._client.namespace
        return namespace

    async def aclose(self) -> None:
        await self._client.close()

    async def create_test_run(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """The TestRun as created (with its uid)."""
        try:
            created = await self._untyped.create(TestRun.from_dict(dict(manifest)))
        except (ApiError, httpx.HTTPError) as exc:
            raise _api_error(f"create the TestRun {manifest['metadata']['name']}", exc) from None
        as_dict: dict[str, Any] = created.to_dict()
        return as_dict

    async def create_config_map(self, manifest: Mapping[str, Any]) -> None:
        config_map = cast(ConfigMap, ConfigMap.from_dict(dict(manifest)))
        try:
            await self._client.create(config_map)
        except (ApiError, httpx.HTTPError) as exc:
            raise _api_error(f"create the ConfigMap {manifest['metadata']['name']}", exc) from None

    async def own_config_map(self, name: str, owner: Mapping[str, Any]) -> None:
        """Make ``owner`` the ConfigMap's owner, so deleting it deletes the ConfigMap."""
        patch = {"metadata": {"ownerReferences": [dict(owner)]}}
        try:
            await self._client.patch(ConfigMap, name, patch, patch_type=PatchType.MERGE)
        except (ApiError, httpx.HTTPError) as exc:
            raise _api_error(f"set the owner of the ConfigMap {name}", exc) from None

    async def delete_config_map(self, name: str) -> None:
        try:
            await self._client.delete(ConfigMap, name)
        except ApiError as exc:
            if exc.status.code != 404:
                raise _api_error(f"delete the ConfigMap {name}", exc) from None
        except httpx.HTTPError as exc:
            raise _api_error(f"delete the ConfigMap {name}", exc) from None

    async def wait_for_end(self, name: str) -> StageReport:
        """Until the TestRun's stage is finished or error: get, then watch from that version;
        a dropped stream is re-opened from the last version seen, a 410 Gone (version too
        old) by a fresh get. The caller bounds it with its deadline."""
        selector = {"metadata.name": name}
        while True:
            try:
                current = await self._untyped.get(TestRun, name)
            except ApiError as exc:
                raise _api_error(f"read the TestRun {name}", exc) from None
            except httpx.HTTPError as exc:
                log.warning("reading TestRun %s failed (%s); retrying", name, exc)
                await asyncio.sleep(_RECONNECT_PAUSE_SECONDS)
                continue
            report = _stage(current)
            if report is not None:
                return report
            version = _version(current)
            try:
                # The server ends each watch after WATCH_WINDOW_SECONDS; a connection that died
                # without a word would otherwise be waited on until the run's deadline.
                async with asyncio.timeout(WATCH_WINDOW_SECONDS + _WATCH_SLACK_SECONDS):
                    async for kind, obj in self._untyped.watch(
                        TestRun,
                        fields=selector,
                        resource_version=version,
                        server_timeout=WATCH_WINDOW_SECONDS,
                    ):
                        if kind == "DELETED":
                            raise KubeError(f"the TestRun {name} was deleted by someone else")
                        report = _stage(obj)
                        if report is not None:
                            return report
            except TimeoutError:
                log.debug("watch of TestRun %s went quiet; reading it afresh", name)
            except ApiError as exc:
                if exc.status.code != 410:
                    raise _api_error(f"watch the TestRun {name}", exc) from None
                log.info("watch of TestRun %s expired (410 Gone); reading it afresh", name)
            except httpx.HTTPError as exc:
                log.warning("watch of TestRun %s broke (%s); reconnecting", name, exc)
                await asyncio.sleep(_RECONNECT_PAUSE_SECONDS)

    async def runner_pods(self, name: str, *, runners_only: bool = True) -> list[RunnerPodState]:
        """The TestRun's runner pods (or all its pods: initializer and starter too)."""
        labels = {"app": "k6", "k6_cr": name, **({"runner": "true"} if runners_only else {})}
        try:
            pods = [pod async for pod in self._untyped.list(Pod, labels=labels)]
        except (ApiError, httpx.HTTPError) as exc:
            raise _api_error(f"list the runner pods of {name}", exc) from None
        return sorted(
            (_pod_state(pod, name) for pod in pods), key=lambda p: (p.instance or 0, p.name)
        )

    async def pod_log(self, pod: str) -> list[str] | None:
        """The last LOG_TAIL_LINES lines of the pod's log (at most LOG_TAIL_BYTES); None when it
        cannot be read (the verdict then says so)."""
        kept: deque[str] = deque()
        size = 0
        try:
            async for line in self._untyped.log(pod, newlines=False, tail_lines=LOG_TAIL_LINES):
                kept.append(line[:LOG_LINE_BYTES])
                size += len(kept[-1])
                while size > LOG_TAIL_BYTES:
                    size -= len(kept.popleft())
            return list(kept)
        except (ApiError, httpx.HTTPError) as exc:
            log.warning("cannot read the log of runner pod %s: %s", pod, exc)
            return None

    async def stop_runner(self, service: str) -> None:
        """Stop one runner's test through k6's REST API (``PATCH /v1/status``), reached through
        the API server's service proxy to the runner's Service; ``KubeError`` when it did not
        answer 200."""
        path = (
            f"/api/v1/namespaces/{self.namespace}/services/{service}:{K6_API_PORT}/proxy/v1/status"
        )
        # lightkube has no call for a subresource path; its own HTTP client (base URL, auth,
        # timeouts) sends it.
        http: httpx.AsyncClient = self._untyped._client._client
        try:
            response = await http.patch(path, json=STOP_BODY)
        except httpx.HTTPError as exc:
            raise _api_error(f"stop the runner behind {service}", exc) from None
        if response.status_code != 200:
            text = response.text[:300]
            raise KubeError(
                f"cannot stop the runner behind {service}: {response.status_code} {text}"
            )

    async def delete_test_run(self, name: str) -> bool:
        """False when it was already gone. Foreground propagation: its Jobs, pods and the
        ConfigMap go with it."""
        try:
            await self._untyped.delete(TestRun, name, cascade=CascadeType.FOREGROUND)
        except ApiError as exc:
            if exc.status.code == 404:
                return False
            raise _api_error(f"delete the TestRun {name}", exc) from None
        except httpx.HTTPError as exc:
            raise _api_error(f"delete the TestRun {name}", exc) from None
        return True

    async def test_runs(self, labels: Mapping[str, str]) -> list[str]:
        """Names of the TestRuns carrying ``labels``."""
        try:
            found = [obj async for obj in self._untyped.list(TestRun, labels=dict(labels))]
        except (ApiError, httpx.HTTPError) as exc:
            raise _api_error("list TestRuns", exc) from None
        return [_name(obj) for obj in found]


def _name(obj: Any) -> str:
    metadata = obj.metadata
    name = metadata.name if isinstance(metadata, ObjectMeta) else metadata["name"]
    return str(name)


def _version(obj: Any) -> str | None:
    metadata = obj.metadata
    version = (
        metadata.resourceVersion
        if isinstance(metadata, ObjectMeta)
        else metadata.get("resourceVersion")
    )
    return str(version) if version else None


def _stage(obj: Any) -> StageReport | None:
    status = obj.get("status") or {}
    stage = status.get("stage")
    if stage not in TERMINAL_STAGES:
        return None
    messages = tuple(
        str(condition["message"])
        for condition in status.get("conditions") or []
        if condition.get("message")
    )
    return StageReport(stage, messages)


def _timestamp(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _pod_state(pod: Pod, test_run: str) -> RunnerPodState:
    name = str(pod.metadata.name) if pod.metadata and pod.metadata.name else "?"
    # The operator names runner i's Job <testrun>-<i>; its pod is <job>-<random>.
    job = (pod.metadata.labels or {}).get("job-name", name) if pod.metadata else name
    digits = job.removeprefix(f"{test_run}-").partition("-")[0]
    instance = int(digits) if digits.isdigit() else None
    statuses = (pod.status.containerStatuses if pod.status else None) or []
    k6 = next((s for s in statuses if s.name == "k6"), statuses[0] if statuses else None)
    terminated = k6.state.terminated if k6 is not None and k6.state is not None else None
    if terminated is None:
        waiting = k6.state.waiting if k6 is not None and k6.state is not None else None
        reason = (
            waiting.reason if waiting is not None else (pod.status.phase if pod.status else None)
        )
        return RunnerPodState(name, instance, None, None, None, reason)
    return RunnerPodState(
        name,
        instance,
        terminated.exitCode,
        _timestamp(terminated.startedAt),
        _timestamp(terminated.finishedAt),
        terminated.reason,
    )
