"""The chart's k6-operator values: the env the service reads, and a Role with exactly the calls
the back-end makes, in one namespace (rendered with Helm's engine, checked with
kubernetes-validate against the Kubernetes API schemas)."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest

from devkit import helm
from sli_provider.config import settings_from
from sli_provider.runner.k6_operator.kube import RBAC_RULES

CHART = helm.CHART
KUBERNETES_VERSION = "1.30.0"

pytestmark = pytest.mark.skipif(not helm.available(), reason="neither helm nor its SDK")


def render(*args: str) -> list[dict[str, Any]]:
    # The release namespace is "default" (devkit/helm.py renders there without the binary).
    docs = helm.render_chart(*args)
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    return docs


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def app_env(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    (app,) = [c for c in helm.deployment_pod(docs)["containers"] if c["name"] == "sli-provider"]
    return {e["name"]: e for e in app["env"]}


def test_disabled_by_default_without_rbac_or_token() -> None:
    docs = render()
    assert of_kind(docs, "Role") == [] and of_kind(docs, "RoleBinding") == []
    assert not any(name.startswith("K6_OPERATOR_") for name in app_env(docs))
    assert helm.deployment_pod(docs)["automountServiceAccountToken"] is False


def test_enabled_renders_a_role_for_exactly_the_backends_calls_in_one_namespace() -> None:
    docs = render("--set", "k6Operator.enabled=true", "--set", "k6Operator.namespace=load")
    (role,) = of_kind(docs, "Role")
    (binding,) = of_kind(docs, "RoleBinding")
    assert of_kind(docs, "ClusterRole") == [] and of_kind(docs, "ClusterRoleBinding") == []
    assert role["metadata"]["namespace"] == "load"
    granted = {
        (group, resource): frozenset(rule["verbs"])
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert granted == RBAC_RULES
    (service_account,) = of_kind(docs, "ServiceAccount")
    assert binding["metadata"]["namespace"] == "load"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": service_account["metadata"]["name"],
            "namespace": "default",
        }
    ]
    assert helm.deployment_pod(docs)["automountServiceAccountToken"] is True


def test_enabled_sets_the_env_the_service_reads() -> None:
    docs = render(
        "--set",
        "k6Operator.enabled=true",
        "--set",
        "k6Operator.runnerImage=example.org/k6-faker:1",
        "--set",
        "k6Operator.remoteWriteSecret=k6-remote-write",
    )
    env = app_env(docs)
    assert env["K6_OPERATOR_REPLICA"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    plain = {name: e["value"] for name, e in env.items() if "value" in e}
    settings = settings_from({**plain, "K6_OPERATOR_REPLICA": "pod-0"})
    assert settings.k6_operator_enabled is True
    assert settings.k6_operator_namespace == "default"  # the release namespace by default
    assert settings.k6_operator_runner_image == "example.org/k6-faker:1"
    assert settings.k6_operator_remote_write_secret == "k6-remote-write"
    (role,) = of_kind(docs, "Role")
    assert role["metadata"]["namespace"] == "default"


@pytest.mark.parametrize(
    ("value", "bad"),
    [("namespace", "Load_Tests"), ("remoteWriteSecret", "a b"), ("enabled", "maybe")],
)
def test_the_schema_refuses_bad_values(value: str, bad: str) -> None:
    result = helm.run(
        ["template", "t", str(CHART), "--set-json", f"k6Operator.{value}={json.dumps(bad)}"]
    )
    assert result.returncode != 0
    assert f"k6Operator/{value}" in result.stderr or f"k6Operator.{value}" in result.stderr
