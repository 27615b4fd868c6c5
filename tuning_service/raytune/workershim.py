"""The command the embedded Ray's raylet runs for each Python worker: a fork of a warm process.

The raylet starts a worker as ``python <this file> <Ray's worker arguments>``. This script,
which imports nothing outside the standard library, hands its arguments, environment, working
directory and standard streams to the fork server (`workerfork`), which forks a copy of itself,
with Ray, TensorFlow and the training code already imported, to run Ray's own worker with
them. It then stands in for that worker towards the raylet: it passes SIGTERM and SIGINT on
and exits with the worker's status. Where the fork server cannot be reached, it becomes
Ray's own worker (``exec``), as without it.
"""

import json
import os
import signal
import socket
import sys

# Set in the raylet's environment by `workerfork.fork_server`.
SOCKET_ENV = "TUNING_SERVICE_WORKER_FORK_SOCKET"
RAY_WORKER_ENV = "TUNING_SERVICE_RAY_WORKER"
# How long a shim waits for a server that has not bound its socket yet (Python's start and a
# few imports, longer on a busy machine), before it starts Ray's own worker.
SERVER_START_S = 20.0


def _read_line(conn: socket.socket, buffer: bytearray) -> bytes | None:
    """One newline-ended message from the fork server (None once it has closed)."""
    while b"\n" not in buffer:
        try:
            chunk = conn.recv(4096)
        except OSError:  # the server died
            return None
        if not chunk:
            return None
        buffer.extend(chunk)
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line


def _connect(conn: socket.socket, path: str) -> None:
    """Connect to the server's socket, waiting while the server, started just before, binds it."""
    import time

    deadline = time.monotonic() + SERVER_START_S
    while True:
        try:
            conn.connect(path)
            return
        except (FileNotFoundError, ConnectionRefusedError):
            # Its folder goes when the server or the driver ends: then there is nothing to wait for.
            if not os.path.isdir(os.path.dirname(path)) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _exec_ray_worker(args: list[str]) -> None:
    """Become Ray's own worker, as the raylet would have started it."""
    worker = os.environ[RAY_WORKER_ENV]
    os.execv(sys.executable, [sys.executable, worker, *args])


def _without_server(conn: socket.socket, args: list[str], pending: list[int]) -> int:
    """No worker from the server: become Ray's own worker, unless the raylet has already asked
    this one to stop (then exit as that signal would have ended it)."""
    conn.close()
    if pending:
        return 128 + pending[0]
    _exec_ray_worker(args)
    return 1  # pragma: no cover - exec does not return


def _wait_gone(pid: int) -> int:
    """Wait for a worker whose fork server is gone, polling (it is not this process's child)."""
    import time

    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return 0
        except PermissionError:  # pragma: no cover - the pid was reused by another user's process
            return 0
        time.sleep(0.5)


def main(args: list[str]) -> int:
    # SIGTERM or SIGINT (the raylet stopping this worker) go to the worker once it exists; one
    # that comes before, while the server forks it, waits for its pid.
    worker: list[int] = []
    pending: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        if not worker:
            pending.append(signum)
            return
        try:
            os.kill(worker[0], signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    path = os.environ.get(SOCKET_ENV)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if not path:
            raise OSError("no fork server")
        _connect(conn, path)
        request = json.dumps({"argv": args, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
        socket.send_fds(conn, [request + b"\n"], [0, 1, 2])
    except OSError:
        return _without_server(conn, args, pending)
    buffer = bytearray()
    reply = _read_line(conn, buffer)
    if reply is None:  # the server could not fork: start the worker as Ray would
        return _without_server(conn, args, pending)
    worker.append(int(reply))
    for signum in pending:
        forward(signum, None)
    status = _read_line(conn, buffer)
    if status is None:  # the server stopped first; the worker runs on without it
        return _wait_gone(worker[0])
    return int(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
