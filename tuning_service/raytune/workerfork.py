"""The embedded Ray's Python workers as forks of one process that has already done their imports.

Every Ray worker is a new Python process that imports Ray and then, for a Keras trial,
TensorFlow, Ray Tune and the training code: 3-5 s of one core each, before its first epoch,
and the same pages read and built again in every worker. On 2 cores the sweep's two workers
did this at once, after Ray's node had started them (`python -m benchmarks.startup`).

Here one process, the fork server, starts with the sweep (before Ray's node) and does those
imports once, while Ray starts. The raylet starts each worker with `workershim` in place of
Ray's own worker script; the shim hands its arguments, environment, working directory and
standard streams to the fork server over a Unix socket in a private folder, and the server
forks a copy of itself that runs Ray's worker script with them. A worker so starts in
milliseconds, shares the imported code's memory with the others, and a replaced worker is
as warm as the first.

The fork server only imports: TensorFlow's runtime (thread pools, devices, a GPU's context)
starts in each worker, after the fork, as before, and the server refuses to fork once it has
started (or once Ray is loaded). It starts no thread of its own (a fork copies a lock another
thread holds, held forever); the only threads its libraries start, OpenBLAS's pool and
jemalloc's, prepare for a fork themselves. It stops when the sweep's driver ends, or, kept
between sweeps (`workerkeep`), once no sweep has held it for its keep time; its workers end
with the raylet as any Ray worker does. It serves only its own user (the socket's folder is
private, and each connection's user is checked). Where it cannot start or fork, each shim
starts Ray's own worker script instead.

Kept between sweeps, the server also forks a Ray stage for each sweep whose driver tells it
its raylet: a fork that imports Ray and Ray Tune for that sweep's workers and forks them
(`workerstage`). How a worker is forked and its shim answered is `forkworker`'s.
"""

from __future__ import annotations

import fcntl
import gc
import json
import logging
import os
import select
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuning_service.core.errors import InputError
from tuning_service.raytune.forkworker import (
    CHECK_S,
    MAX_REQUEST,
    Workers,
    changed,
    module_stamps,
    receive,
    tensorflow_runtime_started,
)
from tuning_service.raytune.workerimports import import_all_but_ray
from tuning_service.raytune.workershim import RAY_WORKER_ENV, SOCKET_ENV
from tuning_service.raytune.workerstage import STAGE, RayStages

log = logging.getLogger(__name__)

SHIM = str(Path(__file__).with_name("workershim.py"))
# 0: the raylet starts each worker as a new process, as Ray does (an escape hatch).
SWITCH_ENV = "TUNING_SERVICE_WORKER_FORK"
FOLDER_PREFIX = "tuning-service-workers-"
OWNER = "driver.pid"  # in each server's folder: the process that started it
SOCKET = "socket"  # in each server's folder: where it listens
SERVER_PID = "server.pid"  # in a kept server's folder (`workerkeep`): the server's own
SERVER_LOG = "server.log"  # in a kept server's folder: its output
LOCK = "lock"  # in a kept server's folder: held while a driver connects or the server leaves
HOLD = "hold"  # the selector's mark for a driver's hold on a kept server
STOP_WAIT_S = 5.0


def forking_chosen() -> bool:
    """Whether the embedded Ray's workers are forked: ``TUNING_SERVICE_WORKER_FORK`` is 1 or 0,
    checked; unset, on Linux only. macOS' system libraries are not safe to use in a fork of a
    process that loaded them (Python's multiprocessing spawns there for that), and this is
    untested there; 1 turns it on wherever the platform can fork and pass open files."""
    value = os.environ.get(SWITCH_ENV, "").strip()
    if value not in ("", "0", "1"):
        raise InputError(
            f"{SWITCH_ENV} must be 1 (the embedded Ray's workers are forked from a process that has "
            f"imported TensorFlow; the default on Linux) or 0 (each starts as a new process), not {value!r}"
        )
    wanted = value == "1" or (value == "" and sys.platform.startswith("linux"))
    return wanted and hasattr(os, "fork") and hasattr(socket, "send_fds")


def ray_worker_script() -> str:
    """Ray's own Python worker script, which each forked worker runs."""
    import ray._private.node

    return str(Path(ray._private.node.__file__).parent / "workers" / "default_worker.py")


@dataclass(frozen=True)
class ForkServer:
    pid: int
    env: dict[str, str]  # what the raylet's environment needs for its workers to be forked
    log: Path  # the server's own output (TensorFlow's import messages, a failure)
    log_from: int = 0  # where this sweep's part of it starts (a kept server's serves several)
    hold: socket.socket | None = None  # a kept server's: the sweep's hold on it (`workerkeep`)

    def raylet_started(self, pid: int) -> None:
        """Tell a kept server the sweep's raylet: it starts importing Ray for its workers
        (`workerstage`)."""
        if self.hold is not None:
            try:
                self.hold.sendall(json.dumps({"raylet": pid}).encode() + b"\n")
            except OSError:  # the server is gone: the shims start Ray's own workers
                pass


