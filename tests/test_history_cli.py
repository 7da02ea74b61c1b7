"""``sli-provider history`` as users type it: options after the action, no history made by reading."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devkit.cli import sli_provider_command
from sli_provider.adapters.history_store import HistoryStore
from sli_provider.cli import main


def _event(i: int, project: str) -> dict[str, Any]:
    return {
        "id": f"ev-{i}",
        "type": "sh.keptn.event.evaluation.finished",
        "time": f"2023-05-0{i}T10:00:00.000Z",
        "shkeptncontext": f"ctx-{i}",
        "data": {
            "project": project,
            "stage": "dev",
            "service": "web",
            "result": "pass",
            "evaluation": {"result": "pass", "score": 100, "indicatorResults": []},
        },
    }


def test_history_option_after_the_action(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "h.sqlite3"
    export = tmp_path / "events.json"
    export.write_text(json.dumps([_event(1, "shop")]))
    assert main(["history", "import", str(export), "--history", str(history)]) == 0
    assert history.is_file()
    scope = ["--project", "shop", "--stage", "dev", "--service", "web"]
    assert main(["history", "list", *scope, "--history", str(history)]) == 0
    assert "ev-1" in capsys.readouterr().out
    assert main(["history", "invalidate", "--id", "ev-1", "--history", str(history)]) == 0
    # Before the action still works, and the value given there is not reset by the action.
    assert main(["history", "--history", str(history), "list", *scope]) == 0
    assert "(invalidated)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "action",
    [["list", "--project", "p", "--stage", "s", "--service", "v"], ["invalidate", "--id", "x"]],
)
def test_reading_a_missing_history_says_so_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], action: list[str]
) -> None:
    missing = tmp_path / "sub" / "history.sqlite3"
    assert main(["history", *action, "--history", str(missing)]) == 2
    assert f"no history at {missing}" in capsys.readouterr().err
    assert not missing.exists() and not missing.parent.exists()


def test_listing_an_empty_history_says_it_is_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An existing history without evaluations of the scope: exit 0 and a sentence, not
    silence that reads like a broken command; stdout keeps only evaluations."""
    history = tmp_path / "h.sqlite3"
    export = tmp_path / "events.json"
    export.write_text(json.dumps([_event(1, "other")]))
    assert main(["history", "import", str(export), "--history", str(history)]) == 0
    capsys.readouterr()
    scope = ["--project", "shop", "--stage", "dev", "--service", "web"]
    assert main(["history", "list", *scope, "--history", str(history)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"no evaluations of shop/dev/web in {history}: the history is empty for this scope\n"
    )


def test_import_with_a_scope_flag_refuses_events_of_another_scope(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "h.sqlite3"
    export = tmp_path / "events.json"
    export.write_text(json.dumps([_event(1, "shop"), _event(2, "other")]))
    assert (
        main(["history", "import", str(export), "--project", "shop", "--history", str(history)])
        == 2
    )
    err = capsys.readouterr().err
    assert "'ev-2' is of project 'other', not 'shop'" in err
    with HistoryStore(history) as store:  # nothing stored, under either scope
        assert store.list("shop", "dev", "web") == [] and store.list("other", "dev", "web") == []
    # Without the flag each event keeps its own scope.
    assert main(["history", "import", str(export), "--history", str(history)]) == 0
    with HistoryStore(history) as store:
        assert [r.id for r in store.list("other", "dev", "web")] == ["ev-2"]


def test_import_help_says_other_scopes_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["history", "import", "--help"])
    assert "refused" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "No such file or directory"), ("not json", "not JSON: Expecting value")],
)
def test_an_unreadable_import_file_is_one_plain_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, reason: str
) -> None:
    export = tmp_path / "events.json"
    if content is not None:
        export.write_text(content)
    assert main(["history", "import", str(export), "--history", str(tmp_path / "h")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sli-provider history: cannot read {export}: {reason}"), err
    assert "Errno" not in err and err.count("\n") == 1


def test_list_piped_into_head_ends_quietly(tmp_path: Path) -> None:
    """`history list | head -1`: the first line, and no BrokenPipeError when head goes away."""
    history = tmp_path / "h.sqlite3"
    export = tmp_path / "events.json"
    events = []
    for i in range(3000):  # far more than a pipe holds, so the writer meets a closed pipe
        event = _event(1, "shop")
        event.update(id=f"ev-{i}", time=f"2023-05-01T10:{i // 60 % 60:02d}:{i % 60:02d}.000Z")
        events.append(event)
    export.write_text(json.dumps(events))
    assert main(["history", "import", str(export), "--history", str(history)]) == 0
    command = sli_provider_command(
        "history",
        "list",
        "--project",
        "shop",
        "--stage",
        "dev",
        "--service",
        "web",
        "--history",
        str(history),
    )
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as lister:
        assert lister.stdout is not None and lister.stderr is not None
        head = subprocess.run(["head", "-1"], stdin=lister.stdout, capture_output=True, timeout=60)
        lister.stdout.close()
        errors = lister.stderr.read().decode()
        assert lister.wait(timeout=60) in (0, 141)
    assert errors == ""
    assert head.stdout.decode().count("\n") == 1 and "pass" in head.stdout.decode()


def test_imported_evaluations_keep_keptns_verdict_and_only_passed_ones_are_baselines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Keptn failed run 2 (its data.result); with include_result_with_score: pass the next
    evaluation compares with run 1 only, and the list shows what Keptn said."""
    history = tmp_path / "h.sqlite3"
    passed, failed = _event(1, "shop"), _event(2, "shop")
    failed["data"]["result"] = "fail"
    for event, value in ((passed, 100.0), (failed, 50.0)):
        event["data"]["evaluation"]["indicatorResults"] = [
            {"value": {"metric": "p95", "value": value, "success": True}, "status": "pass"}
        ]
    (tmp_path / "events.json").write_text(json.dumps({"events": [failed, passed]}))
    assert (
        main(["history", "import", str(tmp_path / "events.json"), "--history", str(history)]) == 0
    )
    scope = ["--project", "shop", "--stage", "dev", "--service", "web"]
    capsys.readouterr()
    assert main(["history", "list", *scope, "--history", str(history)]) == 0
    assert [line.split()[1] for line in capsys.readouterr().out.splitlines()] == ["fail", "pass"]
    (tmp_path / "slo.yaml").write_text(
        "comparison: {compare_with: several_results, include_result_with_score: pass}\n"
        "objectives:\n  - sli: p95\n    pass: [{criteria: ['<=+10%']}]\n"
        "total_score: {pass: '90%'}\n"
    )
    (tmp_path / "values.json").write_text(
        json.dumps([{"metric": "p95", "value": 105.0, "success": True}])
    )
    code = main(
        [
            "evaluate",
            "--slo",
            str(tmp_path / "slo.yaml"),
            *scope,
            "--values",
            str(tmp_path / "values.json"),
            "--history",
            str(history),
            "--format",
            "json",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert (
        code == 0 and report["result"] == "pass"
    )  # 105 <= 110% of run 1 (100); with run 2 (avg 75) it would fail
    assert report["evaluation"]["comparedEvents"] == ["ev-1"]
