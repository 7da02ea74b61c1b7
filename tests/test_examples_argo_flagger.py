"""The examples in examples/argo-rollouts/ and examples/flagger/, valid against the tools' CRDs and
played as each tool plays them (devkit/argo.py, devkit/flagger.py) against `/gate` on real k6
runs in a real Prometheus: a passing and a failing service each."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from devkit import argo, flagger
from devkit.gate_runs import GATE_SLO, write_slo
from devkit.k6run import run_load
from devkit.kube.schema import apply_schema, load_crd_schema
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from devkit.target import TargetServer
from sli_provider.config import Secret
from sli_provider.k6.invocation import RunTags
from tests.helpers import gate_settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# The tools' own CRDs, unchanged (SOURCE.md beside each says from where).
REFERENCE = ROOT / "devkit" / "reference"
ARGO_TEMPLATES = [
    EXAMPLES / "argo-rollouts" / n for n in ("analysis-template.yaml", "load-test-template.yaml")
]
CANARY = EXAMPLES / "flagger" / "canary.yaml"
TOKEN = "s3cret"
SECRETS = {("k6-sli-provider-gate", "token"): TOKEN}
WARNING_SLO = """\
objectives:
  - sli: http_reqs_total
    pass: [{criteria: [">=1000000000"]}]
    warning: [{criteria: [">=1"]}]
