"""What a process made before a long run, kept out of the garbage collector's passes during it,
and out of its last passes as the process exits.

Python's full collection walks every object the process holds, and stops the thread that
triggered it. A sweep's driver holds Ray, Tune, their libraries and the job's data before its
first trial, and none of it becomes garbage while the sweep runs; yet each full collection
during the sweep walked it again, with the workers waiting on the driver's step
(`python -m benchmarks.overhead` reports the driver's collections). The workers do the same
after their imports (`raytune/trainable.py`).

As the interpreter exits it tears its modules down and collects garbage as it goes, walking
every object left: a third of a second of the command's end after a sweep
(`frozen_at_exit`).
"""

from __future__ import annotations

import atexit
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


_exit_frozen = False


def frozen_at_exit() -> None:
    """As this process exits (after the exit handlers registered before this call), leave what
    it holds out of the collector's last passes. Objects freed by their last reference going
    (a file, a connection) are still finalised as Python tears its modules down; a cycle of
    garbage left at exit keeps its finalisers unrun, which Python never promised to run."""
    global _exit_frozen
    if not _exit_frozen:
        atexit.register(gc.freeze)
        _exit_frozen = True
