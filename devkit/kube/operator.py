"""k6-operator v1.6 played against the simulated API server, with real k6 processes as runners.

For each TestRun (``internal/controller/testrun_controller.go``): the argv is validated
(stage ``error`` if k6-operator's CLI parser refuses it); conditions are initialised; the
initializer Job runs ``k6 archive`` and ``k6 inspect --execution-requirements`` on the script
(stage ``initialization``; a failure or ``maxVUs`` < parallelism → ``error``); ``initialized``;
one runner Job and Pod per instance, each a real k6 started with the operator's exact argv
(``created``); once every runner pod runs and its REST API answers, the starter resumes them all
(``started``); when every runner Job is done, ``stopped`` then ``finished`` — also when runners
exited non-zero, as the real operator does. ``cleanup: post`` deletes the TestRun afterwards.
Deleting the TestRun (or a runner pod) kills its k6 processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, NoReturn

import aiohttp

from devkit.k6multi import operator_args, resume_all
from devkit.kube import workloads
from devkit.kube.images import DEFAULT_RUNNER_IMAGE, ImageTable
from devkit.kube.k6cli import InvalidArguments, argv_of, parse_cli, runner_argv
from devkit.kube.pods import (
    ContainerConfigError,
    ContainerProcess,
    container_env,
    expand_references,
    write_volume,
)
from devkit.kube.resources import CONFIGMAPS, JOBS, PODS, TESTRUNS
from devkit.kube.status import ApiError
from devkit.kube.store import Event, Store, now_rfc3339
from devkit.ports import LOOPBACK, free_port

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.1
# Stands for the script path in an argv until the pod's volume is known.
_SCRIPT = "\0script\0"
_HTTP_TIMEOUT = aiohttp.ClientTimeout(total=5)
# The operator's condition reasons (pkg/types/conditions.go).
_REASONS = {
    ("CloudTestRun", "Unknown"): "TestRunTypeUnknown",
    ("CloudTestRun", "False"): "TestRunTypeOSS",
    ("TestRunRunning", "Unknown"): "TestRunPreparation",
    ("TestRunRunning", "True"): "TestRunRunningTrue",
    ("TestRunRunning", "False"): "TestRunRunningFalse",
    ("TeardownExecuted", "False"): "TeardownExecutedFalse",
    ("CloudTestRunAborted", "False"): "CloudTestRunAbortedFalse",
    ("CloudPLZTestRun", "False"): "CloudPLZTestRunFalse",
}


class _Stop(Exception):
    """The TestRun ended in stage ``error``."""


class SimulatedOperator:
    def __init__(
        self,
        store: Store,
        images: ImageTable,
        workdir: Path,
        *,
        runner_timeout: float,
        init_timeout: float,
    ) -> None:
        self._store = store
        self._images = images
        self._workdir = workdir
        self._runner_timeout = runner_timeout
        self._init_timeout = init_timeout
        self._runs: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._chores: set[asyncio.Task[None]] = set()
        # Every container process by (namespace, pod name), kept after it ends for pods/log.
        self._containers: dict[tuple[str, str], list[ContainerProcess]] = {}
        self._waiting: dict[tuple[str, str], str] = {}
        self.failures: list[BaseException] = []
        store.subscribe(self._on_event)

    def processes(self) -> list[ContainerProcess]:
        return [p for procs in self._containers.values() for p in procs]

    def k6_running(self) -> bool:
        return any(p.running for p in self.processes())

    def pod_log(self, namespace: str, pod: str) -> bytes | None:
        """The pod's output; None if its container never started (it is waiting)."""
        procs = self._containers.get((namespace, pod))
        if not procs:
            return None
        return b"".join(p.output() for p in procs)

    def pod_running(self, namespace: str, pod: str) -> bool:
        return any(p.running for p in self._containers.get((namespace, pod), []))

    def waiting_reason(self, namespace: str, pod: str) -> str:
        return self._waiting.get((namespace, pod), "ContainerCreating")

    async def close(self) -> None:
        tasks = [*self._runs.values(), *self._chores]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(p.kill() for p in self.processes()), return_exceptions=True)

    def _on_event(self, event: Event) -> None:
        key = (event.namespace, event.obj["metadata"]["name"])
        if event.resource == TESTRUNS and event.type == "ADDED":
            task = asyncio.get_running_loop().create_task(self._reconcile(*key))
            self._runs[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        elif event.resource == TESTRUNS and event.type == "DELETED":
            run = self._runs.get(key)
            if run is not None:
                run.cancel()  # its task group kills the runners' k6 processes
        elif event.resource == PODS and event.type == "DELETED":
            for process in self._containers.get(key, []):
                self._spawn(process.kill)

    def _finished(self, key: tuple[str, str], task: asyncio.Task[None]) -> None:
        if self._runs.get(key) is task:
            del self._runs[key]
        error = None if task.cancelled() else task.exception()
        if error is not None:
            # A bug of the simulation must fail the test, not pass for a stuck TestRun.
            self.failures.append(error)
            log.error("simulated operator failed on %s", key, exc_info=error)

    def _spawn(self, job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        task = asyncio.get_running_loop().create_task(job())
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    async def _reconcile(self, namespace: str, name: str) -> None:
        try:
            testrun = self._store.get(TESTRUNS, namespace, name)
            try:
                await self._run(namespace, testrun)
            except _Stop:
                self._set_status(namespace, name, stage="error")
            if testrun["spec"].get("cleanup") == "post":
                self._store.delete(TESTRUNS, namespace, name)
        except ApiError as error:
            if error.code != 404:  # a TestRun deleted mid-run simply ends the reconcile
                raise

    async def _run(self, namespace: str, testrun: dict[str, Any]) -> None:
        name, spec = testrun["metadata"]["name"], testrun["spec"]
        try:
            cli = parse_cli(argv_of(spec))
        except InvalidArguments as error:
            log.info("TestRun %s: invalid arguments: %s", name, error)
            raise _Stop from error
        now = now_rfc3339()
        self._set_status(
            namespace,
            name,
            conditions=[
                _condition(t, s, now)
                for t, s in (
                    ("CloudTestRun", "Unknown"),
                    ("TestRunRunning", "Unknown"),
                    ("TeardownExecuted", "False"),
                    ("CloudTestRunAborted", "False"),
                    ("CloudPLZTestRun", "False"),
                )
            ],
        )
        initializer = spec.get("initializer") or spec.get("runner") or {}
        if cli.has_cloud_out or not initializer.get("disabled", False):
            self._set_status(namespace, name, stage="initialization")
            await self._initialize(namespace, testrun, initializer, cli.archive_args)
            self._set_condition(namespace, name, "CloudTestRun", "False")
        self._set_status(namespace, name, stage="initialized")
        count = int(spec["parallelism"])
        runner_spec = spec.get("runner") or {}
        jobs = [
            self._create_job(namespace, testrun, f"{name}-{i}", runner_spec, {"runner": "true"})
            for i in range(1, count + 1)
        ]
        pods = [self._store.create(PODS, namespace, workloads.pod_object(job)) for job in jobs]
        self._set_status(namespace, name, stage="created")
        addresses = [f"{LOOPBACK}:{free_port()}" for _ in pods]
        async with asyncio.TaskGroup() as group:
            started = []
            for index, (job, pod) in enumerate(zip(jobs, pods, strict=True), start=1):
                argv = [
                    *_k6_run_prefix(spec, index, count),
                    *runner_argv(spec),
                    *_runner_suffix(spec, index, count, name, addresses[index - 1]),
                ]
                ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
                started.append(ready)
                group.create_task(self._run_container(namespace, testrun, job, pod, argv, ready))
            # The starter: once every runner runs and answers, resume them all.
            if all(await asyncio.gather(*started)):
                await resume_all(addresses)
                self._create_starter(namespace, testrun)
                self._set_status(namespace, name, stage="started")
                self._set_condition(namespace, name, "TestRunRunning", "True")
            else:
                await _wait_until_deleted()  # as the operator: stuck in "created"
        self._set_condition(namespace, name, "TestRunRunning", "False")
        self._set_status(namespace, name, stage="stopped")
        self._set_status(namespace, name, stage="finished")

    async def _initialize(
        self,
        namespace: str,
        testrun: dict[str, Any],
        initializer: Mapping[str, Any],
        archive_args: list[str],
    ) -> None:
        name, spec = testrun["metadata"]["name"], testrun["spec"]
        job = self._create_job(namespace, testrun, f"{name}-initializer", initializer, {})
        pod = self._store.create(PODS, namespace, workloads.pod_object(job))
        prepared = await self._prepare(namespace, testrun, pod, initializer)
        if prepared is None:
            await _wait_until_deleted()  # the pod cannot start: the operator waits
        binary, env, script, home = prepared
        archive = home / "script.archived.tar"
        env_flags = [
            f
            for var in initializer.get("env") or []
            for f in ("-e", f"{var['name']}={env.get(var['name'], '')}")
        ]
        steps = [
            [str(binary), "archive", str(script), *env_flags, "-O", str(archive), *archive_args],
            [str(binary), "inspect", "--execution-requirements", str(archive)],
        ]
        key = (namespace, pod["metadata"]["name"])
        self._mark_running(namespace, pod)
        code = 0
        for number, argv in enumerate(steps):
            process = ContainerProcess(home.parent / f"initializer-{number}.log")
            self._containers.setdefault(key, []).append(process)
            await process.start(argv, env, home)
            code = await process.wait(self._init_timeout)
            if code != 0:
                break
        inspected = _parse_inspect(self._containers[key][-1].output()) if code == 0 else None
        if inspected is None:
            code = code or 1
        self._mark_terminated(namespace, pod, job, code)
        if inspected is None:
            raise _Stop
        if int(inspected.get("maxVUs", 0)) < int(spec["parallelism"]):
            log.info("TestRun %s: maxVUs below parallelism", name)
            raise _Stop

    async def _prepare(
        self,
        namespace: str,
        testrun: dict[str, Any],
        pod: dict[str, Any],
        container: Mapping[str, Any],
    ) -> tuple[Path, dict[str, str], Path, Path] | None:
        """What the kubelet does before the container starts: image, volume, env; None if it
        cannot start (the pod then waits with the reason)."""
        pod_name = pod["metadata"]["name"]
        image = container.get("image") or DEFAULT_RUNNER_IMAGE
        binary = self._images.binary_for(image)
        if binary is None:
            self._mark_waiting(
                namespace, pod, "ImagePullBackOff", f'Back-off pulling image "{image}"'
            )
            return None
        root = self._workdir / namespace / pod_name
        home = root / "home"
        home.mkdir(parents=True, exist_ok=True)
        script_spec = testrun["spec"]["script"]
        if "configMap" in script_spec:
            ref = script_spec["configMap"]
            try:
                configmap = self._store.get(CONFIGMAPS, namespace, ref["name"])
            except ApiError:
                self._mark_waiting(
                    namespace, pod, "ContainerCreating", f'configmap "{ref["name"]}" not found'
                )
                return None
            write_volume(root / "test", configmap)
            script = root / "test" / (ref.get("file") or "test.js")
        elif "localFile" in script_spec:
            script = Path(script_spec["localFile"])
        else:  # no PersistentVolumeClaims here: the volume never mounts
            message = (
                "persistentvolumeclaim not found" if "volumeClaim" in script_spec else "no script"
            )
            self._mark_waiting(namespace, pod, "ContainerCreating", message)
            return None
        try:
            env = container_env(self._store, namespace, pod, container, home)
        except ContainerConfigError as error:
            self._mark_waiting(namespace, pod, "CreateContainerConfigError", str(error))
            return None
        return binary, env, script, home

    async def _run_container(
        self,
        namespace: str,
        testrun: dict[str, Any],
        job: dict[str, Any],
        pod: dict[str, Any],
        argv: list[str],
        started: asyncio.Future[bool],
    ) -> None:
        try:
            prepared = await self._prepare(
                namespace, testrun, pod, testrun["spec"].get("runner") or {}
            )
            if prepared is None:
                started.set_result(False)
                return
            binary, env, script, home = prepared
            root = home.parent
            full = [str(binary), *(_map_test_path(a, root) for a in argv)]
            full = [a.replace(_SCRIPT, str(script)) for a in full]
            full = [full[0], *(expand_references(a, env) for a in full[1:])]
            process = ContainerProcess(root / "k6.log")
            self._containers.setdefault((namespace, pod["metadata"]["name"]), []).append(process)
            await process.start(full, env, home)
            self._mark_running(namespace, pod)
            waiter = asyncio.ensure_future(process.wait(self._runner_timeout))
            try:
                answered = await _wait_answering(argv, process)
                started.set_result(answered)
                code = await waiter
            finally:
                if not waiter.done():
                    waiter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await waiter
            self._mark_terminated(namespace, pod, job, code)
        finally:
            if not started.done():
                started.set_result(False)

    def _create_job(
        self,
        namespace: str,
        testrun: dict[str, Any],
        job_name: str,
        pod_spec: Mapping[str, Any],
        extra_labels: Mapping[str, str],
    ) -> dict[str, Any]:
        name = testrun["metadata"]["name"]
        labels = {"app": "k6", "k6_cr": name, **extra_labels}
        for key, value in ((pod_spec.get("metadata") or {}).get("labels") or {}).items():
            labels.setdefault(key, value)
        container = {
            "name": workloads.CONTAINER,
            "image": pod_spec.get("image") or DEFAULT_RUNNER_IMAGE,
            "env": list(pod_spec.get("env") or []),
            "envFrom": list(pod_spec.get("envFrom") or []),
            "resources": dict(pod_spec.get("resources") or {}),
        }
        return self._store.create(
            JOBS, namespace, workloads.job_object(job_name, labels, testrun, container)
        )

    def _create_starter(self, namespace: str, testrun: dict[str, Any]) -> None:
        starter = testrun["spec"].get("starter") or {}
        job = self._create_job(
            namespace,
            testrun,
            f"{testrun['metadata']['name']}-starter",
            {
                **starter,
                "image": starter.get("image") or "ghcr.io/grafana/k6-operator:latest-starter",
            },
            {},
        )
        pod = self._store.create(PODS, namespace, workloads.pod_object(job))
        now = now_rfc3339()
        self._update_pod_status(
            namespace, pod, lambda s: workloads.terminated_status(s, "starter", 0, now, now)
        )
        self._update_job_status(namespace, job, succeeded=True)

    def _mark_waiting(self, namespace: str, pod: dict[str, Any], reason: str, message: str) -> None:
        self._waiting[(namespace, pod["metadata"]["name"])] = f"{reason}: {message}"
        image = pod["spec"]["containers"][0]["image"]
        self._update_pod_status(
            namespace, pod, lambda _: workloads.pending_status(image, reason, message)
        )

    def _mark_running(self, namespace: str, pod: dict[str, Any]) -> None:
        image = pod["spec"]["containers"][0]["image"]
        self._update_pod_status(
            namespace, pod, lambda s: workloads.running_status(s, image, now_rfc3339())
        )

    def _mark_terminated(
        self, namespace: str, pod: dict[str, Any], job: dict[str, Any], code: int
    ) -> None:
        image = pod["spec"]["containers"][0]["image"]
        procs = self._containers.get((namespace, pod["metadata"]["name"]), [])
        started = procs[0].started_at if procs and procs[0].started_at else now_rfc3339()
        finished = procs[-1].finished_at if procs and procs[-1].finished_at else now_rfc3339()
        self._update_pod_status(
            namespace, pod, lambda s: workloads.terminated_status(s, image, code, started, finished)
        )
        self._update_job_status(namespace, job, succeeded=code == 0)

    def _update_pod_status(
        self,
        namespace: str,
        pod: dict[str, Any],
        change: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> None:
        with contextlib.suppress(ApiError):  # the pod may be gone (deleted with its owner)
            current = self._store.get(PODS, namespace, pod["metadata"]["name"])
            current["status"] = change(current.get("status") or {})
            self._store.update(PODS, namespace, current)

    def _update_job_status(self, namespace: str, job: dict[str, Any], *, succeeded: bool) -> None:
        with contextlib.suppress(ApiError):
            current = self._store.get(JOBS, namespace, job["metadata"]["name"])
            current["status"] = workloads.finished_job_status(
                current.get("status") or {}, succeeded
            )
            self._store.update(JOBS, namespace, current)

    def _set_status(self, namespace: str, name: str, **fields: Any) -> None:
        current = self._store.get(TESTRUNS, namespace, name)
        current["status"] = {**(current.get("status") or {}), **fields}
        self._store.update(TESTRUNS, namespace, current)

    def _set_condition(self, namespace: str, name: str, kind: str, status: str) -> None:
        current = self._store.get(TESTRUNS, namespace, name)
        conditions = [
            c for c in (current.get("status") or {}).get("conditions", []) if c["type"] != kind
        ]
        self._set_status(
            namespace, name, conditions=[*conditions, _condition(kind, status, now_rfc3339())]
        )


async def _wait_until_deleted() -> NoReturn:
    """Wait as the operator does when a pod never becomes ready: until the TestRun goes."""
    await asyncio.Event().wait()
    raise AssertionError("an Event nobody sets was set")


def _condition(kind: str, status: str, at: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "lastTransitionTime": at,
        "reason": _REASONS[(kind, status)],
        "message": "",
    }


def _k6_run_prefix(spec: Mapping[str, Any], index: int, count: int) -> list[str]:
    """``k6 run [--quiet] [segment flags]`` (the binary is put in front later)."""
    prefix = ["run"]
    if _flag(spec.get("quiet"), default=True):
        prefix.append("--quiet")
    flags = operator_args(index, count, "-", "-")
    return [*prefix, *(f for f in flags if f.startswith("--execution-segment"))]


def _runner_suffix(
    spec: Mapping[str, Any], index: int, count: int, name: str, address: str
) -> list[str]:
    """``/test/<file> --address=... [--paused] --tag instance_id=<i> --tag testrun_name=<name>``."""
    flags = [
        f
        for f in operator_args(index, count, name, address)
        if not f.startswith("--execution-segment")
    ]
    if not _flag(spec.get("paused"), default=True):
        flags.remove("--paused")
    address_flag = next(f for f in flags if f.startswith("--address="))
    flags.remove(address_flag)
    return [_SCRIPT, address_flag, *flags]


def _flag(value: Any, *, default: bool) -> bool:
    # strconv.ParseBool: an unparsable value reads as false, an empty one keeps the default.
    if value in (None, ""):
        return default
    return str(value) in ("1", "t", "T", "TRUE", "true", "True")


def _map_test_path(arg: str, root: Path) -> str:
    """An argument naming a file under the ConfigMap mount ``/test/`` names the local copy."""
    return str(root / "test" / arg.removeprefix("/test/")) if arg.startswith("/test/") else arg


def _address_of(argv: list[str]) -> str:
    return next(a.removeprefix("--address=") for a in argv if a.startswith("--address="))


async def _wait_answering(argv: list[str], process: ContainerProcess) -> bool:
    """True once k6's REST API answers; False if the process ends first."""
    address = _address_of(argv)
    async with aiohttp.ClientSession(timeout=_HTTP_TIMEOUT) as session:
        while process.running:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(f"http://{address}/v1/status") as response:
                    if response.status == 200:
                        return True
            await asyncio.sleep(_POLL_SECONDS)
    return False


def _parse_inspect(output: bytes) -> dict[str, Any] | None:
    text = output.decode("utf-8", errors="replace")
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        return None
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None
