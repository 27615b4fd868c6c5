"""`tuning-service workers`: list the worker fork servers kept for the next sweep, or stop them."""

from __future__ import annotations

import json

import click
from rich.table import Table

from tuning_service.cli.render import stdout_console
from tuning_service.raytune.workerkeep import KEEP_ENV, kept_servers, stop_kept


@click.command()
@click.option(
    "--stop", is_flag=True, help="Stop them (their memory is freed; the next sweep starts its own)."
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def workers(stop: bool, fmt: str) -> None:
    """List this user's worker fork servers kept for the next sweep (TUNING_SERVICE_WORKERS_KEEP_S)."""
    servers = kept_servers()
    stopped = {server.pid: stop_kept(server) for server in servers} if stop else {}
    if fmt == "json":
        listed = [
            {
                "pid": s.pid,
                "directory": s.directory,
                "memory_mib": None if s.memory_mib is None else round(s.memory_mib, 1),
                "age_s": None if s.age_s is None else round(s.age_s, 1),
                **({"stopped": stopped[s.pid]} if stop else {}),
            }
            for s in servers
        ]
        click.echo(json.dumps(listed, indent=2))
        return
    console = stdout_console()
    if not servers:
        console.print(
            f"no worker fork server is kept (each sweep keeps its own for {KEEP_ENV} seconds after it)"
        )
        return
    table = Table("pid", "serves sweeps started in", "memory (MiB)", "up (s)", *(["stopped"] if stop else []))
    for s in servers:
        row = [str(s.pid), s.directory or "-", _number(s.memory_mib), _number(s.age_s)]
        table.add_row(*row, *(["yes" if stopped[s.pid] else "no (still ending)"] if stop else []))
    console.print(table)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
