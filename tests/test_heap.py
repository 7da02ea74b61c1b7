"""The start-up heap is frozen (sli_provider/service/heap.py)."""

from __future__ import annotations

import gc

from sli_provider.service.heap import freeze_startup_heap


def test_the_startup_heap_is_left_out_of_later_collections() -> None:
    assert gc.get_freeze_count() == 0
    try:
        frozen = freeze_startup_heap()
        assert frozen == gc.get_freeze_count() > 1000
        # A full collection now walks only what was made after the freeze.
        assert len(gc.get_objects(generation=2)) < frozen
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0
