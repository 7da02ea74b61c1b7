"""Prometheus behind TLS, basic auth, mTLS and a tenant gateway: the real server, real k6."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import pytest
import trustme

from devkit.events import get_sli_triggered, make_test_triggered
from devkit.fake_keptn import FakeKeptn
from devkit.gateway import TenantGateway
from devkit.k6run import LOAD_SCRIPT
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from devkit.target import TargetServer
from sli_provider.config import Secret, Settings
from tests.helpers import ServiceFactory, send_event, service_factory

USER, PASSWORD = "k6-reader", "correct horse battery staple"
PROJECT, STAGE, SERVICE = "secure", "prod", "web"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def pki(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pki")
    server = ca.issue_cert("127.0.0.1")
    client = ca.issue_cert("sli-provider-client")
    files = {
        "ca": root / "ca.pem",
        "server_cert": root / "server.pem",
        "server_key": root / "server-key.pem",
        "client_cert": root / "client.pem",
        "client_key": root / "client-key.pem",
        "other_ca": root / "other-ca.pem",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    server.cert_chain_pems[0].write_to_path(str(files["server_cert"]))
    server.private_key_pem.write_to_path(str(files["server_key"]))
    client.cert_chain_pems[0].write_to_path(str(files["client_cert"]))
    client.private_key_pem.write_to_path(str(files["client_key"]))
    trustme.CA().cert_pem.write_to_path(str(files["other_ca"]))
    return files


@pytest.fixture(scope="module")
async def secure_prometheus(
    ca: trustme.CA, pki: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[PrometheusServer]:
    """TLS from a CA made here, and basic auth on every endpoint, remote write included."""
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    client_ssl = ssl.create_default_context()
    ca.configure_trust(client_ssl)
    web_config = {
        "tls_server_config": {
            "cert_file": str(pki["server_cert"]),
            "key_file": str(pki["server_key"]),
        },
        "basic_auth_users": {USER: hashed},
    }
    async with PrometheusServer(
        tmp_path_factory.mktemp("secure-prometheus"),
        web_config=web_config,
        client_ssl=client_ssl,
        client_auth=(USER, PASSWORD),
    ) as server:
        yield server


@pytest.fixture
def service(
    fake_keptn: FakeKeptn, secure_prometheus: PrometheusServer, pki: dict[str, Path], tmp_path: Path
) -> ServiceFactory:
    base = Settings(
        prometheus_url=secure_prometheus.url,
        prometheus_username=USER,
        prometheus_password=Secret(PASSWORD),
        prometheus_ca_file=pki["ca"],
        distributor_url=fake_keptn.url,
        runner_work_dir=tmp_path,
        query_attempts=2,
        retry_max_wait_seconds=0.1,
        reply_attempts=2,
    )

    return service_factory(base)


async def run_test(
    url: str, keptn: FakeKeptn, target: TargetServer, project: str = PROJECT
) -> dict[str, Any]:
    """The runner writes through the secured endpoint; returns test.finished."""
    keptn.set_resource(
        json.dumps(
            {
                "workloads": [
                    {
                        "teststrategy": "performance",
                        "script": "k6/load.js",
                        "env": {"VUS": "1", "DURATION": "1s", "FAIL_EVERY": "0"},
                    }
                ]
            }
        ),
        "k6/k6.conf.yaml",
        project=project,
    )
    keptn.set_resource(LOAD_SCRIPT.read_bytes(), "k6/load.js", project=project)
    trigger = make_test_triggered(
        project=project,
        stage=STAGE,
        service=SERVICE,
        teststrategy="performance",
        uris_local=[target.url],
    )
    await send_event(url, trigger)
    (test,) = await keptn.wait_for_events(
        type="sh.keptn.event.test.finished", shkeptncontext=trigger["shkeptncontext"], timeout=60
    )
    return test


async def ask(
    url: str, keptn: FakeKeptn, test: dict[str, Any], context: str, project: str = PROJECT
) -> dict[str, Any]:
    event = get_sli_triggered(
        project=project,
        stage=STAGE,
        service=SERVICE,
        start=test["data"]["test"]["start"],
        end=test["data"]["test"]["end"],
        indicators=["http_reqs_total"],
        context=context,
    )
    await send_event(url, event)
    (finished,) = await keptn.wait_for_events(
        type="sh.keptn.event.get-sli.finished", shkeptncontext=context, timeout=60
    )
    return finished


async def test_right_credentials_and_ca_work_end_to_end(
    service: ServiceFactory, fake_keptn: FakeKeptn, target: TargetServer
) -> None:
    async with service() as url:
        test = await run_test(url, fake_keptn, target)
        finished = await ask(url, fake_keptn, test, test["shkeptncontext"])
    assert test["data"]["result"] == "pass", test["data"]["message"]
    (value,) = finished["data"]["get-sli"]["indicatorValues"]
    assert value["success"], value
    assert value["value"] == test["data"]["k6"]["metrics"]["http_reqs"]["count"]
    assert fake_keptn.violations == []


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"prometheus_password": Secret("wrong")}, "refused the credentials (HTTP 401)"),
        ({"prometheus_ca_file": None}, "TLS failure"),
        ("plain-http", "does not answer like Prometheus' API: HTTP 400"),
    ],
    ids=["wrong-password", "unknown-ca", "plain-http"],
)
async def test_misconfigured_access_gives_a_clear_errored_finished(
    service: ServiceFactory,
    fake_keptn: FakeKeptn,
    target: TargetServer,
    secure_prometheus: PrometheusServer,
    overrides: dict[str, Any] | str,
    needle: str,
) -> None:
    async with service() as url:
        test = await run_test(url, fake_keptn, target)
    if overrides == "plain-http":
        overrides = {"prometheus_url": secure_prometheus.url.replace("https://", "http://")}
    assert isinstance(overrides, dict)
    async with service(**overrides) as url:
        finished = await ask(url, fake_keptn, test, test["shkeptncontext"])
    data = finished["data"]
    assert (data["status"], data["result"]) == ("errored", "fail")
    assert needle in data["message"]
    assert PASSWORD not in json.dumps(finished)


async def test_mutual_tls(
    ca: trustme.CA, pki: dict[str, Path], fake_keptn: FakeKeptn, tmp_path: Path
) -> None:
    """Prometheus requires a client certificate signed by the CA."""
    client_ssl = ssl.create_default_context()
    ca.configure_trust(client_ssl)
    ca.issue_cert("tests").configure_cert(client_ssl)
    web_config = {
        "tls_server_config": {
            "cert_file": str(pki["server_cert"]),
            "key_file": str(pki["server_key"]),
            "client_auth_type": "RequireAndVerifyClientCert",
            "client_ca_file": str(pki["ca"]),
        }
    }
    async with PrometheusServer(
        tmp_path / "mtls", web_config=web_config, client_ssl=client_ssl
    ) as prom:
        body = {
            "project": "p",
            "stage": "s",
            "service": "v",
            "start": 0,
            "end": 60,
            "indicators": ["vus_max"],
        }
        base = Settings(
            prometheus_url=prom.url,
            prometheus_ca_file=pki["ca"],
            query_attempts=1,
            distributor_url=fake_keptn.url,
        )
        with_cert = replace(
            base, prometheus_cert_file=pki["client_cert"], prometheus_key_file=pki["client_key"]
        )
        async with (
            running_service(with_cert) as url,
            aiohttp.ClientSession() as session,
            session.post(url + "/preview", json=body) as response,
        ):
            (item,) = (await response.json())["indicators"]
        # Reached Prometheus: the query ran and found no data (nothing was written).
        assert item["message"].startswith("no data"), item
        async with (
            running_service(base) as url,
            aiohttp.ClientSession() as session,
            session.post(url + "/preview", json=body) as response,
        ):
            assert response.status == 502
            assert "TLS failure" in (await response.json())["error"]


async def test_gateway_headers_bearer_file_rotation_and_project_override(
    prometheus: PrometheusServer, fake_keptn: FakeKeptn, tmp_path: Path
) -> None:
    """Project 'tenant-b' goes through a gateway needing X-Scope-OrgID and a bearer token read
    from a file; when the token rotates, the file is re-read. Other projects go direct."""
    token_file = tmp_path / "token"
    token_file.write_text("first-token\n")
    async with TenantGateway(prometheus.url, tenant="team-b", token="first-token") as gateway:
        projects = tmp_path / "projects.yaml"
        projects.write_text(
            "projects:\n"
            "  tenant-b:\n"
            f"    url: {gateway.url}\n"
            "    headers: {X-Scope-OrgID: team-b}\n"
            f"    bearer_token_file: {token_file}\n"
        )
        settings = Settings(
            prometheus_url=prometheus.url,
            prometheus_projects_file=projects,
            distributor_url=fake_keptn.url,
            query_attempts=1,
        )
        body = {"stage": "s", "service": "v", "start": 0, "end": 60, "indicators": ["vus_max"]}
        async with running_service(settings) as url, aiohttp.ClientSession() as session:

            async def preview(project: str) -> dict[str, Any]:
                async with session.post(url + "/preview", json={**body, "project": project}) as r:
                    assert r.status == 200, await r.text()
                    result: dict[str, Any] = (await r.json())["indicators"][0]
                    return result

            assert (await preview("tenant-b"))["message"].startswith("no data")
            assert gateway.seen[-1]["authorization"] == "Bearer first-token"
            gateway.token = "second-token"
            token_file.write_text("second-token-rotated\n")
            gateway.token = "second-token-rotated"
            assert (await preview("tenant-b"))["message"].startswith("no data")
            assert gateway.seen[-1]["authorization"] == "Bearer second-token-rotated"
            seen_before = len(gateway.seen)
            assert (await preview("other"))["message"].startswith("no data")
            assert len(gateway.seen) == seen_before  # the default Prometheus, not the gateway


async def test_a_ca_file_that_is_not_a_certificate_is_a_clear_error(
    secure_prometheus: PrometheusServer, fake_keptn: FakeKeptn, tmp_path: Path
) -> None:
    """Readable (so the settings pass at start) but not PEM: the request says which settings
    cannot be used, as a 502 from /preview, not an internal error."""
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("this is not a certificate\n")
    settings = Settings(
        prometheus_url=secure_prometheus.url,
        prometheus_ca_file=not_pem,
        query_attempts=1,
        distributor_url=fake_keptn.url,
    )
    body = {
        "project": "p",
        "stage": "s",
        "service": "v",
        "start": 0,
        "end": 60,
        "indicators": ["vus_max"],
    }
    async with (
        running_service(settings) as url,
        aiohttp.ClientSession() as session,
        session.post(url + "/preview", json=body) as response,
    ):
        assert response.status == 502
        error = (await response.json())["error"]
    assert "TLS settings for https://127.0.0.1:" in error and "cannot be used" in error, error
