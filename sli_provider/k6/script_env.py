"""Which ``__ENV`` variables a k6 script reads without a fallback (pure).

k6 runs here with ``--include-system-env-vars=false``, so ``__ENV`` holds only what the run
passes; a script that reads ``__ENV.TARGET_URL`` without one would send every request to
``undefined/...`` and print an error per request. Reading the script first turns that into
one sentence before k6 starts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_LINE_COMMENT = re.compile(r"^\s*//.*$", re.MULTILINE)
_READ = re.compile(
    r"__ENV\s*(?:\.\s*(?P<dotted>[A-Za-z_$][\w$]*)|\[\s*(?P<q>['\"])(?P<quoted>[^'\"]+)(?P=q)\s*\])"
    r"(?P<after>\s*(?:\|\||\?|!==?|===?)?)"
)


def unset_env_reads(script: str, env: Mapping[str, str]) -> list[str]:
    """Names the script reads from ``__ENV`` that ``env`` leaves unset or empty, in order.

    A read followed by a fallback (``||``, ``??``, ``?.``) or a test (``===``, ``? :``) is
    the script's own handling of a missing value and is left alone.
    """
    text = _LINE_COMMENT.sub("", _BLOCK_COMMENT.sub("", script))
    names: dict[str, None] = {}
    for match in _READ.finditer(text):
        name = match.group("dotted") or match.group("quoted")
        if match.group("after").strip() or env.get(name):
            continue
        names[name] = None
    return list(names)
