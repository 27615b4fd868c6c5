"""A cluster's nodes, and a worker node on the head's own machine (which `ray start` cannot add)."""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tuning_service.core.errors import InputError, SweepError
from tuning_service.raytune.raysession import (
    LOOPBACK,
    alive_nodes,
    check_cluster_access,
    check_reachable,
    host_port,
    parse_address,
    prepare_cluster_client,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeInfo:
    """One node as `tuning-service cluster nodes` shows it."""

    node_id: str
    address: str
    cpus: float
    gpus: float
    head: bool


def _connect(address: str) -> tuple[tuple[str, int], Any]:
    target = parse_address(address)
    if target is None:
        raise InputError(
            f"a cluster address is HOST:PORT (the head's GCS port, default 6379), got {address!r}"
        )
    prepare_cluster_client(address)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    check_reachable(*target)
    return target, check_cluster_access(*target)


def list_nodes(address: str) -> list[NodeInfo]:
    """The alive nodes of the cluster at ``address``, head first (from any machine: no driver)."""
    _, client = _connect(address)
    infos = [
        NodeInfo(
            node_id=node_id,
            address=info.node_manager_address,
            cpus=float(info.resources_total.get("CPU", 0.0)),
            gpus=float(info.resources_total.get("GPU", 0.0)),
            head=bool(info.is_head_node),
        )
        for node_id, info in alive_nodes(client).items()
    ]
    return sorted(infos, key=lambda n: (not n.head, n.address, n.node_id))


def join_local(
    address: str,
    *,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    object_store_memory: int | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Run a worker node for the loopback head at ``address`` until SIGTERM or Ctrl-C.

    `ray start --address=127.0.0.1:PORT` dials the machine's public address instead
    (Ray treats 127.0.0.1 as "this machine"), where a head started on loopback does
    not listen. This starts the same processes `ray start` would, through the same
    Ray internals `ray.cluster_utils.Cluster` uses, with 127.0.0.1 kept as the node's
    address. The token comes from the environment, exactly as for `ray start`.
    """
    (host, port), _ = _connect(address)
    if host not in LOOPBACK:
        raise InputError(
            f"`cluster join` adds a node on the head's own machine (127.0.0.1:PORT), got {address!r}; "
            f"on another machine run cluster/join-worker.sh {address}"
        )
    from ray._private.node import Node
    from ray._private.parameter import RayParams

    params = RayParams(
        gcs_address=host_port("127.0.0.1", port),
        node_ip_address="127.0.0.1",
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        object_store_memory=object_store_memory,
        # As ray.cluster_utils.Cluster does for extra nodes on one machine.
        include_log_monitor=False,  # type: ignore[arg-type]  # Ray's annotation says str
        # This node shares the head's session directory; its own runtime_env files keep the
        # head's working_dir safe when this node deletes a package it no longer uses.
        runtime_env_dir_name=f"runtime_resources_{secrets.token_hex(4)}",
        min_worker_port=0,
        max_worker_port=0,
    )
    # shutdown_at_exit: Ctrl-C, SIGTERM or exit stops this node's processes and no others.
    node = Node(params, head=False, shutdown_at_exit=True, spawn_reaper=True)
    if on_ready is not None:
        on_ready(node.node_id)
    while True:
        time.sleep(1)
        dead = [kind for kind, _ in node.dead_processes()]
        if dead:
            node.kill_all_processes(check_alive=False, allow_graceful=False)
            raise SweepError(f"this node's Ray processes exited ({', '.join(dead)}); see the head's logs")
