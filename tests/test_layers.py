"""The package's layers, checked from its imports.

Lowest first; a module imports only from its own package and from layers below it, so no two
packages import each other::

    errors, yaml_problem   shared error base and YAML problem reporting
    ports                  what the pure core needs from outside: Protocols and their errors
    k6                     how k6 is started so its metrics can be found (pure)
    sli                    the SLI logic: templates, plans, queries, freshness (pure)
    keptn                  Keptn's events and tasks (pure)
    gate                   the gate's scoring, SLO files and reports (pure)
    config                 the one Settings object, from the environment and the CLI's flags
    logs, metrics          logging set-up, the service's Prometheus metrics
    adapters               the outside world: Prometheus, Keptn's API, NATS, journals, history
    runner                 running k6 (locally, on k6-operator) for test events
    pipeline               the SLI pipeline: window in, indicator values out
    wiring                 the one place the parts are chosen and put together
    service                the web service: ingress, dispatch, replies
    commands, cli          the command line (and `python -m sli_provider` above it)
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import sli_provider

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "yaml_problem", "__init__"),
    ("ports",),
    ("k6",),
    ("sli",),
    ("keptn",),
    ("gate",),
    ("config",),
    ("logs", "metrics"),
    ("adapters",),
    ("runner",),
    ("pipeline",),
    ("wiring",),
    ("service",),
    ("commands",),
    ("cli",),
    ("__main__",),
)
RANK = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}
ROOT = Path(sli_provider.__file__).parent


def _package(module: str) -> str:
    """``sli_provider.sli.plan`` -> ``sli``; ``sli_provider`` itself -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> Iterator[str]:
    """Every sli_provider module ``path`` imports, resolved (relative imports, and
    ``from sli_provider import logs`` naming a module)."""
    module = _module_name(path)
    here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here[: len(here) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield submodule if _exists(submodule) else base


def _exists(module: str) -> bool:
    path = ROOT.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _edges() -> list[tuple[str, str]]:
    """(importing module, imported module) for every import between two packages."""
    edges = []
    for path in sorted(ROOT.rglob("*.py")):
        module = _module_name(path)
        for imported in _imports(path):
            if imported.split(".")[0] != "sli_provider":
                continue
            if _package(imported) != _package(module):
                edges.append((module, imported))
    return edges


def test_every_package_has_a_layer() -> None:
    packages = {_package(_module_name(path)) for path in ROOT.rglob("*.py")}
    assert packages - RANK.keys() == set(), "add the new package to LAYERS"


def test_no_import_runs_from_a_lower_layer_to_a_higher_one() -> None:
    upward = [
        f"{module} imports {imported}"
        for module, imported in _edges()
        if RANK[_package(imported)] >= RANK[_package(module)]
    ]
    assert upward == []


def test_no_two_packages_import_each_other() -> None:
    pairs = {(_package(module), _package(imported)) for module, imported in _edges()}
    assert sorted((a, b) for a, b in pairs if (b, a) in pairs) == []


def test_the_pure_core_imports_no_edge() -> None:
    pure = {"ports", "k6", "sli", "keptn", "gate"}
    edges = {"adapters", "runner", "pipeline", "wiring", "service", "commands", "cli"}
    crossing = [
        f"{module} imports {imported}"
        for module, imported in _edges()
        if _package(module) in pure and _package(imported) in edges
    ]
    assert crossing == []
