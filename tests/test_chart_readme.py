"""chart/README.md's examples render as written (Helm's engine: the helm binary or helm-python-sdk)."""

from __future__ import annotations

import itertools
import re
import shlex
from pathlib import Path

import pytest
import yaml

from devkit import helm

CHART = Path(__file__).resolve().parent.parent / "chart"
README = (CHART / "README.md").read_text()


def _sets_of_example(needle: str) -> list[str]:
    """The ``--set`` arguments of the README's ``sh`` block that contains ``needle``."""
    blocks = re.findall(r"```sh\n(.*?)\n```", README, re.S)
    (block,) = [b for b in blocks if needle in b]
    words = shlex.split(block.replace("\\\n", " "), comments=True)
    return [arg for flag, arg in itertools.pairwise(words) if flag == "--set"]


@pytest.mark.skipif(not helm.available(), reason="neither helm nor helm-python-sdk installed")
def test_the_keptn_api_token_secret_example_renders_as_written() -> None:
    sets = _sets_of_example("keptnApi.tokenSecret.name=keptn-api-token")
    args = [part for expression in sets for part in ("--set", expression)]
    result = helm.run(["template", "t", str(CHART), *args])
    assert result.returncode == 0, result.stderr
    deployment = next(
        d for d in yaml.safe_load_all(result.stdout) if d and d["kind"] == "Deployment"
    )
    (app,) = [
        c
        for c in deployment["spec"]["template"]["spec"]["containers"]
        if c["name"] == "sli-provider"
    ]
    env = {e["name"]: e for e in app["env"]}
    assert env["KEPTN_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "keptn-api-token",
        "key": "keptn-api-token",
    }


@pytest.mark.skipif(not helm.available(), reason="neither helm nor helm-python-sdk installed")
@pytest.mark.parametrize(
    "readme", [CHART / "README.md", CHART.parent / "README.md"], ids=["chart", "project"]
)
def test_the_install_example_renders_as_written(readme: Path) -> None:
    """Both READMEs open with ``helm install ... --set lighthouseConfig.projects={shop}``."""
    blocks = re.findall(r"```sh\n(.*?)\n```", readme.read_text(), re.S)
    (block,) = [
        b
        for b in blocks
        if "helm install k6-sli-provider ./chart" in b and "lighthouseConfig.projects" in b
    ]
    words = shlex.split(block.replace("\\\n", " "), comments=True)
    sets = [arg for flag, arg in itertools.pairwise(words) if flag == "--set"]
    docs = helm.render_chart(*(part for expression in sets for part in ("--set", expression)))
    pod = helm.deployment_pod(docs)
    (app,) = [c for c in pod["containers"] if c["name"] == "sli-provider"]
    env = {e["name"]: e.get("value") for e in app["env"]}
    # The image the block's `docker build -t` made: the chart's appVersion is its tag.
    (built,) = re.findall(r"docker build -t (\S+) \.", block)
    assert app["image"] == built
    assert env["PROMETHEUS_URL"] == "http://prometheus-server.monitoring.svc:80"
    (lighthouse,) = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "lighthouse-config-shop"
    ]
    assert lighthouse["data"] == {"sli-provider": "k6"}
