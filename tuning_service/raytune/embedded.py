"""The embedded Ray: a lean head node of Ray's on this machine for one sweep's process.

`init_embedded` starts it (`start_lean_head`: the node `ray.init` would start, without the
services a sweep never uses, its Python workers forked from a process that imported TensorFlow
while it started, or else warm workers where the sweep runs a trial per CPU) and connects the
driver; `shutdown_embedded` stops all of it. `raysession.ray_session` decides when.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tuning_service.core.envvars import env_restored
from tuning_service.raytune.leanagent import minimal_dashboard_agent
from tuning_service.raytune.warmworkers import system_config, worth_warming
from tuning_service.raytune.workerfork import SHIM, ForkServer, fork_server, forking_chosen

log = logging.getLogger(__name__)

# What the embedded Ray may be asked for and still start lean (anything else: `ray.init` alone).
_LEAN_HEAD_KWARGS = frozenset(
    {"address", "include_dashboard", "num_cpus", "log_to_driver", "configure_logging", "logging_level"}
)
# The embedded head asks Ray's GCS this often whether its raylet has registered (Ray asks once
# a second), for at most RAYLET_REGISTRATION_S (Ray's own limit).
REGISTRATION_POLL_S = 0.02
RAYLET_REGISTRATION_S = 30.0
# As it starts, the raylet connects to its object store's socket, which a thread of its own
# makes; where the thread has not made it yet (on a busy machine), Ray sleeps its connect retry
# interval, a second by default, before trying again (`raylet.out`: the store made, the object
# manager started 1.0 s later). That was Ray's start in about two of five first sweeps, beside
# the new fork server's TensorFlow import (`python -m benchmarks.startup`). Ray's processes
# retry their sockets every CONNECT_RETRY_MS instead, as many times more, so a socket that
# never comes is given up on as late as before.
CONNECT_RETRY_MS = 20
_RAY_CONNECT_WAIT_MS = 10 * 1000  # Ray's default: 10 attempts, a second apart


def await_registration(gcs_address: str, node_id: str, timeout: float) -> bool:
    """Whether Ray's GCS at ``gcs_address`` lists node ``node_id`` (hex) alive within ``timeout``
    seconds, asked every REGISTRATION_POLL_S."""
    from tuning_service.raytune.raysession import alive_nodes

    try:
        from ray._raylet import GcsClient  # type: ignore[attr-defined]

        client = GcsClient(address=gcs_address)
    except (ImportError, TypeError) as exc:  # a Ray without this client: Ray's own check waits
        log.debug("cannot ask the GCS for the raylet's registration: %s", exc)
        return False
    deadline = time.monotonic() + timeout
    while True:
        try:
            if node_id in alive_nodes(client, timeout=REGISTRATION_POLL_S * 10):
                return True
        except Exception as exc:  # noqa: BLE001 - the GCS runs by now: leave it to Ray's check
            log.debug("cannot ask the GCS for the raylet's registration: %s", exc)
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(REGISTRATION_POLL_S)


def connect_retries() -> dict[str, Any]:
    """Ray's settings for its processes' socket connects: a retry every CONNECT_RETRY_MS."""
    return {
        "raylet_client_connect_timeout_milliseconds": CONNECT_RETRY_MS,
        "raylet_client_num_connect_attempts": _RAY_CONNECT_WAIT_MS // CONNECT_RETRY_MS,
    }


def start_lean_head(
    num_cpus: int,
    *,
    warm: bool = False,
    worker_env: dict[str, str] | None = None,
    raylet_started: Callable[[int], None] | None = None,
) -> Any:
    """Start the embedded Ray's head node without the services a sweep's driver never uses.

    `ray.init` also starts Ray's autoscaler monitor (there is nothing to scale on one machine),
    its log monitor (which streams workers' output to the driver; sweeps run with
    ``log_to_driver=False``) and, even without the dashboard, Ray's API server (a Python
    process serving Ray's job and state APIs over HTTP, which the driver never calls) and waits
    for the API server to come up. All three import Ray while the raylet starts, and on 2 cores
    they delayed the raylet's registration with Ray's GCS (`python -m benchmarks.startup` times
    the start). ``RayParams``' switches for the monitors are not reachable from `ray.init`, so
    the node is started as `ray.init` starts it, without them, and the driver then connects to
    it. Its dashboard agent, which the raylet waits for before it registers, runs minimal:
    without the dashboard's modules, which only a dashboard would use (`leanagent`). The node
    also waits for that registration itself, asking every REGISTRATION_POLL_S, so
    Ray's own check finds it at once instead of a second later. ``warm``: the node starts its
    workers warm as the driver connects (`warmworkers`). ``worker_env``: the raylet starts each
    Python worker as a fork of a warm process (`workerfork`; the variables the raylet needs for
    it); ``raylet_started`` is told the raylet's pid once it has registered (a kept fork server
    then imports Ray for its workers: `workerstage`). Its processes retry a socket not made yet
    every CONNECT_RETRY_MS (`connect_retries`). Returns None where this Ray's node API
    differs (the caller then uses `ray.init` alone).
    """
    try:
        from ray._private import ray_constants
        from ray._private.node import Node
        from ray._private.parameter import RayParams

        class LeanNode(Node):
            """Ray's node without the API server, its dashboard agent minimal (`leanagent`),
            back from starting its processes once its raylet is registered."""

            def start_api_server(self, *args: Any, **kwargs: Any) -> None:
                if kwargs.get("include_dashboard"):  # the lean head is never asked for one
                    super().start_api_server(*args, **kwargs)

            def start_raylet(self, *args: Any, **kwargs: Any) -> None:
                # The raylet inherits this process's environment, and its workers the raylet's.
                with minimal_dashboard_agent(), env_restored(*(worker_env or {})):
                    os.environ.update(worker_env or {})
                    super().start_raylet(*args, **kwargs)

            def start_ray_processes(self, *args: Any, **kwargs: Any) -> None:
                super().start_ray_processes(*args, **kwargs)
                # Past the timeout, Ray's own check goes on waiting and says why it gave up.
                if self._node_id is not None:
                    await_registration(self.gcs_address, self._node_id, RAYLET_REGISTRATION_S)
                raylet = self.all_processes.get(ray_constants.PROCESS_TYPE_RAYLET) or [None]
                if raylet_started is not None and raylet[0] is not None:
                    raylet_started(raylet[0].process.pid)

        params = RayParams(
            num_cpus=num_cpus,
            include_dashboard=False,
            no_monitor=True,
            include_log_monitor=False,  # type: ignore[arg-type] # a switch Ray annotates as str
            _system_config={**connect_retries(), **(system_config() if warm else {})},
        )
        if worker_env:
            params.worker_path = SHIM
    except (ImportError, TypeError) as exc:
        log.debug("starting the embedded Ray with ray.init: its node API differs (%s)", exc)
        return None
    return LeanNode(params, head=True, shutdown_at_exit=False, spawn_reaper=True, ray_init_cluster=True)


def shutdown_embedded(head: Any) -> None:
    """``ray.shutdown()``, then stop the lean ``head`` `init_embedded` started, if any, as
    `ray.shutdown` stops a node `ray.init` started: spilled objects removed, every process."""
    import ray

    ray.shutdown()
    if head is not None:
        head.destroy_external_storage()
        head.kill_all_processes(check_alive=False, allow_graceful=True)


def init_embedded(
    *,
    trial_slots: int = 0,
    worker_log: Path | None = None,
    worker_forks: ForkServer | None = None,
    **kwargs: Any,
) -> tuple[Any, Any, ExitStack]:
    """A new local Ray for this process, lean where it can be (`start_lean_head`): Ray's context,
    the head to hand to `shutdown_embedded` (None where `ray.init` started it), and what to close
    after it. Where the sweep runs Keras trials (``trial_slots`` at once), its workers are forks
    of a process that imported what they need (`workerfork`): ``worker_forks``, one started
    already, or else one started here, its output in ``worker_log``; where they are not forked,
    they start warm where it runs a trial per CPU or more."""
    import ray

    # "local" always starts a new Ray; with no address Ray would join any cluster already
    # running on this machine (`ray start --head`), which is not what a sweep without
    # --address asked for.
    kwargs.update(address="local", include_dashboard=kwargs.get("include_dashboard", False))
    kwargs.setdefault("num_cpus", os.cpu_count() or 1)
    lean = set(kwargs) <= _LEAN_HEAD_KWARGS and not kwargs["include_dashboard"]
    after = ExitStack()
    try:
        worker_env = None
        if lean and worker_forks is not None:
            worker_env = worker_forks.env
        elif lean and trial_slots > 0 and worker_log is not None and forking_chosen():
            worker_env = after.enter_context(fork_server(worker_log)).env
        # Forked workers start in milliseconds, when Tune asks for them; workers started ahead
        # would hold `ray.init` until they registered, past the fork server's imports.
        warm = worker_env is None and worth_warming(trial_slots, int(kwargs["num_cpus"]))
        told = worker_forks.raylet_started if worker_forks is not None else None
        head = (
            start_lean_head(int(kwargs["num_cpus"]), warm=warm, worker_env=worker_env, raylet_started=told)
            if lean
            else None
        )
        if head is None:
            after.close()
            return ray.init(**{"_system_config": connect_retries(), **kwargs}), None, after
        # The node runs: the driver connects to it as to a cluster.
        connect = {k: v for k, v in kwargs.items() if k not in ("address", "include_dashboard", "num_cpus")}
        try:
            return ray.init(address=head.address, **connect), head, after
        except BaseException:
            shutdown_embedded(head)
            raise
    except BaseException:
        after.close()
        raise