@contextmanager
def fork_server(log_file: Path | None = None) -> Iterator[ForkServer]:
    """Run a fork server while this context is open, its output in ``log_file`` (None: a file
    in its private folder, for a server started before the sweep has a folder)."""
    _remove_abandoned()
    folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))  # mode 0700: this user's only
    (folder / OWNER).write_text(str(os.getpid()))
    path = folder / SOCKET
    log_file = log_file or folder / "server.log"
    with open(log_file, "ab") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", __name__, str(path), str(os.getpid())],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            process_group=0,  # out of the terminal's Ctrl-C: the driver stops it
        )
    log.info(
        "the embedded Ray's workers will be forked from process %d, which imports TensorFlow now; its output: %s",
        server.pid,
        log_file,
    )
    try:
        yield ForkServer(server.pid, {SOCKET_ENV: str(path), RAY_WORKER_ENV: ray_worker_script()}, log_file)
    finally:
        server.terminate()
        try:
            server.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _remove_abandoned() -> None:
    """Remove the folders of fork servers whose driver is gone: both remove theirs as they end,
    but a session killed outright (the machine's memory killer, a kill of every process) cannot."""
    for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*"):
        try:
            if folder.stat().st_uid != os.getuid():
                continue
            os.kill(int((folder / OWNER).read_text()), 0)
        except ProcessLookupError:  # its driver has ended
            shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError):  # being made (no owner yet), or its driver runs
            continue


def _same_user(conn: socket.socket) -> bool:
    """Whether the process on the other end runs as this one's user (the folder's mode already
    keeps others out; this holds where a folder's mode was loosened)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid) == os.getuid()


def serve(path: str, parent: int, keep_s: float = 0.0) -> None:
    """Accept shims on ``path`` and fork a worker for each, until ``parent`` (the driver) ends;
    with ``parent`` 0, a kept server (`workerkeep`): until no driver has held it for ``keep_s``."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    folder = Path(path).parent
    kept = parent == 0
    listener.bind(path)  # before the imports: a shim that connects meanwhile waits in the backlog
    if kept:  # before anyone can connect
        (folder / SERVER_PID).write_text(str(os.getpid()))
    listener.listen(64)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver's Ctrl-C is the driver's to handle
    try:
        _serve(listener, _Lifetime(parent, keep_s, folder / LOCK) if kept else _Lifetime(parent))
    except SystemExit:  # SIGTERM: the driver is done
        pass
    except BaseException:  # noqa: BLE001 - said in the log; the shims start Ray's own workers
        traceback.print_exc()
    finally:
        if kept:  # the folder stays: its lock is what the next driver and server agree on
            _leave_kept(path, folder / LOCK)
        else:  # the folder, where a driver killed outright could not remove it
            shutil.rmtree(folder, ignore_errors=True)
        sys.stdout.flush()
        sys.stderr.flush()
        # Without TensorFlow's teardown at the interpreter's exit (about a second), which the
        # driver would wait for: this process holds nothing else to release.
        os._exit(0)


def _remove_own(path: str, pid_file: Path, *, folder_too: bool = True) -> None:
    """A kept server's socket and pid file, and its folder (``folder_too``), unless a newer
    server has taken them over; the caller holds the folder's lock, or has stopped serving.
    A driver that waits for the lock then finds its file gone and makes the folder anew."""
    try:
        if pid_file.read_text() != str(os.getpid()):
            return
        os.unlink(path)
        pid_file.unlink()
        if folder_too:
            remove_kept_folder(pid_file.parent)
    except OSError:
        pass


def remove_kept_folder(folder: Path) -> None:
    """A kept server's folder and what it holds (the caller holds its lock: see `_Lifetime`)."""
    for name in (SOCKET, SERVER_PID, SERVER_LOG, LOCK):
        (folder / name).unlink(missing_ok=True)
    folder.rmdir()


