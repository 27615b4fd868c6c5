"""Independent CPU-bound pieces of work done by this process and forked copies of it at once.

Why: drawing a report's figures is pure Python (Matplotlib), so threads would only take turns
holding the GIL. A forked copy of the process already holds the loaded data and every import, so
it starts in milliseconds, where a new interpreter would import Matplotlib again (about a
second). Fork is safe only in a process with one thread (a lock another thread holds when it
forks stays held in the copy forever), so the work runs in a plain loop here whenever another
thread runs, off Linux, in a daemonic multiprocessing worker, or with one CPU. Any piece a copy
could not hand back is done again here, so its error, if it has one, is raised here as in the
plain loop.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


def processes_available() -> int:
    """How many processes `map_forked` may use here: 1 unless forking is safe and CPUs are free
    (and this is no daemonic multiprocessing worker: those may not start processes)."""
    if sys.platform != "linux" or threading.active_count() > 1 or multiprocessing.current_process().daemon:
        return 1
    return len(os.sched_getaffinity(0))


def map_forked(func: Callable[[T], R], items: Sequence[T], processes: int | None = None) -> list[R]:
    """``[func(item) for item in items]``, shared among this process and forked copies of it.

    Each process takes the next item not yet taken, so give the costliest items first; the
    first item is always done here, so what it imports stays imported for the next call (a
    copy's imports end with it). A copy sends its results back through a pipe, so they must
    pickle. ``processes``: at most this many (default: `processes_available`)."""
    available = processes_available()
    count = min(len(items), available if processes is None else min(processes, available))
    log.debug("%d items in %d process(es)", len(items), max(count, 1))
    if count <= 1:
        return [func(item) for item in items]
    context = multiprocessing.get_context("fork")
    taken = context.Value("i", 1)  # the index of the next item to take, shared by every process

    def take() -> int | None:
        with taken.get_lock():
            index: int = taken.value
            if index >= len(items):
                return None
            taken.value = index + 1
            return index

    def work(conn: Connection) -> None:
        done: dict[int, Any] = {}
        try:
            while (index := take()) is not None:
                done[index] = func(items[index])
        except BaseException:  # what this copy did not finish, the caller does again
            pass
        try:
            conn.send(done)
        except Exception:  # a result that does not pickle: the caller does this copy's items again
            conn.send({})
        conn.close()

    copies: list[tuple[Any, Connection]] = []
    results: dict[int, Any] = {}
    try:
        for _ in range(count - 1):
            receive, send = context.Pipe(duplex=False)
            process = context.Process(target=work, args=(send,))
            process.start()
            send.close()
            copies.append((process, receive))
        results[0] = func(items[0])
        while (index := take()) is not None:
            results[index] = func(items[index])
        for process, receive in copies:
            try:
                results.update(receive.recv())
            except EOFError:  # the copy died before it could send (killed, out of memory)
                log.debug("a forked worker (pid %s) sent nothing back", process.pid)
    except BaseException:  # an error here: what the copies do is not wanted any more
        for process, _ in copies:
            process.kill()
        raise
    finally:
        for process, receive in copies:
            process.join()
            receive.close()
    return [results[i] if i in results else func(items[i]) for i in range(len(items))]
