"""Remote-write credentials reach k6's output and nothing the script can see in ``__ENV``.

Each case configures real credentials that Prometheus (or a gateway in front of it) requires
for remote write and for queries. The run passing proves k6 authenticated: the runner's check
for the run's series asks the same protected endpoint, and errors when k6 wrote nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from devkit.events import make_test_triggered
from devkit.fake_keptn import FakeKeptn
from devkit.gateway import TenantGateway
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from devkit.target import TargetServer
from sli_provider.config import Secret, Settings
from tests.helpers import send_event

USER, PASSWORD = "k6-writer", "basic-auth-pa55word-never-in-env"
TOKEN = "bearer-t0ken-never-in-env"
PROJECT, STAGE, SERVICE = "vault", "prod", "web"
ENV_SCRIPT = """
import http from 'k6/http';
export const options = { vus: 1, iterations: 2 };
export default function () {
  console.log('SCRIPT_ENV=' + JSON.stringify(__ENV));
  http.get(__ENV.TARGET_URL);
}
"""


@pytest.fixture(scope="module")
async def basic_auth_prometheus(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[PrometheusServer]:
    """Basic auth on every endpoint, the remote-write receiver included."""
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    async with PrometheusServer(
        tmp_path_factory.mktemp("basic-auth-prometheus"),
        web_config={"basic_auth_users": {USER: hashed}},
        client_auth=(USER, PASSWORD),
    ) as server:
        yield server


@asynccontextmanager
async def with_basic_auth(prometheus: PrometheusServer, base: Settings) -> AsyncIterator[Settings]:
    yield replace(
        base,
        prometheus_url=prometheus.url,
        prometheus_username=USER,
        prometheus_password=Secret(PASSWORD),
    )


@asynccontextmanager
async def with_bearer_token_file(
    prometheus: PrometheusServer, base: Settings, tmp_path: Path
) -> AsyncIterator[Settings]:
    """The project goes through a gateway that wants the token; the token comes from a file."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    async with TenantGateway(prometheus.url, tenant=None, token=TOKEN) as gateway:
        projects = tmp_path / "projects.yaml"
        projects.write_text(
            f"projects:\n  {PROJECT}:\n    url: {gateway.url}\n"
            f"    bearer_token_file: {token_file}\n"
        )
        yield replace(base, prometheus_url=prometheus.url, prometheus_projects_file=projects)
        # Both the query and k6's write went through the gateway with the token.
        assert {h.get("authorization") for h in gateway.seen} == {f"Bearer {TOKEN}"}
        assert any(h.get("content-encoding") == "snappy" for h in gateway.seen), "no write"


@pytest.mark.parametrize("credentials", ["basic-auth", "bearer-token-file"])
async def test_no_credential_in_the_scripts_env_while_remote_write_authenticates(
    credentials: str,
    basic_auth_prometheus: PrometheusServer,
    prometheus: PrometheusServer,
    fake_keptn: FakeKeptn,
    target: TargetServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    workload = {"teststrategy": "security", "script": "k6/env.js", "env": {"EXTRA": "1"}}
    fake_keptn.set_resource(
        json.dumps({"workloads": [workload]}), "k6/k6.conf.yaml", project=PROJECT
    )
    fake_keptn.set_resource(ENV_SCRIPT, "k6/env.js", project=PROJECT)
    base = Settings(
        distributor_url=fake_keptn.url,
        runner_work_dir=tmp_path,
        query_attempts=2,
        retry_max_wait_seconds=0.1,
        reply_attempts=2,
    )
    configured = (
        with_basic_auth(basic_auth_prometheus, base)
        if credentials == "basic-auth"
        else with_bearer_token_file(prometheus, base, tmp_path)
    )
    event = make_test_triggered(
        project=PROJECT,
        stage=STAGE,
        service=SERVICE,
        teststrategy="security",
        uris_local=[target.url],
    )
    caplog.set_level(logging.INFO)
    async with configured as settings, running_service(settings) as url:
        finished = await run(url, fake_keptn, event)

    data = finished["data"]
    assert (data["status"], data["result"]) == ("succeeded", "pass"), data["message"]
    seen = scripts_env(caplog)
    assert seen == {
        "TARGET_URL": target.url,
        "KEPTN_PROJECT": PROJECT,
        "KEPTN_STAGE": STAGE,
        "KEPTN_SERVICE": SERVICE,
        "KEPTN_CONTEXT": event["shkeptncontext"],
        "KEPTN_TESTSTRATEGY": "security",
        "EXTRA": "1",
    }
    for secret in (PASSWORD, TOKEN):
        assert secret not in json.dumps(seen)
        assert secret not in caplog.text  # k6's whole output and the service's own logs
        assert secret not in json.dumps(finished)


async def run(url: str, keptn: FakeKeptn, event: dict[str, Any]) -> dict[str, Any]:
    await send_event(url, event)
    (finished,) = await keptn.wait_for_events(
        type="sh.keptn.event.test.finished", shkeptncontext=event["shkeptncontext"], timeout=60
    )
    return finished


def scripts_env(caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    """The ``__ENV`` the script printed (k6 logs it as msg="SCRIPT_ENV={...}")."""
    lines = [r.getMessage() for r in caplog.records if r.name == "sli_provider.k6"]
    dumps = [line for line in lines if "SCRIPT_ENV=" in line]
    assert dumps, "the script's output did not reach the log:\n" + "\n".join(lines)
    raw = dumps[0].split("SCRIPT_ENV=", 1)[1].split('" source=')[0].replace('\\"', '"')
    env: dict[str, str] = json.loads(raw)
    return env
