"""Shared fixtures: a real Prometheus, a load target, a fake Keptn and one recorded k6 run."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from devkit.fake_keptn import FakeKeptn
from devkit.k6run import LoadRun, run_load
from devkit.prometheus import PrometheusServer
from devkit.target import TargetServer
from sli_provider.k6.invocation import RunTags


@pytest.fixture(scope="session")
async def prometheus(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PrometheusServer]:
    async with PrometheusServer(tmp_path_factory.mktemp("prometheus")) as server:
        yield server


@pytest.fixture(scope="session")
async def target() -> AsyncIterator[TargetServer]:
    async with TargetServer() as server:
        yield server


@pytest.fixture
async def fake_keptn() -> AsyncIterator[FakeKeptn]:
    async with FakeKeptn() as keptn:
        yield keptn


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
