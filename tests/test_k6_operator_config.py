"""k6-operator workloads and settings: strict validation, and the refusal when not enabled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devkit.fake_keptn import FakeKeptn
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from devkit.target import TargetServer
from sli_provider.config import ConfigError, Settings, default_kubeconfig, settings_from
from sli_provider.runner.distribution import Distribution, RunnerPod
from sli_provider.runner.workloads import WorkloadError, parse_workloads
from tests.helpers import (
    LOAD_JS,
    finished_for,
    install,
    load_workload,
    run_trigger,
    send_event,
    workloads,
)


def one(**fields: Any) -> str:
    return json.dumps({"workloads": [{"teststrategy": "load", "script": "k6/load.js", **fields}]})


def test_local_is_the_default_executor() -> None:
    (workload,) = parse_workloads(one(), "k6.conf.yaml")
    assert workload.executor == "local"
    assert workload.distribution is None


def test_a_k6_operator_workload_keeps_its_runner_settings() -> None:
    (workload,) = parse_workloads(
        one(
            executor="k6-operator",
            parallelism=3,
            separate=True,
            runner={
                "image": "example.org/k6-faker:1",
                "resources": {"limits": {"cpu": 1, "memory": "512Mi"}},
                "nodeSelector": {"pool": "load", "ssd": True},
                "tolerations": [{"key": "load", "operator": "Exists", "effect": "NoSchedule"}],
                "env": {"GOMAXPROCS": 2},
            },
        ),
        "k6.conf.yaml",
    )
    assert workload.executor == "k6-operator"
    assert workload.distribution == Distribution(
        parallelism=3,
        separate=True,
        runner=RunnerPod(
            image="example.org/k6-faker:1",
            resources={"limits": {"cpu": "1", "memory": "512Mi"}},
            node_selector={"pool": "load", "ssd": "true"},
            tolerations=({"key": "load", "operator": "Exists", "effect": "NoSchedule"},),
            env={"GOMAXPROCS": "2"},
        ),
    )


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"executor": "kubernetes"}, "'executor' must be local or k6-operator"),
        ({"parallelism": 2}, "'parallelism' only apply to 'executor: k6-operator'"),
        ({"executor": "k6-operator", "parallelism": 0}, "'parallelism' must be an integer"),
        ({"executor": "k6-operator", "parallelism": True}, "'parallelism' must be an integer"),
        ({"executor": "k6-operator", "separate": "yes"}, "'separate' must be true or false"),
        ({"executor": "k6-operator", "runner": {"imag": "x"}}, "unknown key(s) imag"),
        ({"executor": "k6-operator", "runner": {"image": ""}}, "'image' must be an image"),
        (
            {"executor": "k6-operator", "runner": {"resources": {"limits": {"cpu": "lots"}}}},
            "'resources.limits.cpu' must be a quantity",
        ),
        (
            {"executor": "k6-operator", "runner": {"tolerations": [{"operator": "Maybe"}]}},
            "'operator' must be Equal or Exists",
        ),
        (
            {"executor": "k6-operator", "runner": {"env": {"K6_PROMETHEUS_RW_SERVER_URL": "x"}}},
            "cannot set K6_PROMETHEUS_RW_SERVER_URL",
        ),
        ({"executor": "k6-operator", "runner": {"nodeSelector": ["a"]}}, "'nodeSelector' must"),
        ({"executor": "k6-operator", "parallelism": 3, "vus": 2}, "'vus' (2) must be at least"),
    ],
)
def test_bad_k6_operator_settings_are_named(fields: dict[str, Any], says: str) -> None:
    with pytest.raises(WorkloadError) as caught:
        parse_workloads(one(**fields), "k6.conf.yaml")
    assert "k6.conf.yaml workload 1" in str(caught.value)
    assert says in str(caught.value)


def test_k6_operator_settings_default_off_and_pinned() -> None:
    settings = settings_from({"HOME": "/home/u"})
    assert settings.k6_operator_enabled is False
    assert settings.k6_operator_runner_image == "grafana/k6:1.1.0"
    assert settings.k6_operator_kubeconfig == Path("/home/u/.kube/config")


def test_the_runner_image_is_the_k6_the_runner_runs() -> None:
    """The image's k6 (Dockerfile) and the tests' k6 (venv) are the runners' version too."""
    import re
    from importlib.metadata import version

    dockerfile = (Path(__file__).resolve().parent.parent / "Dockerfile").read_text()
    (pinned,) = set(re.findall(r'"k6==([0-9.]+)"', dockerfile))
    assert Settings().k6_operator_runner_image == f"grafana/k6:{pinned}"
    assert version("k6") == pinned


def test_kubeconfig_default_is_in_cluster_in_a_pod_else_kubeconfig_variable() -> None:
    assert default_kubeconfig({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "HOME": "/h"}) is None
    assert default_kubeconfig({"KUBECONFIG": "/a:/b", "HOME": "/h"}) == Path("/a")
    assert settings_from({"K6_OPERATOR_KUBECONFIG": "/k"}).k6_operator_kubeconfig == Path("/k")


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"K6_OPERATOR_ENABLED": "maybe"}, "K6_OPERATOR_ENABLED must be true"),
        ({"K6_OPERATOR_NAMESPACE": "Load_Tests"}, "K6_OPERATOR_NAMESPACE must be a namespace"),
        ({"K6_OPERATOR_REMOTE_WRITE_SECRET": "a b"}, "K6_OPERATOR_REMOTE_WRITE_SECRET must be"),
    ],
)
def test_bad_k6_operator_settings_stop_the_start(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        settings_from(env)


async def test_a_k6_operator_workload_without_the_operator_enabled_is_errored(
    prometheus: PrometheusServer, fake_keptn: FakeKeptn, target: TargetServer, tmp_path: Path
) -> None:
    install(
        fake_keptn,
        workloads(load_workload(executor="k6-operator", parallelism=2)),
        {"k6/load.js": LOAD_JS},
    )
    settings = Settings(
        prometheus_url=prometheus.url, distributor_url=fake_keptn.url, runner_work_dir=tmp_path
    )
    async with running_service(settings) as url:
        event = run_trigger(target)
        await send_event(url, event)
        finished = await finished_for(fake_keptn, event)
    assert finished["data"]["status"] == "errored"
    assert finished["data"]["result"] == "fail"
    assert "'executor: k6-operator'" in finished["data"]["message"]
    assert "K6_OPERATOR_ENABLED is false" in finished["data"]["message"]


def test_serve_with_an_unreadable_kubeconfig_says_so_in_one_line(tmp_path: Path) -> None:
    from tests.test_cli_and_config import assert_one_line, run_cli, serve_env

    missing = tmp_path / "kubeconfig"
    env = serve_env(K6_OPERATOR_ENABLED="true", K6_OPERATOR_KUBECONFIG=str(missing))
    assert_one_line(
        run_cli("serve", env=env, timeout=20),
        f"K6_OPERATOR_KUBECONFIG: cannot read the Kubernetes access from {missing}",
    )
