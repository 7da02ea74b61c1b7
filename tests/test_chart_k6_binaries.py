"""The chart brings k6 builds with extensions: runner.k6Binaries → init containers, emptyDir,
K6_BINARIES (rendered with Helm's own engine: the helm binary or helm-python-sdk)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devkit import helm
from sli_provider.config import settings_from
from sli_provider.runner.binaries import configured_paths

CHART = helm.CHART
BINARIES = [
    {"name": "faker", "image": "registry.example.org/k6-faker:v1.7.0", "path": "/usr/bin/k6"},
    {"name": "sql", "image": "registry.example.org/k6-sql:v1.7.0", "path": "/k6"},
]

needs_helm = pytest.mark.skipif(not helm.available(), reason="neither helm nor its SDK")


def render(*args: str) -> dict[str, Any]:
    return helm.deployment_pod(helm.render_chart(*args))


def app_container(pod: dict[str, Any]) -> dict[str, Any]:
    app: dict[str, Any] = next(c for c in pod["containers"] if c["name"] == "sli-provider")
    return app


@needs_helm
def test_k6_binaries_become_init_containers_an_empty_dir_and_k6_binaries() -> None:
    pod = render("--set-json", "runner.k6Binaries=" + json.dumps(BINARIES))
    copiers = {c["name"]: c for c in pod["initContainers"]}
    assert set(copiers) == {"k6-faker", "k6-sql"}
    assert copiers["k6-faker"]["image"] == BINARIES[0]["image"]
    assert copiers["k6-faker"]["command"] == ["cp", "/usr/bin/k6", "/opt/k6-binaries/faker"]
    assert copiers["k6-sql"]["command"] == ["cp", "/k6", "/opt/k6-binaries/sql"]
    for copier in copiers.values():
        assert copier["volumeMounts"] == [{"name": "k6-binaries", "mountPath": "/opt/k6-binaries"}]
        assert copier["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "k6-binaries", "emptyDir": {}} in pod["volumes"]
    app = app_container(pod)
    assert {"name": "k6-binaries", "mountPath": "/opt/k6-binaries", "readOnly": True} in app[
        "volumeMounts"
    ]
    env = {e["name"]: e.get("value") for e in app["env"]}
    assert env["K6_BINARIES"] == "faker=/opt/k6-binaries/faker,sql=/opt/k6-binaries/sql"
    assert env["K6_AUTO_EXTENSION_RESOLUTION"] == "false"
    # What the chart sets is what the service accepts.
    settings = settings_from(env)
    assert configured_paths("/usr/local/bin/k6", settings.k6_binaries) == {
        "default": "/usr/local/bin/k6",
        "faker": "/opt/k6-binaries/faker",
        "sql": "/opt/k6-binaries/sql",
    }


@needs_helm
def test_without_k6_binaries_nothing_is_added() -> None:
    pod = render()
    assert "initContainers" not in pod
    assert all(v["name"] != "k6-binaries" for v in pod["volumes"])
    env = {e["name"]: e.get("value") for e in app_container(pod)["env"]}
    assert "K6_BINARIES" not in env


@needs_helm
def test_k6_binaries_follow_the_native_distributor_sidecar() -> None:
    pod = render(
        "--set",
        "nats.url=",
        "--set",
        "distributor.enabled=true",
        "--set",
        "distributor.nativeSidecar=true",
        "--set-json",
        "runner.k6Binaries=" + json.dumps(BINARIES[:1]),
    )
    assert [c["name"] for c in pod["initContainers"]] == ["distributor", "k6-faker"]


@needs_helm
def test_automatic_extension_resolution_can_be_turned_on() -> None:
    pod = render("--set", "runner.autoExtensionResolution=true")
    env = {e["name"]: e.get("value") for e in app_container(pod)["env"]}
    assert env["K6_AUTO_EXTENSION_RESOLUTION"] == "true"


@needs_helm
@pytest.mark.parametrize(
    "bad",
    [
        {"name": "Faker", "image": "i", "path": "/k6"},  # not a DNS label
        {"name": "a/b", "image": "i", "path": "/k6"},
        {"name": "faker", "image": "", "path": "/k6"},
        {"name": "faker", "image": "i", "path": "k6"},  # relative
        {"name": "faker", "image": "i", "path": "/k6,x=/y"},  # would split K6_BINARIES
        {"name": "faker", "image": "i"},
        {"name": "faker", "image": "i", "path": "/k6", "command": "sh"},
    ],
)
def test_the_schema_refuses_bad_entries(bad: dict[str, str]) -> None:
    result = helm.run(
        ["template", "t", str(CHART), "--set-json", f"runner.k6Binaries=[{json.dumps(bad)}]"]
    )
    assert result.returncode != 0
    assert "runner/k6Binaries/0" in result.stderr  # refused by the schema, not by chance


@needs_helm
def test_helm_lint_accepts_k6_binaries() -> None:
    result = helm.run(
        ["lint", "--strict", str(CHART), "--set-json", "runner.k6Binaries=" + json.dumps(BINARIES)]
    )
    assert result.returncode == 0, result.stdout + result.stderr
