"""Names from events that become part of a path (a resource's directory or URL, a script's file
name): only plain names, so that no value from an event changes where anything is read."""

from __future__ import annotations

import re

# What Keptn's own names (projects, stages, services, test strategies) look like, and a bit more.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,252}")
_SHOWN = 80  # characters of a refused value repeated in the message


PLAIN_NAME_RULE = (
    "letters, digits, '-', '_' and '.', starting with a letter or digit, at most 253 characters"
)


def is_plain_name(value: str) -> bool:
    return _PLAIN_NAME.fullmatch(value) is not None


def shown(value: str) -> str:
    """A refused value as a message repeats it: quoted, and cut when long."""
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "...")


def name_problem(field: str, value: str) -> str | None:
    """Why ``value`` (of ``field``, e.g. ``data.test.teststrategy``) cannot be used as a name,
    or None when it can."""
    if is_plain_name(value):
        return None
    return f"{field} {shown(value)} is not a plain name ({PLAIN_NAME_RULE})"
