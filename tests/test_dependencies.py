"""Every third-party module the package imports is declared in pyproject.toml, so that an
install never works only because another dependency happened to bring it along."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_top_level_modules(package: Path) -> dict[str, str]:
    """Top-level module -> the first file importing it, absolute imports only (lazy ones too)."""
    found: dict[str, str] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.partition(".")[0], str(path.relative_to(ROOT)))
    return found


def declared_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    match = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
    names = set()
    for requirement in project["dependencies"]:
        found = match.match(requirement)
        assert found is not None, requirement
        names.add(_normalized(found.group()))
    return names


def test_every_third_party_import_of_the_package_is_a_declared_dependency() -> None:
    declared = declared_requirements()
    providers = packages_distributions()
    undeclared = []
    for module, where in imported_top_level_modules(ROOT / "sli_provider").items():
        if module in sys.stdlib_module_names or module == "sli_provider":
            continue
        distributions = {_normalized(d) for d in providers.get(module, [])}
        assert distributions, f"{module} (imported in {where}) is not installed at all"
        if not distributions & declared:
            undeclared.append(f"{module} (imported in {where}; from {sorted(distributions)})")
    assert undeclared == [], "declare these in pyproject.toml [project] dependencies"


def test_the_scan_sees_the_imports_it_must() -> None:
    """The check above is only as good as the scan: it finds the modules that only came along
    with another dependency (yarl with aiohttp, httpx2 with lightkube)."""
    modules = imported_top_level_modules(ROOT / "sli_provider")
    assert {"aiohttp", "yarl", "httpx2", "nats", "yaml"} <= set(modules)