def _leave_kept(path: str, lock: Path) -> None:
    """A kept server ending on its own (SIGTERM, a failure): its socket, pid file and folder go
    where it gets the folder's lock at once. A driver holding the lock waits for this server's
    answer, so it is not waited for: a socket left behind is one no server answers, which the
    next driver replaces."""
    try:
        with open(lock, "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _remove_own(path, lock.parent / SERVER_PID)
    except OSError:
        pass


class _Lifetime:
    """When the server ends: with its driver (``parent``), or, kept (``lock`` given), once no
    driver has held it and no worker of its has run for ``keep_s``.

    A driver connects to a kept server only while it holds ``lock`` (`workerkeep`), and the
    server leaves only while it holds it and no connection waits: so a driver's hold never
    reaches a server that is leaving."""

    def __init__(self, parent: int, keep_s: float = 0.0, lock: Path | None = None) -> None:
        self.parent, self.keep_s, self.lock = parent, keep_s, lock
        self.holds: set[socket.socket] = set()
        self.idle_since = time.monotonic()
        self.stamps: dict[str, tuple[int, int]] = {}

    @property
    def kept(self) -> bool:
        return self.lock is not None

    def keep(self, seconds: Any) -> None:
        """Keep the time the latest sweep to hold the server asks for (its own setting)."""
        if self.kept and isinstance(seconds, int | float) and 0 <= seconds < float("inf"):
            self.keep_s = float(seconds)

    def over(self, listener: socket.socket | None, busy: bool) -> bool:
        if not self.kept:
            return os.getppid() != self.parent
        if self.holds or busy:
            self.idle_since = time.monotonic()
            return False
        if listener is None:  # replaced by a newer server: nothing more will come
            return True
        if time.monotonic() - self.idle_since < self.keep_s:
            return False
        assert self.lock is not None
        try:
            with open(self.lock, "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if _waiting(listener):
                    return False
                _remove_own(listener.getsockname(), self.lock.parent / SERVER_PID)
                return True
        except BlockingIOError:  # a driver is connecting
            return False
        except OSError:  # its folder is gone: no driver can find this server
            return True


def _waiting(listener: socket.socket) -> bool:
    """Whether a connection waits on ``listener``."""
    readable, _, _ = select.select([listener], [], [], 0)
    return bool(readable)


def _serve(listener: socket.socket, life: _Lifetime) -> None:
    """Import, then fork a worker for each shim that connects (no thread of its own); kept,
    hand those of a sweep started as the last one to the Ray stage (`workerstage`)."""
    import_all_but_ray()
    if "ray" in sys.modules:  # forks would all serve the job Ray read when it loaded
        print("the worker fork server loaded Ray; Ray's own workers start instead", file=sys.stderr)
        return
    if tensorflow_runtime_started():  # its threads would be missing in the forks
        print(
            "the worker fork server started TensorFlow's runtime; Ray's own workers start instead",
            file=sys.stderr,
        )
        return
    if life.kept:
        life.stamps = module_stamps()
    # What the imports made (TensorFlow's objects, hundreds of thousands) stays for good: out of
    # the collector's reach, its passes in the forks (a Ray stage's imports, a worker's) neither
    # scan those objects nor write to their pages, which each fork would then copy.
    gc.freeze()

    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    accepting: socket.socket | None = listener
    workers = Workers(selector)
    # A kept server's drivers tell it their raylets, for which it forks Ray stages; a server of
    # one sweep is told none, so its stages stay empty.
    stages = RayStages(selector)
    while not life.over(accepting, bool(workers)):
        for key, _events in selector.select(CHECK_S):
            if key.fileobj is listener:
                conn, _ = listener.accept()
                if not _same_user(conn):
                    conn.close()
                    continue
                try:
                    request, fds = receive(conn)
                except (OSError, ValueError) as exc:
                    print(f"refused a request: {exc}", file=sys.stderr, flush=True)
                    conn.close()
                    continue
                if request.get("hold") and not _stale(life):
                    life.keep(request.get("keep_s"))
                    _answer(conn, f"ok {os.getpid()}")
                    life.holds.add(conn)  # held until the driver closes it (then readable: EOF)
                    selector.register(conn, selectors.EVENT_READ, HOLD)
                    continue
                if request.get("hold"):  # a newer server takes this folder's socket: free it first
                    selector.unregister(listener)
                    pid_file = Path(listener.getsockname()).parent / SERVER_PID
                    _remove_own(listener.getsockname(), pid_file, folder_too=False)
                    listener.close()
                    accepting = None
                    _answer(conn, "stale")
                    conn.close()
                    continue
                if stages.take(request, fds, conn):
                    continue
                workers.start(request, fds, conn, [listener, *life.holds, *stages.sockets()])
            elif key.data is HOLD:
                held = key.fileobj
                assert isinstance(held, socket.socket)
                told = _told(held)
                if told is not None:  # the sweep's raylet has started
                    stages.start(held, told.get("raylet"), [listener, *life.holds, *workers.shims.values()])
                else:  # a driver let go (its sweep ended, or it was killed)
                    selector.unregister(held)
                    life.holds.discard(held)
                    held.close()
                    stages.release(held)
            elif key.data is STAGE:
                stages.heard(key.fileobj)
            else:
                workers.shim_gone(key)
        workers.reap()


def _told(held: socket.socket) -> dict[str, Any] | None:
    """What a driver told on its hold, one JSON object (None: it let go)."""
    try:
        data = held.recv(MAX_REQUEST)
    except OSError:
        return None
    if not data:
        return None
    try:
        told = json.loads(data)
    except ValueError:
        return {}
    return told if isinstance(told, dict) else {}


def _stale(life: _Lifetime) -> bool:
    """Whether a kept server must not serve another sweep: a file it imported changed since
    (an upgraded library, an edited module), said in its log."""
    changed_file = changed(life.stamps) if life.kept else None
    if changed_file is not None:
        print(
            f"{changed_file} changed since this kept server imported it: a new server takes over", flush=True
        )
    return changed_file is not None


def _answer(conn: socket.socket, line: str) -> None:
    try:
        conn.sendall(f"{line}\n".encode())
    except OSError:  # the driver is gone: its hold's end is seen as the connection's
        pass


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
