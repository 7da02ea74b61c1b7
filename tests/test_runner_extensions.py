"""The service's runner with several k6 binaries: test.triggered → the right real k6 → finished."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devkit.events import get_sli_triggered
from devkit.fake_keptn import FakeKeptn
from devkit.k6binaries import EXTENSION_K6_VERSION, extension_k6
from devkit.k6run import LOAD_SCRIPT
from devkit.k6summary import expected_values
from devkit.prometheus import PrometheusServer
from devkit.target import TargetServer
from sli_provider.sli.builtin import load_builtin_templates
from tests.helpers import (
    PROJECT,
    SERVICE,
    STAGE,
    ServiceFactory,
    finished_for,
    install,
    run_trigger,
    runner_settings,
    send_event,
    service_factory,
    workloads,
)

FAKER_LOAD_JS = (
    'import faker from "k6/x/faker";\n'
    "const visitor = faker.person.firstName();  // the extension really runs\n"
    + LOAD_SCRIPT.read_text()
)
PLAIN_JS = "export const options = { iterations: 1 };\nexport default function () {}\n"
SQL_MAIN_JS = 'import { query } from "./lib/db.js";\nexport default function () { query(); }\n'
SQL_LIB_JS = 'const sql = require("k6/x/sql");\nexport function query() {}\n'


@pytest.fixture(scope="module")
def faker_k6(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return extension_k6(tmp_path_factory.mktemp("xk6"))


@pytest.fixture
def service(
    prometheus: PrometheusServer, fake_keptn: FakeKeptn, work_dir: Path, faker_k6: Path
) -> ServiceFactory:
    settings = runner_settings(
        prometheus, fake_keptn, work_dir, k6_binaries={"faker": str(faker_k6)}
    )
    return service_factory(settings)


async def test_a_faker_script_runs_with_the_xk6_build_and_its_slis_equal_k6s_summary(
    service: ServiceFactory, fake_keptn: FakeKeptn, target: TargetServer
) -> None:
    env = {"VUS": "3", "DURATION": "2s", "FAIL_EVERY": "4"}
    install(
        fake_keptn,
        workloads({"teststrategy": "faker", "script": "k6/load.js", "env": env}),
        {"k6/load.js": FAKER_LOAD_JS},
    )
    event = run_trigger(target, "faker")
    async with service() as url:
        await send_event(url, event)
        test = (await finished_for(fake_keptn, event))["data"]
        assert test["result"] == "pass", test["message"]
        k6 = test["k6"]
        assert (k6["binary"], k6["version"], k6["extensions"]) == (
            "faker",
            EXTENSION_K6_VERSION,
            ["k6/x/faker"],
        )
        ask = get_sli_triggered(
            project=PROJECT,
            stage=STAGE,
            service=SERVICE,
            start=test["test"]["start"],
            end=test["test"]["end"],
            indicators=sorted(load_builtin_templates()),
            context=event["shkeptncontext"],
        )
        await send_event(url, ask)
        (finished,) = await fake_keptn.wait_for_events(
            type="sh.keptn.event.get-sli.finished", shkeptncontext=event["shkeptncontext"]
        )
    values = {v["metric"]: v["value"] for v in finished["data"]["get-sli"]["indicatorValues"]}
    expected = expected_values(k6["metrics"])
    assert expected  # counts exact, rates 1e-6, percentiles 1 %
    wrong = {n: (values[n], e.value) for n, e in expected.items() if not e.holds(values[n])}
    assert wrong == {}
    assert values["http_reqs_total"] > 0


async def test_a_plain_script_runs_with_the_default_and_a_named_binary_with_it(
    service: ServiceFactory, fake_keptn: FakeKeptn, target: TargetServer
) -> None:
    install(
        fake_keptn,
        workloads(
            {"teststrategy": "plain", "script": "k6/plain.js"},
            {"teststrategy": "named", "script": "k6/plain.js", "k6": "faker"},
        ),
        {"k6/plain.js": PLAIN_JS},
    )
    async with service() as url:
        used = {}
        for strategy in ("plain", "named"):
            event = run_trigger(target, strategy)
            await send_event(url, event)
            data = (await finished_for(fake_keptn, event))["data"]
            assert data["status"] == "succeeded", data["message"]
            used[strategy] = (data["k6"]["binary"], data["k6"]["version"], data["k6"]["extensions"])
    assert used == {"plain": ("default", "v1.1.0", []), "named": ("faker", "v1.7.0", [])}


@pytest.mark.parametrize("binaries", ["stock and xk6 (k6 deps)", "stock only (script read)"])
async def test_an_import_nobody_provides_is_errored_and_no_k6_starts(
    binaries: str,
    service: ServiceFactory,
    fake_keptn: FakeKeptn,
    target: TargetServer,
    work_dir: Path,
) -> None:
    """k6/x/sql is imported only by a local module among the workload's files."""
    install(
        fake_keptn,
        workloads({"teststrategy": "sql", "script": "k6/main.js", "files": ["k6/lib/db.js"]}),
        {"k6/main.js": SQL_MAIN_JS, "k6/lib/db.js": SQL_LIB_JS},
    )
    event = run_trigger(target, "sql")
    overrides: dict[str, Any] = {} if binaries.startswith("stock and") else {"k6_binaries": {}}
    async with service(**overrides) as url:
        await send_event(url, event)
        data = (await finished_for(fake_keptn, event))["data"]
    assert (data["status"], data["result"]) == ("errored", "fail")
    message = data["message"]
    assert "imports k6/x/sql and no configured k6 provides k6/x/sql" in message
    assert "no k6 was started" in message
    assert "default (" in message and "xk6 build --with" in message and "K6_BINARIES" in message
    if binaries.startswith("stock and"):
        assert "faker (" in message and "k6/x/faker, k6/x/milvus, k6/x/parquet" in message
    assert data["k6"] == {}  # k6 never ran, so it reported nothing
    assert list(work_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("k6", "expected"),
    [
        ("sql", "asks for k6 'sql', which is not configured (K6_BINARIES names: default, faker)"),
        ("/usr/bin/k6", "'k6' must be the name of a binary from K6_BINARIES"),
        ("default", "k6 'default' lacks k6/x/faker"),
    ],
)
async def test_a_workload_naming_a_binary_it_cannot_have_is_refused(
    k6: str, expected: str, service: ServiceFactory, fake_keptn: FakeKeptn, target: TargetServer
) -> None:
    install(
        fake_keptn,
        workloads({"teststrategy": "named", "script": "k6/load.js", "k6": k6}),
        {"k6/load.js": FAKER_LOAD_JS},
    )
    event = run_trigger(target, "named")
    async with service() as url:
        await send_event(url, event)
        data = (await finished_for(fake_keptn, event))["data"]
    assert (data["status"], data["result"]) == ("errored", "fail")
    assert expected in data["message"]
