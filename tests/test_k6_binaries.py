"""The k6 binary registry and what a script needs, with the real stock k6 and a real xk6 build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devkit.k6binaries import EXTENSION_K6_IMPORTS, EXTENSION_K6_VERSION, extension_k6
from sli_provider.config import ConfigError, Settings
from sli_provider.k6.invocation import K6Invocation, RemoteWriteTarget, RunTags
from sli_provider.runner.backend import K6StartError
from sli_provider.runner.binaries import (
    K6BinaryError,
    K6Registry,
    NoSuitableK6,
    configured_paths,
    parse_version_text,
    probe,
)
from sli_provider.runner.deps import needed_extensions
from sli_provider.runner.extensions import extension_imports, module_specifiers
from sli_provider.runner.local import LocalK6Backend, find_k6_binary, process_env
from sli_provider.runner.plan import RunPlan, StagedScript
from sli_provider.runner.workloads import WorkloadError, parse_workloads
from sli_provider.wiring import load_k6_registry
from tests.helpers import cli

STOCK_VERSION = "v1.1.0"


@pytest.fixture(scope="module")
def faker_k6(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return extension_k6(tmp_path_factory.mktemp("xk6"))


# --- what a script needs (pure) ---


def test_module_specifiers_cover_import_forms() -> None:
    source = """
    import http from 'k6/http';
    import faker from "k6/x/faker";
    import { a, b } from './lib/a.js';
    import * as all from "../shared/b.js";
    import './side-effect.js';
    export { c } from "./c.js";
    const sql = require("k6/x/sql");
    const later = await import('k6/x/kafka');
    """
    assert module_specifiers(source) == [
        "k6/http",
        "k6/x/faker",
        "./lib/a.js",
        "../shared/b.js",
        "./side-effect.js",
        "./c.js",
        "k6/x/sql",
        "k6/x/kafka",
    ]


def test_an_import_reached_only_through_local_modules_among_files_is_found() -> None:
    files = {
        "k6/main.js": 'import { q } from "./lib/db.js";\nimport http from "k6/http";',
        "k6/lib/db.js": 'const sql = require("k6/x/sql");\nimport "../util/cycle.js";',
        "k6/util/cycle.js": 'import "../lib/db.js"; import f from "k6/x/faker";',
        "k6/unused.js": 'import k from "k6/x/kafka";',  # among the files but not imported
    }
    needed = extension_imports("k6/main.js", files.get)
    assert needed == {"k6/x/sql", "k6/x/faker"}
    # A module that is not among the files is not followed (k6 would fail on it anyway).
    assert extension_imports("k6/main.js", {"k6/main.js": files["k6/main.js"]}.get) == set()


# --- asking each binary what it is ---


def test_probing_the_stock_k6_and_the_xk6_build(faker_k6: Path) -> None:
    stock = probe("default", find_k6_binary())
    assert (stock.version, stock.provides, stock.has_deps) == (STOCK_VERSION, frozenset(), False)
    faker = probe("faker", str(faker_k6))
    assert faker.version == EXTENSION_K6_VERSION
    assert faker.provides == EXTENSION_K6_IMPORTS
    assert faker.has_deps


def test_the_text_of_k6_version_gives_the_same_answer_as_json(faker_k6: Path) -> None:
    for path, imports in ((faker_k6, EXTENSION_K6_IMPORTS), (Path(find_k6_binary()), set())):
        text = subprocess.run([str(path), "version"], capture_output=True, text=True, timeout=10)
        parsed = parse_version_text(text.stdout)
        assert parsed is not None and parsed[1] == imports and parsed[0].startswith("v1.")


def test_a_binary_that_does_not_answer_like_k6_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(K6BinaryError, match=r"k6 binary 'fake' \(/bin/echo\) does not answer"):
        probe("fake", "/bin/echo")
    missing = str(tmp_path / "nope")
    with pytest.raises(ConfigError, match=rf"'gone' \({missing}\) cannot be run"):
        probe("gone", missing)


def test_serve_refuses_to_start_with_a_binary_that_is_not_k6(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PROMETHEUS_URL": "http://127.0.0.1:9",
        "K6_BINARIES": "sql=/bin/echo",
    }
    done = cli("serve", cwd=tmp_path, env=env)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "sli-provider: configuration error: k6 binary 'sql' (/bin/echo) does not answer "
        "'version' like k6"
    ]


def test_k6_binaries_names_are_checked() -> None:
    assert configured_paths("/k6", {"faker": "/x"}) == {"default": "/k6", "faker": "/x"}
    with pytest.raises(ConfigError, match="'default' is K6_BINARY's"):
        configured_paths("/k6", {"default": "/x"})
    with pytest.raises(ConfigError, match="is not a name"):
        configured_paths("/k6", {"a/b": "/x"})


def test_the_registry_is_built_from_the_settings_default_first(faker_k6: Path) -> None:
    settings = Settings(k6_binaries={"faker": str(faker_k6)})
    registry = load_k6_registry(settings)
    assert [(b.name, b.version) for b in registry.binaries] == [
        ("default", STOCK_VERSION),
        ("faker", EXTENSION_K6_VERSION),
    ]


def test_a_changed_file_is_asked_again_before_a_run(tmp_path: Path, faker_k6: Path) -> None:
    path = tmp_path / "k6-x"
    shutil.copyfile(find_k6_binary(), path)
    path.chmod(0o755)
    registry = K6Registry([probe("x", str(path))])
    assert registry.binaries[0].provides == frozenset()
    shutil.copyfile(faker_k6, path)  # the operator replaced the build in place
    registry.refresh()
    assert registry.binaries[0].provides == EXTENSION_K6_IMPORTS
    shutil.copyfile("/bin/echo", path)
    with pytest.raises(K6StartError, match=r"'x'.*does not answer.*changed since start-up"):
        registry.refresh()


# --- the choice ---


def test_choosing_the_binary(faker_k6: Path) -> None:
    registry = K6Registry([probe("default", find_k6_binary()), probe("faker", str(faker_k6))])
    assert registry.choose(frozenset()).name == "default"
    assert registry.choose(frozenset({"k6/x/faker"})).name == "faker"
    assert registry.choose(frozenset(), "faker").name == "faker"
    with pytest.raises(NoSuitableK6) as none:
        registry.choose(frozenset({"k6/x/sql", "k6/x/faker"}))
    message = str(none.value)
    assert "no configured k6 provides k6/x/sql;" in message
    assert f"default ({find_k6_binary()}, k6 {STOCK_VERSION}): no extensions" in message
    assert "k6/x/faker, k6/x/milvus, k6/x/parquet" in message
    assert "xk6 build --with" in message and "K6_BINARIES" in message
    with pytest.raises(NoSuitableK6, match="k6 'default' lacks k6/x/faker"):
        registry.choose(frozenset({"k6/x/faker"}), "default")
    with pytest.raises(NoSuitableK6, match=r"asks for k6 'sql', which is not configured"):
        registry.choose(frozenset(), "sql")
    # With automatic resolution k6 is started anyway and fetches a matching build itself.
    auto = registry.choose(frozenset({"k6/x/sql"}), auto_extension_resolution=True)
    assert auto.name == "default"


def test_a_workload_can_name_a_binary_but_never_give_a_path() -> None:
    item = '{"workloads": [{"teststrategy": "t", "script": "k6/a.js", "k6": %s}]}'
    assert parse_workloads(item % '"faker"', "k6.conf.yaml")[0].k6 == "faker"
    for bad in ('"/usr/bin/k6"', '"../k6"', '"bin/k6"', "3"):
        with pytest.raises(WorkloadError, match=r"'k6' must be the name of a binary.*not allowed"):
            parse_workloads(item % bad, "k6.conf.yaml")


# --- automatic extension resolution ---


def test_k6_is_told_whether_to_resolve_extensions_itself(tmp_path: Path) -> None:
    invocation = K6Invocation(options=("run",), script="a.js", env={})
    off = process_env(invocation, home=tmp_path)
    on = process_env(invocation, home=tmp_path, auto_extension_resolution=True)
    assert (off["K6_AUTO_EXTENSION_RESOLUTION"], on["K6_AUTO_EXTENSION_RESOLUTION"]) == (
        "false",
        "true",
    )


@pytest.mark.parametrize("which", ["stock", "faker"])
def test_the_switch_is_the_one_real_k6_reads(which: str, tmp_path: Path, faker_k6: Path) -> None:
    """k6 1.7 gives up at once without trying to download; k6 1.1 does not mind the variable."""
    binary = str(faker_k6) if which == "faker" else find_k6_binary()
    script = tmp_path / "sql.js"
    script.write_text('import sql from "k6/x/sql";\nexport default function () {}\n')
    env = {"HOME": str(tmp_path), "K6_AUTO_EXTENSION_RESOLUTION": "false"}
    done = subprocess.run(
        [binary, "run", "--no-usage-report", "--iterations", "1", str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "k6/x/sql" in output
    assert "provision" not in output.lower() and "build service" not in output.lower()
    plain = tmp_path / "plain.js"
    plain.write_text("export default function () {}\n")
    ok = subprocess.run(
        [binary, "run", "--no-usage-report", "--iterations", "1", str(plain)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_probe_runs_without_a_shell() -> None:
    # A path with shell metacharacters is a file name, not a command line.
    with pytest.raises(K6BinaryError, match="cannot be run"):
        probe("odd", f"{sys.executable}; echo hi")


async def test_k6_deps_adds_what_only_k6_knows_where_a_binary_has_it(
    tmp_path: Path, faker_k6: Path
) -> None:
    script = tmp_path / "main.js"
    script.write_text(
        '"use k6 with k6/x/faker > 0.4";\nimport "./lib.js";\nexport default function () {}\n'
    )
    (tmp_path / "lib.js").write_text('const sql = require("k6/x/sql");\n')
    with_deps = await needed_extensions(
        script, tmp_path, deps_binary=probe("faker", str(faker_k6)), home=tmp_path
    )
    assert with_deps == {"k6/x/faker", "k6/x/sql"}
    read_only = await needed_extensions(script, tmp_path, deps_binary=None, home=tmp_path)
    assert read_only == {"k6/x/sql"}


async def test_the_backend_asks_a_changed_binary_again_before_starting_it(
    tmp_path: Path, faker_k6: Path
) -> None:
    path = tmp_path / "bin" / "k6-faker"
    path.parent.mkdir()
    shutil.copyfile(faker_k6, path)
    path.chmod(0o755)
    backend = LocalK6Backend(binaries=K6Registry([probe("faker", str(path))]), work_dir=tmp_path)
    plan = RunPlan(
        tags=RunTags("p", "s", "v", "c"),
        script=StagedScript("a.js", {"a.js": b'import f from "k6/x/faker";\n'}),
        remote_write=RemoteWriteTarget("http://127.0.0.1:9/api/v1/write"),
        iterations=1,
    )
    shutil.copyfile(find_k6_binary(), path)  # replaced in place by a build without faker
    with pytest.raises(NoSuitableK6, match=r"k6/x/faker.*faker \(.*k6 v1\.1\.0\): no extensions"):
        await backend.execute(plan)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]  # its directory is gone


def test_without_any_stock_k6_the_configured_builds_are_enough(
    tmp_path: Path, faker_k6: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    registry = load_k6_registry(Settings(k6_binaries={"faker": str(faker_k6)}))
    assert [b.name for b in registry.binaries] == ["faker"]
    assert registry.choose(frozenset()).name == "faker"
    with pytest.raises(ConfigError, match="k6 binary not found"):
        load_k6_registry(Settings())
