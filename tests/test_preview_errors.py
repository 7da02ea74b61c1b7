"""/preview's refusals: the caller's mistakes are 400s that name every problem, all in JSON."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devkit.fake_keptn import FakeKeptn
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from sli_provider.config import Settings
from sli_provider.service.app import MAX_BODY_BYTES

BODY = {
    "project": "shop",
    "stage": "dev",
    "service": "web",
    "start": 0,
    "end": 60,
    "indicators": ["vus_max"],
}


async def _post(url: str, body: Any = None, data: io.BytesIO | None = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/preview", json=body, data=data) as response,
    ):
        assert response.content_type == "application/json", await response.text()
        return response.status, await response.json()


@pytest.fixture
def settings(prometheus: PrometheusServer, fake_keptn: FakeKeptn, tmp_path: Path) -> Settings:
    broken = tmp_path / "broken" / "k6" / "sli.yaml"  # project level
    broken.parent.mkdir(parents=True)
    broken.write_text("indicators: [this is not a mapping\n")
    return Settings(
        prometheus_url=prometheus.url,
        distributor_url=fake_keptn.url,
        sli_config_dir=tmp_path,
        query_attempts=1,
    )


@pytest.mark.parametrize("project", ["../../etc", "..", "a/b"])
async def test_a_project_naming_another_directory_is_a_400(
    settings: Settings, project: str
) -> None:
    async with running_service(settings) as url:
        status, body = await _post(url, {**BODY, "project": project})
    assert status == 400, body
    assert f"project {project!r} cannot be a Keptn project" in body["error"]


async def test_a_broken_local_sli_yaml_is_a_400_with_the_reason(settings: Settings) -> None:
    async with running_service(settings) as url:
        status, body = await _post(url, {**BODY, "project": "broken"})
    assert status == 400, body
    assert "cannot read the SLI configuration" in body["error"] and "sli.yaml" in body["error"]


async def test_every_problem_in_one_answer(settings: Settings) -> None:
    request = {
        "project": 5,
        "stage": "",
        "start": "yesterday",
        "end": 60,
        "indicators": [1],
        "labels": "x",
    }
    async with running_service(settings) as url:
        status, body = await _post(url, request)
    assert status == 400
    problems = body["problems"]
    assert "project must be a string, not int" in problems
    assert "stage is required" in problems and "service is required" in problems
    assert any(p.startswith("start: ") for p in problems)
    assert "indicators must be a list of names" in problems
    assert "labels must be an object or a list of {key, value}" in problems
    assert body["error"] == "; ".join(problems)


async def test_too_large_a_body_is_a_json_413(settings: Settings) -> None:
    async with running_service(settings) as url:
        status, body = await _post(url, data=io.BytesIO(b" " * (MAX_BODY_BYTES + 1)))
        assert status == 413 and "exceeded" in body["error"]
        async with aiohttp.ClientSession() as session, session.get(url + "/nowhere") as response:
            assert response.status == 404 and (await response.json()) == {"error": "Not Found"}