total_score: {pass: "90%", warning: "50%"}
"""


def crd_schema(name: str, version: str) -> dict[str, Any]:
    return load_crd_schema(REFERENCE / name, version)


@pytest.mark.parametrize(
    ("path", "crd", "version"),
    [
        *((p, "argo-rollouts/analysis-template-crd.yaml", "v1alpha1") for p in ARGO_TEMPLATES),
        (CANARY, "flagger/canaries-crd.yaml", "v1beta1"),
    ],
    ids=lambda v: v.name if isinstance(v, Path) else None,
)
def test_the_examples_are_valid_against_the_crds(path: Path, crd: str, version: str) -> None:
    """As the API server applies the CRD's structural schema (nothing pruned, no cause), and by
    jsonschema as an independent validator of the same openAPIV3Schema."""
    document = yaml.safe_load(path.read_text())
    schema = crd_schema(crd, version)
    outcome = apply_schema(schema, document)
    # devkit/kube/schema.py prunes below x-kubernetes-preserve-unknown-fields too (the Pod
    # volumes of a job metric); the API server keeps what lies there.
    pruned = [f for f in outcome.unknown_fields if not preserved(schema, f)]
    assert pruned == [] and outcome.causes == [], (pruned, outcome.causes)
    jsonschema.validate({k: v for k, v in document.items() if k != "metadata"}, schema)


def preserved(schema: dict[str, Any], path: str) -> bool:
    """Whether a field lies below a schema node that keeps unknown fields."""
    node = schema
    for part in path.replace("]", "").replace("[", ".").split("."):
        if node.get("x-kubernetes-preserve-unknown-fields"):
            return True
        node = node["items"] if part.isdigit() else node.get("properties", {}).get(part, {})
    return bool(node.get("x-kubernetes-preserve-unknown-fields"))


@pytest.fixture(scope="module")
async def prometheus_of_examples(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[PrometheusServer]:
    """A Prometheus of their own: the Canary's scope (shop/staging/web) is fixed in the example,
    and its latest run must be the one this module ran."""
    async with PrometheusServer(tmp_path_factory.mktemp("prometheus-examples")) as server:
        yield server


def in_test(url_in_example: str, service_url: str) -> str:
    """The example's URL with the test service's address: scheme, host and port only."""
    return service_url + urlsplit(url_in_example).path


async def test_argo_web_metric_pass_fail_warning_and_cannot_judge(
    prometheus_of_examples: PrometheusServer, target: TargetServer, tmp_path: Path
) -> None:
    template = argo.load_template(ARGO_TEMPLATES[0])
    (metric,) = argo.metrics_of(template, "web")
    default_url = next(a["value"] for a in template["spec"]["args"] if a["name"] == "gate-url")
    scopes = {}
    for kind, fail_every in (("passing", 0), ("failing", 2), ("warning", 0)):
        tags = RunTags("argo", "staging", f"{kind}-{uuid.uuid4().hex[:6]}", str(uuid.uuid4()))
        write_slo(tmp_path / "config", tags, WARNING_SLO if kind == "warning" else GATE_SLO)
        await run_load(
            prometheus_url=prometheus_of_examples.url,
            target_url=target.url,
            tags=tags,
            workdir=tmp_path,
            vus=2,
            duration="2s",
            fail_every=fail_every,
        )
        scopes[kind] = {"project": tags.project, "stage": tags.stage, "service": tags.service}
    scopes["never-ran"] = {**scopes["passing"], "service": "never-ran"}
    write_slo(tmp_path / "config", RunTags("argo", "staging", "never-ran", ""))
    settings = gate_settings(prometheus_of_examples, tmp_path, preview_token=Secret(TOKEN))
    async with running_service(settings) as url:
        gate_url = in_test(default_url, url)
        phases = {}
        for kind, scope in scopes.items():
            measurement = await argo.run_metric(
                template, metric, {**scope, "gate-url": gate_url}, SECRETS
            )
            phases[kind] = measurement.phase
            print(
                f"\nArgo {kind}: request {measurement.request}\n  response "
                f"{measurement.status} {measurement.body[:400]}\n  value {measurement.value!r} "
                f"-> measurement {measurement.phase} {measurement.message}"
            )
        crossed = await argo.run_metric(
            template,
            metric,
            {**scopes["passing"], "gate-url": gate_url, "thresholds": '{"http_reqs": ["count<1"]}'},
            SECRETS,
        )
        wrong_token = await argo.run_metric(
            template,
            metric,
            {**scopes["passing"], "gate-url": gate_url},
            {("k6-sli-provider-gate", "token"): "wrong"},
        )
    assert phases == {
        "passing": argo.SUCCESSFUL,
        "failing": argo.FAILED,
        "warning": argo.INCONCLUSIVE,
        "never-ran": argo.ERROR,
    }
    assert wrong_token.phase == argo.ERROR and "401" in wrong_token.message
    assert crossed.phase == argo.FAILED, crossed  # the script's threshold, on the whole run


async def test_argo_job_metric_runs_k6_and_the_gate(
    prometheus_of_examples: PrometheusServer, target: TargetServer, tmp_path: Path
) -> None:
    template = argo.load_template(ARGO_TEMPLATES[1])
    (metric,) = argo.metrics_of(template, "job")
    files, history = tmp_path / "files", tmp_path / "history"
    files.mkdir()
    history.mkdir()
    (files / "slo.yaml").write_text(GATE_SLO)
    (files / "load.js").write_text(
        "import http from 'k6/http';\n"
        "export const options = { vus: 2, duration: '2s' };\n"
        "export default function () { http.get(__ENV.TARGET_URL); }\n"
    )
    phases = {}
    for kind, path in (("passing", "/"), ("failing", "/fail")):
        args = {
            "project": "argo-job",
            "stage": "staging",
            "service": kind,
            "target-url": target.url + path,
            "prometheus-url": prometheus_of_examples.url,
        }
        resolved = argo.resolve_metric(template, metric, args)
        measurement = await argo.run_job(resolved, {"/gate": files, "/history": history})
        phases[kind] = measurement.phase
        print(f"\nArgo job {kind}: exit code {measurement.value} -> {measurement.phase}")
    assert phases == {"passing": argo.SUCCESSFUL, "failing": argo.FAILED}, measurement.message


async def test_flagger_rollout_webhook_passes_then_fails_the_canary(
    prometheus_of_examples: PrometheusServer, target: TargetServer, tmp_path: Path
) -> None:
    canary = flagger.load_canary(CANARY)
    rollout = flagger.webhook(canary, "k6-quality-gate")
    promotion = flagger.webhook(canary, "k6-quality-gate-promotion")
    metadata = rollout["metadata"]
    tags = RunTags(metadata["project"], metadata["stage"], metadata["service"], "")
    write_slo(tmp_path / "config", tags)
    outcomes = {}
    async with running_service(gate_settings(prometheus_of_examples, tmp_path)) as url:
        before = await flagger.call(canary, rollout, url=in_test(rollout["url"], url))
        for kind, fail_every in (("passing", 0), ("failing", 2)):
            run_tags = RunTags(tags.project, tags.stage, tags.service, str(uuid.uuid4()))
            await run_load(
                prometheus_url=prometheus_of_examples.url,
                target_url=target.url,
                tags=run_tags,
                workdir=tmp_path,
                vus=2,
                duration="2s",
                fail_every=fail_every,
            )
            for hook in (rollout, promotion):
                call = await flagger.call(canary, hook, url=in_test(hook["url"], url))
                outcomes[(kind, hook["type"])] = call.failed
                print(
                    f"\nFlagger {hook['type']} after the {kind} run: POST {hook['url']} "
                    f"{call.payload}\n  response {call.status} {call.body[:300]}\n  -> "
                    f"{'failed check' if call.failed else 'passed check'}"
                )
    assert before.failed and before.status == 422  # no run yet: never a pass
    assert outcomes == {
        ("passing", "rollout"): False,
        ("passing", "confirm-promotion"): False,
        ("failing", "rollout"): True,
        ("failing", "confirm-promotion"): True,
    }


async def test_flagger_pre_rollout_webhook_runs_the_workload_and_gates_on_it(
    prometheus_of_examples: PrometheusServer, target: TargetServer, tmp_path: Path
) -> None:
    """The service's runner runs the scope's k6/performance.js (from SLI_CONFIG_DIR, as from
    Keptn's resources), then the gate scores that run with k6's own thresholds."""
    canary = flagger.load_canary(CANARY)
    hook = flagger.webhook(canary, "k6-load-test-and-gate")
    metadata = hook["metadata"]
    tags = RunTags(metadata["project"], metadata["stage"], metadata["service"], "")
    write_slo(tmp_path / "config", tags)
    script = (
        tmp_path / "config" / tags.project / tags.stage / tags.service / "k6" / "performance.js"
    )
    script.parent.mkdir(parents=True)
    settings = gate_settings(prometheus_of_examples, tmp_path, runner_enabled=True)
    calls = {}
    async with running_service(settings) as url:
        # The second run meets slo.yaml but crosses its k6 threshold.
        for kind, threshold in (
            ("passing", "http_req_failed: ['rate<0.5']"),
            ("failing", "http_reqs: ['count<1']"),
        ):
            script.write_text(
                "import http from 'k6/http';\n"
                f"export const options = {{ vus: 2, duration: '2s', thresholds: {{ {threshold} }} }};\n"
                f"export default function () {{ http.get('{target.url}/'); }}\n"
            )
            call = await flagger.call(canary, hook, url=in_test(hook["url"], url))
            calls[kind] = call
            print(
                f"\nFlagger pre-rollout ({kind} script): POST {hook['url']} {call.payload}\n"
                f"  response {call.status} {call.body[:400]}\n  -> "
                f"{'failed check' if call.failed else 'passed check'}"
            )
    assert not calls["passing"].failed and calls["passing"].status == 200
    assert calls["failing"].failed and calls["failing"].status == 412
    failing = json.loads(calls["failing"].body)
    assert (failing["result"], failing["evaluation"]["result"]) == ("fail", "pass")
    assert failing["k6"]["exitCode"] == 99
    assert failing["k6"]["thresholds"][0]["status"] == "crossed"
    assert "k6 thresholds crossed: http_reqs: count<1" in failing["reasons"][0]
