"""Input refused by name: event values that become part of a path must be plain names (refused
where the event is parsed, with an errored finished event naming the value, nothing read); the local
resource reader keeps every path below its directory; sli.yaml's unknown top-level keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from devkit.cli import run_sli_provider
from devkit.events import get_sli_triggered, make_test_triggered
from devkit.fake_keptn import FakeKeptn
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from sli_provider.adapters.keptn_api import LocalResourceReader, ResourceError
from sli_provider.config import Settings
from tests.helpers import send_event

HOSTILE = ["../../../etc/passwd", "k6/load", "..", "perf ormance", "-rf", "a\0b", "x" * 300]


async def test_hostile_test_strategies_get_an_errored_finished_naming_them(
    fake_keptn: FakeKeptn, tmp_path: Path
) -> None:
    settings = Settings(
        distributor_url=fake_keptn.url,
        runner_work_dir=tmp_path,
        prometheus_url="http://127.0.0.1:9",
        reply_attempts=2,
    )
    events = [
        make_test_triggered(project="shop", stage="dev", service="web", teststrategy=name)
        for name in HOSTILE
    ]
    events.append(
        make_test_triggered(
            project="../shop", stage="dev", service="web", teststrategy="performance"
        )
    )
    async with running_service(settings) as url:
        for event in events:
            await send_event(url, event)
        finished = await fake_keptn.wait_for_events(
            type="sh.keptn.event.test.finished", count=len(events), timeout=30
        )
    assert fake_keptn.resource_requests == []  # nothing was looked up with those names
    assert fake_keptn.violations == []
    by_trigger = {e["triggeredid"]: e["data"] for e in finished}
    for event, field in [(e, "data.test.teststrategy") for e in events[:-1]] + [
        (events[-1], "data.project")
    ]:
        data = by_trigger[event["id"]]
        value = event["data"]["test"]["teststrategy"] if field.endswith("strategy") else "../shop"
        assert (data["status"], data["result"]) == ("errored", "fail")
        assert data["message"].startswith(f"invalid test.triggered: {field} "), data["message"]
        assert repr(value)[:40] in data["message"]
        assert "is not a plain name" in data["message"]
        assert "internal error" not in data["message"]


async def test_a_get_sli_for_a_hostile_service_name_is_refused_by_name(
    fake_keptn: FakeKeptn, tmp_path: Path
) -> None:
    settings = Settings(
        distributor_url=fake_keptn.url,
        sli_config_dir=tmp_path,
        prometheus_url="http://127.0.0.1:9",
        runner_enabled=False,
    )
    event = get_sli_triggered(
        project="shop",
        stage="dev",
        service="../../web",
        start="2026-01-01T00:00:00.000Z",
        end="2026-01-01T00:05:00.000Z",
        indicators=["vus_max"],
    )
    async with running_service(settings) as url:
        await send_event(url, event)
        (finished,) = await fake_keptn.wait_for_events(type="sh.keptn.event.get-sli.finished")
    assert finished["data"]["status"] == "errored"
    assert finished["data"]["message"].startswith(
        "invalid get-sli.triggered: data.service '../../web' is not a plain name"
    )


@pytest.mark.parametrize(
    "uri", ["k6/../../../secret", "../secret", "/etc/passwd", "k6//x", "k6/./x", "k6\\..\\x"]
)
async def test_the_local_reader_refuses_a_resource_path_leaving_its_directory(
    tmp_path: Path, uri: str
) -> None:
    (tmp_path / "secret").write_text("no")
    (tmp_path / "config" / "p" / "s" / "v" / "k6").mkdir(parents=True)
    reader = LocalResourceReader(tmp_path / "config")
    with pytest.raises(ResourceError, match="is not a relative path below"):
        await reader.read(uri, "p", "s", "v", "")
    assert await reader.read("k6/absent.yaml", "p", "s", "v", "") is None  # plain ones still work


async def test_an_sli_yaml_with_an_unknown_top_level_key_is_refused_naming_it(
    fake_keptn: FakeKeptn, prometheus: PrometheusServer, tmp_path: Path
) -> None:
    """``indicatorz:`` would silently lose its indicators: the get-sli is answered errored, and
    ``sli-provider check`` reports the same key."""
    sli = tmp_path / "shop" / "dev" / "web" / "k6" / "sli.yaml"
    sli.parent.mkdir(parents=True)
    sli.write_text('spec_version: "1.0"\nindicators:\n  a: "vus_max"\nindicatorz:\n  b: "x"\n')
    settings = Settings(
        distributor_url=fake_keptn.url,
        sli_config_dir=tmp_path,
        prometheus_url=prometheus.url,
        runner_enabled=False,
    )
    event = get_sli_triggered(
        project="shop",
        stage="dev",
        service="web",
        start="2026-01-01T00:00:00.000Z",
        end="2026-01-01T00:05:00.000Z",
        indicators=["a"],
    )
    async with running_service(settings) as url:
        await send_event(url, event)
        (finished,) = await fake_keptn.wait_for_events(type="sh.keptn.event.get-sli.finished")
    assert finished["data"]["status"] == "errored"
    assert "unknown top-level key(s) 'indicatorz'" in finished["data"]["message"]
    result = await run_sli_provider("check", "--sli", str(sli), env={}, timeout=30)
    assert result.returncode == 1
    assert f"{sli}:4: document: unknown key 'indicatorz'" in result.stdout
