"""Shared fixtures: real metrics stores, a load target, a fake Keptn and recorded k6 runs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import nats
import pytest
from nats.aio.client import Client

from devkit.fake_keptn import FakeKeptn
from devkit.gateway import TenantGateway
from devkit.k6run import LoadRun, run_load
from devkit.kube import SimulatedKubernetes
from devkit.kube.testkit import NAMESPACE, RUN_SECONDS, session_for
from devkit.nats import NatsServer
from devkit.prometheus import PrometheusServer
from devkit.stores import MetricsStore
from devkit.target import TargetServer
from devkit.victoria import VictoriaMetricsServer
from sli_provider.k6.invocation import RunTags
from tests.delivery import create_keptn_stream


@pytest.fixture(scope="session")
async def prometheus(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PrometheusServer]:
    async with PrometheusServer(tmp_path_factory.mktemp("prometheus")) as server:
        yield server


@pytest.fixture(scope="session")
async def victoria(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[VictoriaMetricsServer]:
    """VictoriaMetrics as users meet it: samples younger than 30 s are not yet in query results."""
    async with VictoriaMetricsServer(tmp_path_factory.mktemp("victoria")) as server:
        yield server


@pytest.fixture(scope="session")
async def victoria_short_offset(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[VictoriaMetricsServer]:
    """VictoriaMetrics with -search.latencyOffset=1s, for tests that query right after a run
    and are about what the store holds, not about when it shows it."""
    async with VictoriaMetricsServer(
        tmp_path_factory.mktemp("victoria-short-offset"), latency_offset="1s"
    ) as server:
        yield server


@pytest.fixture(scope="session", params=["prometheus", "victoriametrics"])
def store(request: pytest.FixtureRequest) -> MetricsStore:
    """Each store the fidelity tests run against. VictoriaMetrics is the short-offset one, and
    tests wait with ``store.settle()`` before they query: they are about the values a store
    holds, not about when it shows them (the service's freshness wait is tested on its own)."""
    name = "prometheus" if request.param == "prometheus" else "victoria_short_offset"
    server: MetricsStore = request.getfixturevalue(name)
    return server


@pytest.fixture(scope="session")
async def target() -> AsyncIterator[TargetServer]:
    async with TargetServer() as server:
        yield server


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    """The runner's work directory, one level below the test's own tmp_path."""
    path = tmp_path / "runs"
    path.mkdir()
    return path


@pytest.fixture
async def fake_keptn() -> AsyncIterator[FakeKeptn]:
    async with FakeKeptn() as keptn:
        yield keptn


@pytest.fixture
async def held_prometheus(
    prometheus: PrometheusServer, load_tags: RunTags
) -> AsyncIterator[TenantGateway]:
    """A Prometheus that does not answer the load run's queries until the test ends or calls
    ``release_queries()``: the events querying it stay in flight."""
    async with TenantGateway(prometheus.url, tenant=None, token=None) as gateway:
        gateway.hold_queries_containing(load_tags.project)
        yield gateway


@pytest.fixture(scope="session")
def load_tags() -> RunTags:
    return RunTags(project="shop", stage="staging", service="web", context=str(uuid.uuid4()))


@pytest.fixture(scope="session")
async def load_run(
    prometheus: PrometheusServer,
    target: TargetServer,
    load_tags: RunTags,
    tmp_path_factory: pytest.TempPathFactory,
) -> LoadRun:
    """One 3 s, 3-VU run of devkit/scripts/load.js, every 5th iteration hitting /fail."""
    return await run_load(
        prometheus_url=prometheus.url,
        target_url=target.url,
        tags=load_tags,
        workdir=tmp_path_factory.mktemp("k6-load"),
        vus=3,
        duration="3s",
        fail_every=5,
    )


@pytest.fixture(scope="session")
async def victoria_load_run(
    victoria_short_offset: VictoriaMetricsServer,
    target: TargetServer,
    load_tags: RunTags,
    tmp_path_factory: pytest.TempPathFactory,
) -> LoadRun:
    """The ``load_run`` run, written into ``victoria_short_offset`` and waited for until all of it
    shows there (its new series show up to ~11 s late: ``VictoriaMetricsServer.settle``)."""
    run = await run_load(
        prometheus_url=victoria_short_offset.url,
        target_url=target.url,
        tags=load_tags,
        workdir=tmp_path_factory.mktemp("k6-load-victoria"),
        vus=3,
        duration="3s",
        fail_every=5,
    )
    await victoria_short_offset.settle()
    return run


@pytest.fixture(scope="session")
def store_load_run(request: pytest.FixtureRequest, store: MetricsStore) -> LoadRun:
    """The ``load_run`` run as written into ``store``."""
    name = "load_run" if store.store_name == "prometheus" else "victoria_load_run"
    run: LoadRun = request.getfixturevalue(name)
    return run


@pytest.fixture
async def kube() -> AsyncIterator[SimulatedKubernetes]:
    """A simulated Kubernetes with k6-operator, its runners killed past ``RUN_SECONDS``."""
    async with SimulatedKubernetes(namespaces=[NAMESPACE], runner_timeout=RUN_SECONDS) as sim:
        yield sim


@pytest.fixture
async def api(kube: SimulatedKubernetes) -> AsyncIterator[aiohttp.ClientSession]:
    """A session with ``kube``'s URL as base and its bearer token."""
    async with session_for(kube, RUN_SECONDS) as session:
        yield session


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    async with NatsServer(tmp_path / "nats.log") as server:
        yield server


@pytest.fixture
async def keptn_nats(nats_server: NatsServer) -> AsyncIterator[Client]:
    """A core client with the ``keptn`` stream in place, as on a Keptn control plane."""
    client = await nats.connect(nats_server.url)
    try:
        await create_keptn_stream(client)
        yield client
    finally:
        await client.close()
