"""What a sweep's driver held before the sweep is left out of the collector's passes during it
(`core/heapfreeze.py`), and collected as usual after; and what a command holds, out of the
collector's last passes as its process exits."""

from __future__ import annotations

import gc
import subprocess
import sys
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
    # No automatic pass between making the garbage and freezing it: one could free it first
    # (as when earlier tests in the process had left the youngest generation nearly full).
    gc.disable()
    try:
        before = _cycle()  # garbage already, not yet collected
        with frozen_heap():
            gc.enable()
            assert gc.get_freeze_count() > 0
            during = _cycle()
            gc.collect()
            assert before() is not None  # frozen: no pass walks it
            assert during() is None  # what the run makes is collected as usual
    finally:
        gc.enable()
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


# In a new process: an exit handler registered first runs last, after the command's own.
AT_EXIT = """
import atexit, gc, sys
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0, flush=True))
from tuning_service.cli import main
if sys.argv[1] == "command":
    main(["--help"])
"""


def test_a_command_leaves_what_it_holds_out_of_the_collectors_last_passes():
    def run(how: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", AT_EXIT, how], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    assert run("command") == "frozen at exit: True"
    assert run("import") == "frozen at exit: False"  # no command ran: Python's own exit
