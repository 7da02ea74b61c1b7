"""The built-in k6 SLI templates shipped in ``sli-templates/``."""

from __future__ import annotations

from pathlib import Path

from sli_provider.sli.config import IndicatorSpec, SLIConfigError, parse_sli_yaml

BUILTIN_ORIGIN = "built-in template"
_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def default_templates_dir() -> Path:
    """Inside an installed wheel the templates sit in the package; in a checkout, at the top."""
    packaged = _PACKAGE_DIR / "_builtin_templates"
    if packaged.is_dir():
        return packaged
    return _PACKAGE_DIR.parent / "sli-templates"


def load_builtin_templates(directory: Path | None = None) -> dict[str, IndicatorSpec]:
    """name → template, from every ``*.yaml`` in the directory (sorted, later files win)."""
    root = directory or default_templates_dir()
    files = sorted(root.glob("*.yaml"))
    if not files:
        raise SLIConfigError(f"no built-in SLI templates found in {root}")
    templates: dict[str, IndicatorSpec] = {}
    for path in files:
        templates.update(parse_sli_yaml(path.read_bytes(), str(path)).indicators)
    return templates
