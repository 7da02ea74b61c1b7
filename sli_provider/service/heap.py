"""The process's start-up heap, set aside from the garbage collector's full passes.

What start-up made (modules, the app, its clients) lives as long as the process, yet each of
CPython's oldest-generation collections walk all of it (tens of thousands of objects), a pause
that lands on whatever request is in flight (bench/README.md). Frozen, they are left out of every collection. Only ``serve`` does this: a
process that embeds the app (the tests) keeps its heap as it is.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect start-up's own garbage, so none of it is kept for good, then freeze what is
    left; how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
