"""One live driver per sweep folder: a second process (or a second driver here) is refused, naming the first."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tuning_service.core.driverlock import LOCK_FILE, DriverLock
from tuning_service.core.errors import InputError

HOLD = """\
import sys, time
from pathlib import Path
from tuning_service.core.driverlock import DriverLock
lock = DriverLock.acquire(Path(sys.argv[1]), "s1")
print("held", flush=True)
time.sleep(600)
"""


@pytest.fixture
def holder(tmp_path):
    """Another process holding the folder's lock, as a live driver does."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert proc.stdout.readline().strip() == "held"
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_a_second_process_is_refused_with_the_live_drivers_pid_host_and_start(holder, tmp_path):
    with pytest.raises(InputError) as refused:
        DriverLock.acquire(tmp_path, "s1")
    message = str(refused.value)
    assert message.startswith(
        f"sweep s1 is still being driven by pid {holder.pid} on {socket.gethostname()} since "
    )
    assert str(tmp_path / LOCK_FILE) in message and "\n" not in message
    # The refused process wrote nothing: the holder's own record is intact.
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == holder.pid


def test_the_lock_is_free_once_its_driver_is_killed(holder, tmp_path):
    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait(10)
    deadline = time.monotonic() + 10
    while True:  # the kernel drops the lock with the process, at once
        try:
            lock = DriverLock.acquire(tmp_path, "s1")
            break
        except InputError:
            assert time.monotonic() < deadline, "the killed driver's lock was never released"
            time.sleep(0.05)
    with lock:
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_a_second_driver_in_the_same_process_is_refused_too(tmp_path):
    with DriverLock.acquire(tmp_path, "s1"):
        with pytest.raises(InputError, match=f"is still being driven by pid {os.getpid()} "):
            DriverLock.acquire(tmp_path, "s1")
    DriverLock.acquire(tmp_path, "s1").release()  # released on leaving the block


def test_a_folder_the_lock_cannot_be_made_in_is_one_line(tmp_path):
    (tmp_path / "sweep").write_text("a file where the sweep's folder should be")
    with pytest.raises(
        InputError, match=r"^sweep s1: cannot open its driver lock .*driver.lock \(Not a directory\)"
    ):
        DriverLock.acquire(tmp_path / "sweep", "s1")
