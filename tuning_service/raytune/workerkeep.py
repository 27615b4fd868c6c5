"""A worker fork server kept between sweeps, so the next sweep's workers start with its imports done.

The fork server (`workerfork`) imports TensorFlow and the training code while a sweep starts;
on 2 cores that import is most of the wait for the first epoch (`python -m benchmarks.startup`).
A user tunes in rounds: run, look, change the space, run again. So after a sweep the server
stays, idle, for ``TUNING_SERVICE_WORKERS_KEEP_S`` seconds (300 by default; 0: it ends with
the sweep; the latest sweep to hold it sets it), and the next sweep started from the same place
holds it instead of starting one.

"The same place" is what the server's imports depend on: the Python, its version and search
path, the working directory and the environment variables the libraries read as they load
(TensorFlow's, CUDA's, the thread pools'). Their digest names the server's folder, private
to this user, so a sweep started otherwise gets a server of its own. The server starts with
only those variables (none of the sweep's secrets stays behind in it), and before it serves
another sweep it checks that no file it imported has changed since (an upgrade, an edited
module); where one has, it hands its socket over to a new server and ends.

A driver connects to the server, and the server leaves, only while holding the folder's lock,
so a sweep never holds a server that is leaving. A hold is a connection the driver keeps open
for the sweep: when it closes (the sweep ended, or its driver was killed) the server's idle
time starts. Its workers are forked per sweep with that sweep's environment, as before; a
sweep started as the last one was has them forked by a Ray stage, which imports Ray and Ray
Tune for them while the sweep's Ray starts (`workerstage`).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tuning_service.core.errors import InputError
from tuning_service.core.processes import age_s, resident_mib
from tuning_service.raytune import workerfork
from tuning_service.raytune.workerfork import (
    LOCK,
    SERVER_LOG,
    SERVER_PID,
    SOCKET,
    STOP_WAIT_S,
    ForkServer,
    ray_worker_script,
    remove_kept_folder,
)
from tuning_service.raytune.workershim import RAY_WORKER_ENV, SOCKET_ENV

log = logging.getLogger(__name__)

KEEP_ENV = "TUNING_SERVICE_WORKERS_KEEP_S"
DEFAULT_KEEP_S = 300.0
# The variables a kept server starts with and is chosen by: what its imports may read.
SERVER_ENV_PREFIXES = (
    "TF_", "CUDA", "NVIDIA_", "XLA_", "KERAS_", "PYTHON", "LD_", "OMP_", "MKL_", "OPENBLAS_",
    "GOTO", "MALLOC_", "HDF5_", "VIRTUAL_ENV", "CONDA_", "LANG", "LC_",
)  # fmt: skip
SERVER_ENV_NAMES = ("PATH", "HOME", "USER", "TMPDIR")
KEPT_PREFIX = f"{workerfork.FOLDER_PREFIX}kept-"
# How long a driver waits for a kept server's answer: one still importing (started by another
# sweep a moment before) answers once its imports are done.
ANSWER_S = 60.0
LOG_KEPT_BYTES = 1 << 20
LOCK_TRIES = 10


def keep_seconds() -> float:
    """How long a sweep's worker fork server stays for the next sweep: TUNING_SERVICE_WORKERS_KEEP_S, checked."""
    value = os.environ.get(KEEP_ENV, "").strip()
    if not value:
        return DEFAULT_KEEP_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise InputError(
            f"{KEEP_ENV} must be the seconds a sweep's worker fork server stays for the next sweep "
            f"(a number >= 0; 0: it ends with the sweep; default {DEFAULT_KEEP_S:g}), not {value!r}"
        )
    return seconds


def worker_fork_server() -> AbstractContextManager[ForkServer]:
    """The sweep's fork server: a kept one (new or held), or one that ends with the sweep."""
    keep = keep_seconds()
    return kept_fork_server(keep) if keep > 0 else workerfork.fork_server()


def server_environment() -> dict[str, str]:
    """The variables a kept server starts with (and is chosen by)."""
    return {
        name: value
        for name, value in os.environ.items()
        if name.startswith(SERVER_ENV_PREFIXES) or name in SERVER_ENV_NAMES
    }


