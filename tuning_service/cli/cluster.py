"""`tuning-service cluster`: list a cluster's nodes, or add a node on the head's own machine."""

from __future__ import annotations

import json
from dataclasses import asdict

import click
from rich.table import Table

from tuning_service.cli.render import stdout_console


@click.group()
def cluster() -> None:
    """Inspect a Ray cluster, or add a worker node on the head's machine (see cluster/ for real nodes)."""


@cluster.command()
@click.argument("address")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def nodes(address: str, fmt: str) -> None:
    """List the alive nodes of the cluster whose head is at ADDRESS (HOST:PORT)."""
    from tuning_service.raytune.cluster import list_nodes

    found = list_nodes(address)
    if fmt == "json":
        click.echo(json.dumps([asdict(n) for n in found], indent=2))
        return
    table = Table("node", "address", "CPUs", "GPUs", "role")
    for n in found:
        table.add_row(
            n.node_id[:12],
            n.address,
            f"{n.cpus:g}",
            f"{n.gpus:g}",
            "head" if n.head else "worker",
        )
    stdout_console().print(table)


@cluster.command()
@click.argument("address")
@click.option("--num-cpus", type=click.IntRange(min=0), help="CPUs this node offers [default: all].")
@click.option("--num-gpus", type=click.IntRange(min=0), help="GPUs this node offers [default: all].")
@click.option("--object-store-memory", type=click.IntRange(min=1), metavar="BYTES", help="Object store size.")
def join(address: str, num_cpus: int | None, num_gpus: int | None, object_store_memory: int | None) -> None:
    """Run a worker node for the head at 127.0.0.1:PORT until Ctrl-C (a second node on one machine).

    The cluster token comes from RAY_AUTH_TOKEN_PATH (or ~/.ray/auth_token), as for
    `ray start`; without the head's token the head refuses the node.
    """
    from tuning_service.raytune.cluster import join_local

    def ready(node_id: str) -> None:
        click.echo(f"node {node_id} joined {address}; Ctrl-C stops it", err=True)

    join_local(
        address,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        object_store_memory=object_store_memory,
        on_ready=ready,
    )
