"""Work shared by a process and forked copies of it: the plain loop's results and errors, and
the plain loop itself wherever forking is not safe.

The sharing is checked in a new Python process: a test session may hold threads of its own
(a served dashboard, Ray), and with another thread running nothing is forked, by design."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from typing import Any

import pytest

from tuning_service.core.forked import map_forked, processes_available

SCRIPT = """
import json, multiprocessing, os, sys, time
from tuning_service.core.forked import map_forked

HERE = os.getpid()
mode = sys.argv[1]

def square(i):
    time.sleep(0.05)  # long enough that every process takes some
    return i * i, os.getpid()

def fails_at_five(i):
    if i == 5:
        raise ValueError(f"item {i} is bad")
    return square(i)

def copies_die(i):
    if os.getpid() != HERE:
        os._exit(3)
    return square(i)

def large(i):
    time.sleep(0.05)
    return "x" * 300_000 + str(i), os.getpid()  # far more than a pipe's buffer holds

def unpicklable_in_copies(i):
    time.sleep(0.05)
    return (lambda: None) if os.getpid() != HERE else i * i, os.getpid()

func = {"share": square, "error": fails_at_five, "die": copies_die, "large": large, "unpicklable": unpicklable_in_copies}[mode]
try:
    out = {"results": map_forked(func, list(range(8)), processes=2)}
except ValueError as exc:
    out = {"error": str(exc)}
out.update(here=HERE, left=len(multiprocessing.active_children()))
print(json.dumps(out))
"""

needs_two = pytest.mark.skipif(
    sys.platform != "linux" or len(os.sched_getaffinity(0)) < 2, reason="forks only on Linux with 2+ CPUs"
)


def _run(mode: str, *, stderr: bool = False) -> Any:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    return (out, done.stderr) if stderr else out


@needs_two
def test_items_are_shared_with_a_copy_and_come_back_in_order():
    out = _run("share")
    assert [value for value, _ in out["results"]] == [i * i for i in range(8)]
    pids = [pid for _, pid in out["results"]]
    assert pids[0] == out["here"]  # the first item is always done here (its imports stay here)
    assert len(set(pids)) == 2 and out["left"] == 0


@needs_two
def test_results_larger_than_a_pipe_buffer_come_back_whole():
    out = _run("large")
    assert [value for value, _ in out["results"]] == ["x" * 300_000 + str(i) for i in range(8)]
    assert len({pid for _, pid in out["results"]}) == 2


@needs_two
def test_what_a_copy_cannot_send_back_is_done_here_without_a_traceback():
    out, err = _run("unpicklable", stderr=True)
    assert [value for value, _ in out["results"]] == [i * i for i in range(8)]
    assert {pid for _, pid in out["results"]} == {out["here"]} and out["left"] == 0
    assert "Traceback" not in err


@needs_two
def test_an_error_is_raised_here_as_the_plain_loop_raises_it():
    out = _run("error")
    assert out["error"] == "item 5 is bad" and out["left"] == 0


@needs_two
def test_what_a_copy_that_died_had_taken_is_done_here():
    out = _run("die")
    assert [value for value, _ in out["results"]] == [i * i for i in range(8)]
    assert {pid for _, pid in out["results"]} == {out["here"]} and out["left"] == 0


def test_with_another_thread_running_nothing_is_forked():
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        assert processes_available() == 1
        assert map_forked(lambda i: (i, os.getpid()), range(4), processes=2) == [
            (i, os.getpid()) for i in range(4)
        ]
    finally:
        stop.set()
        other.join()


def test_a_daemonic_worker_does_its_items_itself(monkeypatch):
    import multiprocessing

    monkeypatch.setattr(multiprocessing.current_process(), "daemon", True)
    assert processes_available() == 1
    assert map_forked(lambda i: os.getpid(), range(3), processes=2) == [os.getpid()] * 3


def test_no_items_and_one_item_need_no_copy():
    assert map_forked(lambda i: i, [], processes=2) == []
    assert map_forked(lambda i: (i, os.getpid()), ["only"], processes=2) == [("only", os.getpid())]
