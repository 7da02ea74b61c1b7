"""Which ``k6/x/...`` extension imports a script needs, read from its source (a pure function).

Used when no configured k6 has ``k6 deps`` (k6 1.1): ES module imports and ``require`` calls are
read from the script and followed through its local modules (relative specifiers), as far as
``read`` can find them. Comments are not stripped: a commented-out import still counts, which can
only make the choice of binary stricter, never start a k6 that lacks an extension.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable

EXTENSION_PREFIX = "k6/x/"

_SPECIFIER = r"""(['"])([^'"\n]+)\1"""
_IMPORT_PATTERNS = (
    re.compile(r"\bimport\s+(?:[\w*${}\s,]+?\s+from\s+)?" + _SPECIFIER),  # import x from "m"
    re.compile(r"\bexport\s+[\w*${}\s,]+?\s+from\s+" + _SPECIFIER),  # export { x } from "m"
    re.compile(r"\b(?:require|import)\s*\(\s*" + _SPECIFIER + r"\s*\)"),  # require("m")
)


def module_specifiers(source: str) -> list[str]:
    """Every module a JavaScript source imports or requires, in order of appearance."""
    found: list[tuple[int, str]] = []
    for pattern in _IMPORT_PATTERNS:
        found += [(m.start(), m.group(2)) for m in pattern.finditer(source)]
    return [specifier for _, specifier in sorted(found)]


def extension_imports(entry: str, read: Callable[[str], str | None]) -> frozenset[str]:
    """The ``k6/x/...`` imports of ``entry`` and of every local module it reaches.

    ``read`` maps a normalised POSIX path (relative to the same root as ``entry``) to the
    module's text, or None when the module is not available (it is then not followed).
    """
    needed: set[str] = set()
    seen: set[str] = set()
    pending = [posixpath.normpath(entry)]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        source = read(path)
        if source is None:
            continue
        for specifier in module_specifiers(source):
            if specifier.startswith(EXTENSION_PREFIX):
                needed.add(specifier)
            elif specifier.startswith(("./", "../")):
                pending.append(
                    posixpath.normpath(posixpath.join(posixpath.dirname(path), specifier))
                )
    return frozenset(needed)
