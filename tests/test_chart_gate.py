"""The chart and the gate endpoint: its history volume, its deadline, and a NetworkPolicy that
opens the service's port to the namespaces of Argo Rollouts, Flagger and CI (rendered with Helm's
own engine: the helm binary or helm-python-sdk)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from devkit import helm
from sli_provider.config import settings_from

CHART = helm.CHART
KUBERNETES_VERSION = "1.30.0"

needs_helm = pytest.mark.skipif(not helm.available(), reason="neither helm nor its SDK")


def app_env(pod: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    app: dict[str, Any] = next(c for c in pod["containers"] if c["name"] == "sli-provider")
    return app, {e["name"]: e["value"] for e in app["env"] if "value" in e}


@needs_helm
def test_the_gate_history_is_on_a_volume_and_the_service_accepts_the_settings() -> None:
    pod = helm.deployment_pod(helm.render_chart("--set", "gate.deadlineSeconds=6"))
    app, env = app_env(pod)
    settings = settings_from(env)
    assert settings.gate_history == Path("/var/lib/sli-provider/gate/history.sqlite3")
    assert settings.gate_deadline_seconds == 6
    assert {"name": "gate-history", "mountPath": "/var/lib/sli-provider/gate"} in app[
        "volumeMounts"
    ]
    assert {"name": "gate-history", "emptyDir": {}} in pod["volumes"]
    claimed = helm.deployment_pod(helm.render_chart("--set", "gate.history.existingClaim=gate"))
    assert {"name": "gate-history", "persistentVolumeClaim": {"claimName": "gate"}} in claimed[
        "volumes"
    ]


@needs_helm
def test_one_claim_for_two_pods_is_refused() -> None:
    result = helm.run(
        [
            "template",
            "t",
            str(CHART),
            "--set",
            "gate.history.existingClaim=gate",
            "--set",
            "replicaCount=2",
        ]
    )
    assert result.returncode != 0
    assert "a SQLite history belongs to one pod" in result.stderr


@needs_helm
def test_the_network_policy_opens_the_port_to_the_listed_namespaces() -> None:
    assert not [d for d in helm.render_chart() if d["kind"] == "NetworkPolicy"]  # off by default
    docs = helm.render_chart(
        "--set",
        "gate.networkPolicy.enabled=true",
        "--set",
        "gate.networkPolicy.namespaces={argo-rollouts,flagger-system}",
        "--set",
        "service.port=9090",
    )
    (policy,) = [d for d in docs if d["kind"] == "NetworkPolicy"]
    kubernetes_validate.validate(policy, KUBERNETES_VERSION, strict=True)
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": 9090, "protocol": "TCP"}]
    (peer,) = rule["from"]
    (expression,) = peer["namespaceSelector"]["matchExpressions"]  # the release's namespace first
    assert expression == {
        "key": "kubernetes.io/metadata.name",
        "operator": "In",
        "values": ["default", "argo-rollouts", "flagger-system"],
    }


@needs_helm
def test_the_gate_without_keptn_reads_slo_yaml_from_a_configmap() -> None:
    """The values docs/gate-endpoint.md shows for a cluster without Keptn."""
    pod = helm.deployment_pod(
        helm.render_chart(
            "--set",
            "nats.url=",
            "--set",
            "keptnApi.resourceServiceUrl=",
            "--set",
            "runner.enabled=false",
            "--set-json",
            'extraEnv=[{"name": "SLI_CONFIG_DIR", "value": "/etc/sli-provider/config"}]',
            "--set-json",
            'extraVolumes=[{"name": "gate-config", "configMap": {"name": "k6-gate-config",'
            ' "items": [{"key": "web-slo.yaml", "path": "shop/staging/web/slo.yaml"}]}}]',
            "--set-json",
            'extraVolumeMounts=[{"name": "gate-config",'
            ' "mountPath": "/etc/sli-provider/config", "readOnly": true}]',
        )
    )
    app, env = app_env(pod)
    settings = settings_from(env)
    assert settings.sli_config_dir == Path("/etc/sli-provider/config")
    assert settings.nats_url is None and settings.resource_service_url is None
    assert not settings.runner_enabled
    mount = next(m for m in app["volumeMounts"] if m["name"] == "gate-config")
    volume = next(v for v in pod["volumes"] if v["name"] == "gate-config")
    # <dir>/<project>/<stage>/<service>/slo.yaml, where the gate looks for it
    assert f"{mount['mountPath']}/{volume['configMap']['items'][0]['path']}" == (
        "/etc/sli-provider/config/shop/staging/web/slo.yaml"
    )
