"""A kept fork server's Ray stage: a fork of it that imports Ray, Ray Tune and the trainable
as a sweep's Ray starts, and forks that sweep's workers.

A worker forked by the fork server (`workerfork`) still imports Ray, Ray Tune and the trainable
before its first epoch (0.8 s of one core, `python -m benchmarks.startup`): Ray's core reads its
settings from the environment as it loads (the job's id and the raylet's pid among them, which
it never reads again), and the server forks the workers of any sweep, so it cannot have loaded
Ray. A kept server (`workerkeep`) has seen the last sweep's workers, though, and a sweep's driver
tells it its raylet's pid as soon as the raylet has started. Then the server forks this stage
for that sweep: it takes the variables of the last sweep's workers' environment that Ray and
Ray Tune read (``RAY_*``, ``TUNE_*``, ``AIR_*``; not a token, password or key) with the new
raylet's pid, and imports Ray, Ray Tune and the trainable with them, as a worker would, while
Ray and Tune finish starting. Each of that sweep's workers whose variables are the same (all of
them, for a sweep started as the last one was) is forked by the stage: the server hands it the
shim's request, streams and connection. Any other worker is forked by the server, as before.

The stage starts no thread (it checks; where one did, it says so in the server's log and
forks nothing), and it ends with its sweep's hold on the server, once the workers it forked
have ended.
"""

from __future__ import annotations

import gc
import json
import os
import selectors
import signal
import socket
import threading
from dataclasses import dataclass
from typing import Any

from tuning_service.raytune.forkworker import (
    CHECK_S,
    MAX_REQUEST,
    Workers,
    fork_child,
    tensorflow_runtime_started,
)
from tuning_service.raytune.lazydata import defer_ray_data

# What of a worker's environment Ray, Ray Tune and the libraries they load read as they load.
RAY_PREFIXES = ("RAY_", "TUNE_", "AIR_")
RAYLET_PID = "RAY_RAYLET_PID"  # each sweep's own: told by its driver (`workerfork.ForkServer`)
SECRET_MARKS = ("TOKEN", "PASSWORD", "SECRET", "KEY", "CREDENTIAL")
STAGE = "stage"  # the selector's mark for a stage's socket, in the server
READY = b"ready"


def ray_variables(env: Any) -> dict[str, str] | None:
    """What of a worker's environment a stage imports with and compares (None: a request
    that names no job, such as a worker Ray starts before any job asks for one)."""
    if not isinstance(env, dict) or not str(env.get("RAY_JOB_ID", "")).strip("f"):
        return None
    return {
        name: str(value)
        for name, value in env.items()
        if isinstance(name, str)
        and name.startswith(RAY_PREFIXES)
        and not any(mark in name.upper() for mark in SECRET_MARKS)
    }


@dataclass
class _Stage:
    pid: int
    channel: socket.socket
    variables: dict[str, str]


