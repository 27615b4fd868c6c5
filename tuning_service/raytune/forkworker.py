"""How a process that has done a worker's imports forks one Ray worker for a shim, and tells
the shim how it ended: shared by the worker fork server (`workerfork`) and its Ray stage
(`workerstage`).

A shim (`workershim`) sends its arguments, environment and working directory with its three
standard streams; the forking process answers with the worker's pid, and later its exit
status. Where the shim goes away first (the raylet gave up on it), its worker is killed.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import runpy
import selectors
import signal
import socket
import sys
import traceback
from typing import Any

from tuning_service.raytune.workershim import RAY_WORKER_ENV

MAX_REQUEST = 1 << 20
# How often a forking process looks up from its sockets (its driver, its ended workers).
CHECK_S = 0.5


def receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """A request: a shim's arguments, environment and working directory, with its three
    standard streams; or a driver's hold on a kept server (``{"hold": true}``, no streams)."""
    data, fds, _flags, _addr = socket.recv_fds(conn, MAX_REQUEST, 3)
    buffer = bytearray(data)
    try:
        while not buffer.endswith(b"\n"):
            chunk = conn.recv(MAX_REQUEST)
            if not chunk or len(buffer) > MAX_REQUEST:
                raise ConnectionError("incomplete request")
            buffer.extend(chunk)
        request = json.loads(buffer)
        if not isinstance(request, dict):
            raise ValueError("a request is a JSON object")
        if len(fds) != (0 if request.get("hold") else 3):
            raise ConnectionError("a worker request without the worker's three standard streams")
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return request, fds


def _run_worker(request: dict[str, Any], fds: list[int]) -> int:
    """In the fork: become the worker the raylet asked for, and run Ray's worker script."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setpgid(0, 0)  # a process group of its own, as Ray gives each worker it starts
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    raylet = sys.modules.get("ray._raylet")
    if raylet is not None:  # loaded by the Ray stage (`workerstage`): Ray's core reads this
        raylet.Config.initialize("")  # worker's settings anew (but the job's id and the raylet's
        raylet.AuthenticationTokenLoader.instance().reset_cache()  # pid), and its token
    if "numpy" in sys.modules:  # its global generator: a new worker's own, not a copy of the server's
        sys.modules["numpy"].random.seed()
    script = os.environ[RAY_WORKER_ENV]
    sys.argv = [script, *request["argv"]]
    sys.path[0] = os.path.dirname(script)
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    return 0


def fork_child(closing: list[Any], run: Any) -> int:
    """Fork; in the child, close ``closing`` (the parent's sockets and selector), run ``run()``
    for its exit status and exit, never returning into the parent's loop. The child's pid."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for item in closing:
                item.close()
            code = run()
        except BaseException:  # noqa: BLE001 - the fork must never return into the parent's loop
            traceback.print_exc()
        finally:
            try:
                atexit._run_exitfuncs()  # what the worker's interpreter would run as it exits
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    return pid


class Workers:
    """The workers this process forked, each with its shim's connection in ``selector`` (its
    data the worker's pid)."""

    def __init__(self, selector: selectors.BaseSelector) -> None:
        self.selector = selector
        self.shims: dict[int, socket.socket] = {}

    def __bool__(self) -> bool:
        return bool(self.shims)

    def start(self, request: dict[str, Any], fds: list[int], conn: socket.socket, closing: list[Any]) -> None:
        """Fork a worker for the shim on ``conn``; ``closing``: what else the fork must not hold."""
        pid = fork_child(
            [self.selector, conn, *self.shims.values(), *closing], lambda: _run_worker(request, fds)
        )
        for fd in fds:
            os.close(fd)
        self.shims[pid] = conn
        try:
            conn.sendall(f"{pid}\n".encode())
        except OSError:  # the shim is gone already: so must its worker be
            os.kill(pid, signal.SIGKILL)
            return
        self.selector.register(conn, selectors.EVENT_READ, pid)

    def shim_gone(self, key: selectors.SelectorKey) -> None:
        """A shim went away before its worker ended: the raylet gave up on it."""
        self.selector.unregister(key.fileobj)
        try:
            os.kill(key.data, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def reap(self) -> None:
        """Tell each ended worker's shim how it ended (and reap any other child that ended)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.shims.pop(pid, None)
            if conn is None:
                continue
            try:
                self.selector.unregister(conn)
            except (KeyError, ValueError):
                pass
            try:
                conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
            except OSError:
                pass
            conn.close()


def module_stamps() -> dict[str, tuple[int, int]]:
    """Each imported module's file with its modification time and size: what a kept server
    compares before it serves another sweep (an upgraded library, an edited module)."""
    stamps: dict[str, tuple[int, int]] = {}
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and file not in stamps:
            try:
                stat = os.stat(file)
            except OSError:
                continue
            stamps[file] = (stat.st_mtime_ns, stat.st_size)
    return stamps


def changed(stamps: dict[str, tuple[int, int]]) -> str | None:
    """The first imported file that changed since ``stamps`` were taken (None: none did)."""
    for file, stamp in stamps.items():
        try:
            stat = os.stat(file)
        except OSError:
            return file
        if (stat.st_mtime_ns, stat.st_size) != stamp:
            return file
    return None


def tensorflow_runtime_started() -> bool:
    """Whether TensorFlow's eager runtime (its thread pools, devices) has started in this process."""
    try:
        context = importlib.import_module("tensorflow.python.eager.context")
    except ImportError:
        return False
    return getattr(context.context(), "_context_handle", None) is not None