def kept_folder() -> Path:
    """This user's kept server's folder for this Python, place and environment."""
    digest = hashlib.sha256(
        json.dumps(
            [sys.executable, sys.version, os.getcwd(), sys.path[1:], sorted(server_environment().items())]
        ).encode()
    ).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"{KEPT_PREFIX}{os.getuid()}-{digest}"


@contextmanager
def kept_fork_server(keep_s: float) -> Iterator[ForkServer]:
    """Hold this place's kept server while the context is open, starting one where none runs."""
    reap_started()
    remove_abandoned_kept()
    folder = kept_folder()
    lock = _lock(folder)
    if lock is None:
        log.warning(
            "%s is not a folder of this user's alone: no fork server is kept for the next sweep", folder
        )
        with workerfork.fork_server() as server:
            yield server
        return
    path, server_log = folder / SOCKET, folder / SERVER_LOG
    with lock:
        held = _hold(path, keep_s)
        reused = held is not None
        if not reused and _size(server_log) > LOG_KEPT_BYTES:
            server_log.unlink()  # a new file for the new server
        offset = _size(server_log)  # this sweep's part of the log: what the server writes from now on
        if held is None:
            held = _hold(path, keep_s, started=_start(path, server_log, keep_s))
    if held is None:  # it could not start: the shims start Ray's own workers
        conn, pid = None, 0
        log.warning("the kept worker fork server did not start (its log: %s)", server_log)
    else:
        conn, pid = held
        # Its output reaches the sweep's ray.log only as the sweep ends: name it for a live look.
        log.info(
            "the embedded Ray's workers will be forked from process %d, %s (%s); its output: %s",
            pid,
            f"kept from an earlier sweep with TensorFlow imported; it stays {keep_s:g} s after this one"
            if reused
            else f"which imports TensorFlow now and stays {keep_s:g} s after the sweep for the next",
            KEEP_ENV,
            server_log,
        )
    # Without a server to name, each shim starts Ray's own worker at once. Only a server that
    # answered (one kept from an earlier sweep) is told this sweep's raylet: a new one learns
    # from this sweep's workers what its Ray stage imports with for the next (`workerstage`).
    env = {SOCKET_ENV: str(path)} if conn is not None else {}
    try:
        yield ForkServer(
            pid, {**env, RAY_WORKER_ENV: ray_worker_script()}, server_log, offset, conn if reused else None
        )
    finally:
        if conn is not None:
            conn.close()  # the server's idle time starts when no sweep holds it
        reap_started()


def _size(file: Path) -> int:
    try:
        return file.stat().st_size
    except FileNotFoundError:
        return 0


def _lock(folder: Path) -> IO[str] | None:
    """``folder``'s lock, held until the file is closed (None where the folder is not this
    user's alone). A server that leaves removes its folder under this lock, so a lock taken on
    a file that has been removed meanwhile is taken again, on a new folder."""
    for _ in range(LOCK_TRIES):
        if not _private(folder):
            return None
        try:
            lock = open(folder / LOCK, "a")  # noqa: SIM115 - held beyond this function
        except FileNotFoundError:  # removed since the folder was made or checked
            continue
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if os.fstat(lock.fileno()).st_ino == os.stat(folder / LOCK).st_ino:
                return lock
        except FileNotFoundError:
            pass
        lock.close()
    return None


def _private(folder: Path) -> bool:
    """Make ``folder`` (mode 0700), or check that the one there is this user's alone."""
    try:
        folder.mkdir(mode=0o700)
        return True
    except FileExistsError:
        pass
    except OSError as exc:
        log.debug("cannot make %s: %s", folder, exc)
        return False
    info = _ours(folder)
    return info is not None and info.st_mode & 0o077 == 0


def _ours(folder: Path) -> os.stat_result | None:
    """``folder``'s status where it is a folder of this user's (not a link); None otherwise."""
    try:
        info = folder.lstat()
    except OSError:
        return None
    return info if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() else None


