"""The API server settles its start-up heap out of the cyclic collector's way."""

from __future__ import annotations

import gc

from app.api.app import settle_heap


def test_settle_heap_freezes_what_is_loaded() -> None:
    loaded = [[object()] for _ in range(1000)]  # stands in for a model's objects
    try:
        settle_heap()
        assert gc.get_freeze_count() >= len(loaded)
    finally:
        gc.unfreeze()  # the rest of the test run collects as usual
    assert gc.get_freeze_count() == 0
