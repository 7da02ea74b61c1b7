"""k6-operator v1.6 played against the simulated API server, with real k6 processes as runners.

For each TestRun (``internal/controller/testrun_controller.go``): the argv is validated
(stage ``error`` if k6-operator's CLI parser refuses it); conditions are initialised; the
initializer Job runs ``k6 archive`` and ``k6 inspect --execution-requirements`` on the script
(stage ``initialization``; a failure or ``maxVUs`` < parallelism → ``error``); ``initialized``;
one runner Job, Pod and Service (``<name>-service-<i>``, port 6565, selecting the runner's Job's
pod; ``runner.go`` NewRunnerService) per instance, each pod a real k6 started with the
operator's exact argv (``created``); once every runner pod runs and its REST API answers, the starter resumes them all
(``started``); when every runner Job is done, ``stopped`` then ``finished`` — also when runners
exited non-zero, as the real operator does. ``cleanup: post`` deletes the TestRun afterwards.
Deleting the TestRun (or a runner pod) kills its k6 processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, NoReturn

import aiohttp

from devkit.k6multi import resume_all
from devkit.kube import workloads
from devkit.kube.images import DEFAULT_RUNNER_IMAGE, ImageTable
from devkit.kube.k6cli import (
    SCRIPT_PLACEHOLDER,
    InvalidArguments,
    argv_of,
    parse_cli,
    parse_inspect,
    runner_command,
)
from devkit.kube.pods import (
    ContainerConfigError,
    ContainerProcess,
    container_env,
    expand_references,
    pod_home,
    write_volume,
)
from devkit.kube.resources import CONFIGMAPS, JOBS, PODS, SERVICES, TESTRUNS
from devkit.kube.status import ApiError
from devkit.kube.store import Event, Store, now_rfc3339
from devkit.kube.testrun_status import TestRunStatus
from devkit.ports import LOOPBACK, free_port

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.1
# How often the simulated kubelet retries a pod whose ConfigMap or Secret is missing.
_KUBELET_RETRY_SECONDS = 0.5
_HTTP_TIMEOUT = aiohttp.ClientTimeout(total=5)


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
        self._lifecycle = workloads.Lifecycle(store)
        self._status = TestRunStatus(store)
        self._images = images
        self._workdir = workdir
        self._runner_timeout = runner_timeout
        self._init_timeout = init_timeout
        self._runs: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._chores: set[asyncio.Task[None]] = set()
        # Every container process by (namespace, pod name), kept after it ends for pods/log.
        self._containers: dict[tuple[str, str], list[ContainerProcess]] = {}
        self._waiting: dict[tuple[str, str], str] = {}
        # Each runner pod's k6 REST API (its port 6565), for the service proxy.
        self._addresses: dict[tuple[str, str], str] = {}
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

    def pod_address(self, namespace: str, pod: str) -> str | None:
        return self._addresses.get((namespace, pod)) if self.pod_running(namespace, pod) else None

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
                self._status.set(namespace, name, stage="error")
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
        self._status.initialize_conditions(namespace, name)
        initializer = spec.get("initializer") or spec.get("runner") or {}
        if cli.has_cloud_out or not initializer.get("disabled", False):
            self._status.set(namespace, name, stage="initialization")
            await self._initialize(namespace, testrun, initializer, cli.archive_args)
            self._status.condition(namespace, name, "CloudTestRun", "False")
        self._status.set(namespace, name, stage="initialized")
        count = int(spec["parallelism"])
        runner_spec = spec.get("runner") or {}
        jobs = [
            self._create_job(namespace, testrun, f"{name}-{i}", runner_spec, {"runner": "true"})
            for i in range(1, count + 1)
        ]
        pods = [self._store.create(PODS, namespace, workloads.pod_object(job)) for job in jobs]
        for i, job in enumerate(jobs, start=1):
            self._store.create(
                SERVICES, namespace, workloads.service_object(f"{name}-service-{i}", job, testrun)
            )
        self._status.set(namespace, name, stage="created")
        addresses = [f"{LOOPBACK}:{free_port()}" for _ in pods]
        for pod, address in zip(pods, addresses, strict=True):
            self._addresses[(namespace, pod["metadata"]["name"])] = address
        async with asyncio.TaskGroup() as group:
            started = []
            for index, (job, pod) in enumerate(zip(jobs, pods, strict=True), start=1):
                argv = runner_command(spec, index, count, name, addresses[index - 1])
                ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
                started.append(ready)
                group.create_task(self._run_container(namespace, testrun, job, pod, argv, ready))
            # The starter: once every runner runs and answers, resume them all.
            if all(await asyncio.gather(*started)):
                await resume_all(addresses)
                self._create_starter(namespace, testrun)
                self._status.set(namespace, name, stage="started")
                self._status.condition(namespace, name, "TestRunRunning", "True")
            else:
                await _wait_until_deleted()  # as the operator: stuck in "created"
        self._status.condition(namespace, name, "TestRunRunning", "False")
        self._status.set(namespace, name, stage="stopped")
        self._status.set(namespace, name, stage="finished")

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
        binary, env, script, home = await self._prepare(namespace, testrun, pod, initializer)
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
        inspected = parse_inspect(self._containers[key][-1].output()) if code == 0 else None
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
    ) -> tuple[Path, dict[str, str], Path, Path]:
        """What the kubelet does before the container starts: pull the image, mount the
        volume, build the env. A missing ConfigMap or Secret is retried, as the kubelet does
        (so it may be created after the TestRun); an image that cannot be pulled or a volume
        claim (none exist here) keeps the pod waiting until it is deleted."""
        image = container.get("image") or DEFAULT_RUNNER_IMAGE
        binary = self._images.binary_for(image)
        if binary is None:
            self._mark_waiting(
                namespace, pod, "ImagePullBackOff", f'Back-off pulling image "{image}"'
            )
            await _wait_until_deleted()
        shown = ""
        while True:
            prepared = self._try_prepare(namespace, testrun, pod, container, binary)
            if not isinstance(prepared, str):
                return prepared
            if prepared != shown:
                reason, _, message = prepared.partition(": ")
                self._mark_waiting(namespace, pod, reason, message)
                shown = prepared
            await asyncio.sleep(_KUBELET_RETRY_SECONDS)

    def _try_prepare(
        self,
        namespace: str,
        testrun: dict[str, Any],
        pod: dict[str, Any],
        container: Mapping[str, Any],
        binary: Path,
    ) -> tuple[Path, dict[str, str], Path, Path] | str:
        """The container's binary, env, script and home; or why it cannot start yet."""
        home = pod_home(self._workdir, namespace, pod["metadata"]["name"])
        root = home.parent
        home.mkdir(parents=True, exist_ok=True)
        script_spec = testrun["spec"]["script"]
        if "configMap" in script_spec:
            ref = script_spec["configMap"]
            try:
                configmap = self._store.get(CONFIGMAPS, namespace, ref["name"])
            except ApiError:
                return f'ContainerCreating: configmap "{ref["name"]}" not found'
            write_volume(root / "test", configmap)
            script = root / "test" / (ref.get("file") or "test.js")
        elif "localFile" in script_spec:
            script = Path(script_spec["localFile"])
        elif "volumeClaim" in script_spec:
            return "ContainerCreating: persistentvolumeclaim not found"
        else:
            return "ContainerCreating: no script volume"
        try:
            env = container_env(self._store, namespace, pod, container, home)
        except ContainerConfigError as error:
            return f"CreateContainerConfigError: {error}"
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
            binary, env, script, home = await self._prepare(
                namespace, testrun, pod, testrun["spec"].get("runner") or {}
            )
            root = home.parent
            full = [str(binary), *(_map_test_path(a, root) for a in argv)]
            full = [a.replace(SCRIPT_PLACEHOLDER, str(script)) for a in full]
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
        self._lifecycle.terminated(namespace, pod, job, 0, now, now)

    def _mark_waiting(self, namespace: str, pod: dict[str, Any], reason: str, message: str) -> None:
        self._waiting[(namespace, pod["metadata"]["name"])] = f"{reason}: {message}"
        self._lifecycle.waiting(namespace, pod, reason, message)

    def _mark_running(self, namespace: str, pod: dict[str, Any]) -> None:
        self._lifecycle.running(namespace, pod)

    def _mark_terminated(
        self, namespace: str, pod: dict[str, Any], job: dict[str, Any], code: int
    ) -> None:
        procs = self._containers.get((namespace, pod["metadata"]["name"]), [])
        started = procs[0].started_at if procs and procs[0].started_at else now_rfc3339()
        finished = procs[-1].finished_at if procs and procs[-1].finished_at else now_rfc3339()
        self._lifecycle.terminated(namespace, pod, job, code, started, finished)


async def _wait_until_deleted() -> NoReturn:
    """Wait as the operator does when a pod never becomes ready: until the TestRun goes."""
    await asyncio.Event().wait()
    raise AssertionError("an Event nobody sets was set")


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