class RayStages:
    """The server's side: a stage for each sweep that told its raylet, while it holds the server."""

    def __init__(self, selector: selectors.BaseSelector) -> None:
        self.selector = selector
        # The last sweep's workers' variables, but the raylet's pid: the next stage's.
        self.learned: dict[str, str] | None = None
        self.stages: dict[socket.socket, _Stage] = {}  # by the sweep's hold

    def start(self, hold: socket.socket, raylet: Any, closing: list[Any]) -> None:
        """Fork a stage for the sweep on ``hold``, whose raylet is ``raylet``; ``closing``: the
        server's sockets, which the stage must not hold."""
        if self.learned is None or hold in self.stages or not isinstance(raylet, int):
            return
        variables = {**self.learned, RAYLET_PID: str(raylet)}
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = fork_child(
            [self.selector, ours, *self.sockets(), *closing], lambda: _serve_stage(theirs, variables)
        )
        theirs.close()
        ours.setblocking(False)  # a full socket: the server forks the worker itself
        self.stages[hold] = _Stage(pid, ours, variables)
        self.selector.register(ours, selectors.EVENT_READ, STAGE)
        print(f"process {pid} imports Ray and Ray Tune for the workers of raylet {raylet}", flush=True)

    def take(self, request: dict[str, Any], fds: list[int], conn: socket.socket) -> bool:
        """Hand a shim's request to the stage that imports for its variables; whether one took
        it (then this process holds none of the request's files any more). Learns the variables
        the next sweep's stage imports with."""
        variables = ray_variables(request.get("env"))
        if variables is None:
            return False
        self.learned = {name: value for name, value in variables.items() if name != RAYLET_PID}
        hold = next((h for h, s in self.stages.items() if s.variables == variables), None)
        if hold is None:
            return False
        try:
            socket.send_fds(self.stages[hold].channel, [json.dumps(request).encode()], [*fds, conn.fileno()])
        except OSError as exc:  # it ended, or a request too large for one message: forked here
            print(f"the Ray stage took no request ({exc}); the server forks this sweep's workers", flush=True)
            self.release(hold)
            return False
        for fd in fds:
            os.close(fd)
        conn.close()
        return True

    def heard(self, channel: Any) -> None:
        """A stage said it is ready, or that it failed, or it ended."""
        hold, stage = next((h, s) for h, s in self.stages.items() if s.channel is channel)
        try:
            message = channel.recv(MAX_REQUEST)
        except OSError:
            message = b""
        if message == READY:
            print(
                f"process {stage.pid} forks the workers of raylet {stage.variables[RAYLET_PID]}", flush=True
            )
            return
        if message:
            print(f"the Ray stage forks no worker: {message.decode(errors='replace')}", flush=True)
            self.learned = None  # the next sweep's workers are forked by the server
        self.release(hold)

    def release(self, hold: socket.socket) -> None:
        """The sweep on ``hold`` let go: its stage ends once the workers it forked have ended."""
        stage = self.stages.pop(hold, None)
        if stage is not None:
            self.selector.unregister(stage.channel)
            stage.channel.close()

    def sockets(self) -> list[socket.socket]:
        return [stage.channel for stage in self.stages.values()]


def _import_ray() -> str | None:
    """Import what a trial's worker imports beyond the server's (Ray, Ray Tune, the trainable);
    what makes this process unfit to fork workers (None: nothing)."""
    tasks = _threads()
    defer_ray_data()  # Tune's import without Ray Data, as in the sweep's driver
    import ray  # noqa: F401 - the point: loaded once, in the stage

    import tuning_service.raytune.trainable  # noqa: F401 - Ray Tune, the trainable, the training code

    if threading.active_count() > 1 or _threads() != tasks:
        return "importing Ray started a thread, which its forks would lack"
    if tensorflow_runtime_started():
        return "importing Ray started TensorFlow's runtime"
    return None


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _serve_stage(channel: socket.socket, variables: dict[str, str]) -> int:
    """In the stage: import with the workers' variables, then fork a worker for each request
    the server hands on, until the server lets go and the workers forked here have ended."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the server's handler
    os.environ.update(variables)
    try:
        failure = _import_ray()
    except Exception as exc:  # noqa: BLE001 - said in the server's log; the server forks instead
        failure = f"importing Ray failed: {exc!r}"
    if failure is not None:
        channel.send(failure.encode())
        return 1
    gc.freeze()  # Ray's and Tune's objects too, as the server froze its own (`workerfork._serve`)
    channel.send(READY)
    selector = selectors.DefaultSelector()
    selector.register(channel, selectors.EVENT_READ)
    workers = Workers(selector)
    serving, forked = True, 0
    while serving or workers:
        for key, _events in selector.select(CHECK_S):
            if key.fileobj is not channel:
                workers.shim_gone(key)
                continue
            try:
                data, fds, _flags, _addr = socket.recv_fds(channel, MAX_REQUEST, 4)
            except OSError:
                data, fds = b"", []
            if data and len(fds) == 4:
                workers.start(json.loads(data), fds[:3], socket.socket(fileno=fds[3]), [channel])
                forked += 1
                continue
            for fd in fds:
                os.close(fd)
            if not data:  # the server let go
                selector.unregister(channel)
                channel.close()
                serving = False
        workers.reap()
    print(f"process {os.getpid()} forked {forked} workers of raylet {variables[RAYLET_PID]}", flush=True)
    return 0
