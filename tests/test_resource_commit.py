"""The event's ``gitcommitid`` selects the version of every resource read for it.

Keptn's resource service checks the commit out when asked with ``?gitCommitID=`` (keptn-protocol.md
§5.1); the fake serves different content at HEAD and at the commit, so a service that forgot the
commit would read HEAD and answer differently.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import aiohttp
import pytest

from devkit.events import get_sli_triggered, make_test_triggered
from devkit.fake_keptn import FakeKeptn
from devkit.k6run import ONE_SCRIPT
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from devkit.target import TargetServer
from sli_provider.config import Settings
from sli_provider.keptn.timestamps import format_keptn
from tests.helpers import send_event

PROJECT, STAGE, SERVICE = "shop", "staging", "web"
COMMIT = "9c4e2d1b7a"


def settings(prometheus: PrometheusServer, keptn: FakeKeptn, **extra: Any) -> Settings:
    return Settings(
        prometheus_url=prometheus.url,
        distributor_url=keptn.url,
        query_attempts=1,
        reply_attempts=2,
        retry_max_wait_seconds=0.1,
        **extra,
    )


def commits_asked(keptn: FakeKeptn, uri: str) -> list[str | None]:
    suffix = "/resource/" + uri.replace("/", "%2F")
    return [r.query.get("gitCommitID") for r in keptn.resource_requests if r.path.endswith(suffix)]


@pytest.mark.parametrize(("commit", "expected"), [(COMMIT, 2.0), (None, 1.0)])
async def test_get_sli_reads_sli_yaml_at_the_events_commit(
    prometheus: PrometheusServer, fake_keptn: FakeKeptn, commit: str | None, expected: float
) -> None:
    for level in ((None, None), (STAGE, None), (STAGE, SERVICE)):
        fake_keptn.add_scope(PROJECT, *level)
    where = {"project": PROJECT, "stage": STAGE, "service": SERVICE}
    fake_keptn.set_resource("indicators:\n  version: vector(1)\n", "k6/sli.yaml", **where)
    fake_keptn.set_resource(
        "indicators:\n  version: vector(2)\n", "k6/sli.yaml", **where, commit=COMMIT
    )
    now = time.time()
    event = get_sli_triggered(
        project=PROJECT,
        stage=STAGE,
        service=SERVICE,
        start=format_keptn(now - 60),
        end=format_keptn(now),
        indicators=["version"],
        gitcommitid=commit,
    )
    async with running_service(settings(prometheus, fake_keptn)) as url:
        await send_event(url, event)
        (finished,) = await fake_keptn.wait_for_events(
            type="sh.keptn.event.get-sli.finished", shkeptncontext=event["shkeptncontext"]
        )
    (value,) = finished["data"]["get-sli"]["indicatorValues"]
    assert (value["metric"], value["value"], value["success"]) == ("version", expected, True)
    assert commits_asked(fake_keptn, "k6/sli.yaml") == [commit] * 3  # every level, same commit
    assert fake_keptn.violations == []


HEAD_SCRIPT = "throw new Error('the script at HEAD, not at the event\\'s commit');\n"


async def test_the_runner_reads_its_config_and_script_at_the_events_commit(
    prometheus: PrometheusServer, fake_keptn: FakeKeptn, target: TargetServer, tmp_path: Any
) -> None:
    where = {"project": PROJECT, "stage": STAGE, "service": SERVICE}
    # At HEAD the workload names a script that does not exist, and the script k6/one.js throws;
    # only the commit's k6.conf.yaml and the commit's script make a passing run.
    fake_keptn.set_resource(
        '{"workloads": [{"teststrategy": "performance", "script": "k6/missing.js"}]}',
        "k6/k6.conf.yaml",
        **where,
    )
    fake_keptn.set_resource(
        '{"workloads": [{"teststrategy": "performance", "script": "k6/one.js"}]}',
        "k6/k6.conf.yaml",
        **where,
        commit=COMMIT,
    )
    fake_keptn.set_resource(HEAD_SCRIPT, "k6/one.js", **where)
    fake_keptn.set_resource(ONE_SCRIPT.read_bytes(), "k6/one.js", **where, commit=COMMIT)
    event = make_test_triggered(
        project=PROJECT,
        stage=STAGE,
        service=SERVICE,
        teststrategy="performance",
        uris_local=[target.url],
        gitcommitid=COMMIT,
    )
    async with running_service(settings(prometheus, fake_keptn, runner_work_dir=tmp_path)) as url:
        await send_event(url, event)
        (finished,) = await fake_keptn.wait_for_events(
            type="sh.keptn.event.test.finished", shkeptncontext=event["shkeptncontext"], timeout=90
        )
    data = finished["data"]
    assert (data["status"], data["result"]) == ("succeeded", "pass"), data["message"]
    assert data["k6"]["metrics"]["http_reqs"]["count"] == 1  # one.js: one GET
    assert commits_asked(fake_keptn, "k6/k6.conf.yaml") == [COMMIT]
    assert commits_asked(fake_keptn, "k6/one.js") == [COMMIT]
    assert fake_keptn.violations == []


async def test_the_fake_resource_service_serves_each_commits_version(fake_keptn: FakeKeptn) -> None:
    fake_keptn.set_resource("head", "k6/a.yaml", project=PROJECT)
    fake_keptn.set_resource("at commit", "k6/a.yaml", project=PROJECT, commit=COMMIT)
    fake_keptn.set_resource("only at commit", "k6/b.yaml", project=PROJECT, commit=COMMIT)

    async def read(uri: str, commit: str | None) -> tuple[int, str]:
        url = f"{fake_keptn.resource_service_url}/v1/project/{PROJECT}/resource/{uri}"
        params = {"gitCommitID": commit} if commit else {}
        async with aiohttp.ClientSession() as session, session.get(url, params=params) as r:
            body = await r.json()
            return r.status, base64.b64decode(body.get("resourceContent", "")).decode()

    assert await read("k6%2Fa.yaml", None) == (200, "head")
    assert await read("k6%2Fa.yaml", COMMIT) == (200, "at commit")
    assert await read("k6%2Fa.yaml", "0ther") == (200, "head")  # unchanged since that commit
    assert await read("k6%2Fb.yaml", COMMIT) == (200, "only at commit")
    assert (await read("k6%2Fb.yaml", None))[0] == 404
