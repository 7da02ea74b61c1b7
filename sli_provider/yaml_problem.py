"""A YAML parse error in one line, where and what: PyYAML's own text spans several lines and
starts with the context ("while parsing a flow sequence"), not with what is wrong."""

from __future__ import annotations

import yaml


def yaml_problem(exc: yaml.YAMLError) -> str:
    """``line 3: expected ',' or ']', but got '<stream end>'``."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        return where + exc.problem
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
