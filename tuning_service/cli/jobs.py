"""`tuning-service jobs`: list the built-in jobs, or show one job's search space."""

from __future__ import annotations

import importlib
import json

import click
from rich.table import Table
from rich.text import Text

from tuning_service.cli.render import stdout_console
from tuning_service.core import yamlio
from tuning_service.data.catalog import builtin_jobs, load_job


@click.command()
@click.argument("job", required=False)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "yaml", "json"]), default="table", show_default=True
)
def jobs(job: str | None, fmt: str) -> None:
    """List built-in jobs, or show JOB's metric and search space."""
    console = stdout_console()
    if job is None:
        registry = builtin_jobs()
        loaded = [load_job(name) for name in registry.names()]
        if fmt != "table":
            listed = [
                {
                    "name": j.name,
                    "description": j.description,
                    "metric": j.metric,
                    "mode": j.mode,
                    "max_epochs": j.max_epochs,
                }
                for j in loaded
            ]
            click.echo(json.dumps(listed, indent=2) if fmt == "json" else yamlio.dumps(listed))
            return
        table = Table("job", "metric", "max epochs", "parameters", "description")
        for j in loaded:
            table.add_row(
                j.name, f"{j.metric} ({j.mode})", str(j.max_epochs), str(len(j.space)), j.description
            )
        console.print(table)
        console.print(_searchers_table())
        return
    j = load_job(job)
    data = {
        "name": j.name,
        "description": j.description,
        "metric": j.metric,
        "mode": j.mode,
        "max_epochs": j.max_epochs,
        "defaults": dict(j.defaults),
        "space": j.space.to_dict(),
    }
    if fmt != "table":
        click.echo(json.dumps(data, indent=2) if fmt == "json" else yamlio.dumps(data))
        return
    console.print(Text.assemble((j.name, "bold"), f": {j.description}"))
    console.print(f"metric {j.metric} ({j.mode}), up to {j.max_epochs} epochs")
    table = Table("parameter", "type", "values / range", "only when")
    for name, param in j.space.items():
        fields = {k: v for k, v in param.to_dict().items() if k not in ("type", "when")}
        when = ", ".join(f"{k} in {list(v)}" for k, v in param.when.items())
        table.add_row(name, param.kind, " ".join(f"{k}={v}" for k, v in fields.items()), when)
    console.print(table)
    if j.defaults:
        console.print("fixed: " + ", ".join(f"{k}={v}" for k, v in j.defaults.items()))


def _searchers_table() -> Table:
    """Every searcher a job can run with, what it is, and the install extra it needs (if any)."""
    from tuning_service.raytune.searchers import PAIRED_SCHEDULER, SEARCHERS

    table = Table("searcher", "method", "needs")
    for name in SEARCHERS.names():
        module = importlib.import_module(SEARCHERS.module_of(name))  # Ray and Optuna load only in build()
        needs = []
        extra = SEARCHERS.extra(name)
        if extra is not None:
            missing = extra.missing()
            needs.append(
                extra.pip + (f" ({', '.join(missing)} not installed)" if missing else " (installed)")
            )
        if name in PAIRED_SCHEDULER:
            needs.append(f"--scheduler {PAIRED_SCHEDULER[name]}")
        table.add_row(name, (module.__doc__ or "").strip().splitlines()[0], "; ".join(needs))
    return table
