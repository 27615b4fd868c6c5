"""What a sweep's driver held before the sweep is left out of the collector's passes during it
(`core/heapfreeze.py`), and collected as usual after."""

from __future__ import annotations

import gc
import weakref

from tuning_service.core.heapfreeze import frozen_heap


class _Node:
    pass


def _cycle() -> weakref.ref[_Node]:
    """A reference cycle only the collector can free, and a way to see whether it has."""
    node = _Node()
    node.self = node  # type: ignore[attr-defined]
    return weakref.ref(node)


def test_garbage_made_before_is_left_alone_until_the_context_ends():
    before = _cycle()  # garbage already, not yet collected
    with frozen_heap():
        assert gc.get_freeze_count() > 0
        during = _cycle()
        gc.collect()
        assert before() is not None  # frozen: no pass walks it
        assert during() is None  # what the run makes is collected as usual
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert before() is None


def test_a_heap_frozen_by_the_caller_stays_frozen():
    gc.freeze()
    try:
        with frozen_heap():
            pass
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