def _hold(
    path: Path, keep_s: float, *, started: subprocess.Popen[bytes] | None = None
) -> tuple[socket.socket, int] | None:
    """Hold the server on ``path``, to stay ``keep_s`` after this sweep: the open connection and
    the server's pid (None where no server answers, or it is stale). A server just ``started``
    is waited for while it binds (unless it ends), and not for its answer, which comes after
    its imports."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.monotonic() + ANSWER_S
    try:
        while True:
            try:
                conn.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if started is None or started.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        conn.sendall(json.dumps({"hold": True, "keep_s": keep_s}).encode() + b"\n")
        if started is not None:
            return conn, started.pid
        conn.settimeout(ANSWER_S)
        answer = conn.makefile("rb").readline().decode().split()
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ECONNREFUSED):
            log.debug("the kept worker fork server on %s did not answer: %s", path, exc)
        conn.close()
        return None
    if len(answer) == 2 and answer[0] == "ok" and answer[1].isdigit():
        conn.settimeout(None)
        return conn, int(answer[1])
    conn.close()
    return None


def _start(path: Path, server_log: Path, keep_s: float) -> subprocess.Popen[bytes]:
    """Start a kept server on ``path`` (a socket left by one that was killed goes first), its
    output added to ``server_log``."""
    path.unlink(missing_ok=True)
    with open(server_log, "ab") as out:
        started = subprocess.Popen(
            [sys.executable, "-m", workerfork.__name__, str(path), "0", repr(keep_s)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=server_environment(),
            start_new_session=True,  # not this terminal's: it outlives the command
        )
    _STARTED.append(started)
    return started


# Servers this process started: polled so that one that has ended is reaped, not left a zombie.
_STARTED: list[subprocess.Popen[bytes]] = []


def reap_started() -> None:
    """Reap the kept servers this process started that have ended."""
    _STARTED[:] = [server for server in _STARTED if server.poll() is None]


@dataclass(frozen=True)
class KeptServer:
    """A kept fork server of this user's, as `tuning-service workers` lists it."""

    pid: int
    folder: Path
    directory: str | None  # the working directory of the sweeps it serves
    memory_mib: float | None  # resident
    age_s: float | None  # since it started


def kept_servers() -> list[KeptServer]:
    """This user's kept fork servers that run now (Linux's /proc; none elsewhere)."""
    found = []
    for folder in _kept_folders():
        pid = _server_of(folder)
        if pid is None:
            continue
        try:
            directory: str | None = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            directory = None
        found.append(KeptServer(pid, folder, directory, resident_mib(pid), age_s(pid)))
    return sorted(found, key=lambda server: server.pid)


def stop_kept(server: KeptServer, wait_s: float = STOP_WAIT_S) -> bool:
    """Stop ``server`` (SIGTERM: it removes what it can of its folder) and wait for it to end;
    whether it ended within ``wait_s``."""
    try:
        os.kill(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + wait_s
    while _server_of(server.folder) == server.pid and time.monotonic() < deadline:
        time.sleep(0.05)
    return _server_of(server.folder) != server.pid


def remove_abandoned_kept() -> None:
    """Remove the folders of this user's kept servers that no longer run (killed outright, the
    machine's memory killer): their lock, log and a socket nothing answers. A folder whose lock
    is held (a driver holds or starts its server) is left alone."""
    for folder in _kept_folders():
        if _server_of(folder) is not None:
            continue
        try:
            with open(folder / LOCK, "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if _server_of(folder) is None:  # none started meanwhile
                    remove_kept_folder(folder)
        except OSError:  # held, or gone already
            continue


def _kept_folders() -> list[Path]:
    """This user's kept servers' folders in the temporary folder."""
    found = Path(tempfile.gettempdir()).glob(f"{KEPT_PREFIX}{os.getuid()}-*")
    return [folder for folder in found if _ours(folder) is not None]


def _server_of(folder: Path) -> int | None:
    """The pid of the kept server that runs for ``folder`` (None: none does; a pid file naming
    a process that ended, or another process since, names none)."""
    try:
        pid = int((folder / SERVER_PID).read_text())
        cmdline = (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if workerfork.__name__.encode() in cmdline else None
