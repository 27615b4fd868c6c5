"""What a process made before a long run, kept out of the garbage collector's passes during it.

Python's full collection walks every object the process holds, and stops the thread that
triggered it. A sweep's driver holds Ray, Tune, their libraries and the job's data before its
first trial, and none of it becomes garbage while the sweep runs; yet each full collection
during the sweep walked it again, with the workers waiting on the driver's step
(`python -m benchmarks.overhead` reports the driver's collections). The workers do the same
after their imports (`raytune/trainable.py`).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def frozen_heap() -> Iterator[None]:
    """While open, the objects alive when it opened are left out of every collection; after,
    they are collected as before (as one of the oldest generation's)."""
    already = gc.get_freeze_count()
    gc.freeze()
    try:
        yield
    finally:
        if already == 0:  # a caller that froze its own heap first keeps it frozen
            gc.unfreeze()
