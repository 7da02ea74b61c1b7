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
    r"(?P<after>\s*(?:\|\||&&|\?|!==?|===?)?)"
)
# A read that is a condition: ``if (__ENV.X)``, ``!__ENV.X``, ``a && __ENV.X``.
_TESTED = re.compile(r"(?:\b(?:if|while)\s*\(\s*|!\s*|&&\s*)$")


def unset_env_reads(script: str, env: Mapping[str, str]) -> list[str]:
    """Names the script reads from ``__ENV`` that ``env`` leaves unset or empty, in order.

    A read followed by a fallback (``||``, ``??``, ``?.``) or a test (``===``, ``? :``,
    ``&&``), or read as a condition (``if (__ENV.X)``, ``!__ENV.X``), is the script's own
    handling of a missing value: that name is left alone wherever it is read.
    """
    text = _LINE_COMMENT.sub("", _BLOCK_COMMENT.sub("", script))
    read: dict[str, None] = {}
    handled: set[str] = set()
    for match in _READ.finditer(text):
        name = match.group("dotted") or match.group("quoted")
        read[name] = None
        if _TESTED.search(text, 0, match.start()) or match.group("after").strip():
            handled.add(name)
    return [name for name in read if name not in handled and not env.get(name)]
