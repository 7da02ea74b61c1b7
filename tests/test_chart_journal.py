"""The chart's journal volume: journal.enabled → JOURNAL_PATH on an emptyDir or an existing PVC
(rendered with Helm's own engine: the helm binary or helm-python-sdk)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devkit import helm
from sli_provider.config import settings_from

CHART = helm.CHART
DISTRIBUTOR = ("--set", "nats.url=", "--set", "distributor.enabled=true")

needs_helm = pytest.mark.skipif(not helm.available(), reason="neither helm nor its SDK")


def render(*args: str) -> dict[str, Any]:
    return helm.deployment_pod(helm.render_chart(*args))


def app_env(pod: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    app: dict[str, Any] = next(c for c in pod["containers"] if c["name"] == "sli-provider")
    return app, {e["name"]: e["value"] for e in app["env"] if "value" in e}


@needs_helm
def test_the_journal_behind_the_distributor_is_on_an_emptydir_by_default() -> None:
    pod = render(*DISTRIBUTOR, "--set", "journal.enabled=true", "--set", "journal.ttlSeconds=600")
    app, env = app_env(pod)
    assert env["JOURNAL_PATH"] == "/var/lib/sli-provider/journal/journal.db"
    assert env["JOURNAL_TTL_SECONDS"] == "600"
    assert {"name": "journal", "mountPath": "/var/lib/sli-provider/journal"} in app["volumeMounts"]
    assert {"name": "journal", "emptyDir": {}} in pod["volumes"]
    settings = settings_from(env)  # what the chart sets, the service accepts
    assert settings.journal_path == Path(env["JOURNAL_PATH"])
    assert settings.journal_ttl_seconds == 600


@needs_helm
def test_the_journal_of_core_nats_can_be_an_existing_claim() -> None:
    pod = render(
        "--set",
        "nats.delivery=core",
        "--set",
        "journal.enabled=true",
        "--set",
        "journal.existingClaim=sli-journal",
    )
    _, env = app_env(pod)
    assert {"name": "journal", "persistentVolumeClaim": {"claimName": "sli-journal"}} in pod[
        "volumes"
    ]
    assert settings_from(env).journal_path is not None


@needs_helm
def test_without_the_journal_there_is_no_journal_path() -> None:
    pod = render()
    _, env = app_env(pod)
    assert "JOURNAL_PATH" not in env
    assert env["JOURNAL_TTL_SECONDS"] == "86400"  # jetstream's shared journal
    assert all(v["name"] != "journal" for v in pod["volumes"])


@needs_helm
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--set", "journal.enabled=true"), "with jetstream the replicas already share a journal"),
        (
            (
                *DISTRIBUTOR,
                "--set",
                "journal.enabled=true",
                "--set",
                "journal.existingClaim=j",
                "--set",
                "replicaCount=2",
            ),
            "would share one journal between pods",
        ),
    ],
    ids=["jetstream", "one claim for two pods"],
)
def test_the_chart_refuses_a_journal_that_cannot_work(args: tuple[str, ...], message: str) -> None:
    result = helm.run(["template", "t", str(CHART), *args])
    assert result.returncode != 0
    assert message in result.stderr
