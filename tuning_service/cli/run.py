"""`tuning-service run`: one sweep of a job, with a live view and a leaderboard at the end."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext, redirect_stdout
from typing import Any

import click
from rich.live import Live

from tuning_service.cli.options import spec_of_options, sweep_options
from tuning_service.core.errors import InputError, NotRecordedError
from tuning_service.core.results import best_config_record
from tuning_service.core.spec import DEFAULT_JOB, SWEEP_ID

# `run` and `resume` print the same thing at the end.
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Leaderboard table, or the best-config record as JSON on stdout.",
)

# A store status (kept here so `run --help` imports no SQLAlchemy).
FINISHED = "finished"


@click.command()
@click.argument("job", default=DEFAULT_JOB)
@sweep_options
@format_option
@click.pass_context
def run(ctx: click.Context, job: str, fmt: str, **values: Any) -> None:
    """Run a hyperparameter sweep of JOB (default: digits) and write its best configuration."""
    from tuning_service.sweeps.runner import prepare

    _refuse_sweep_id(job, values["db"], values["storage"])
    spec = spec_of_options(values, job=job)
    prepared = prepare(spec)  # all input errors surface here, before Ray starts

    def start(sink: Any) -> Any:
        from tuning_service.sweeps.runner import run_sweep

        return run_sweep(prepared.spec, job=prepared.job, progress=sink)

    show_sweep(start, quiet=bool((ctx.obj or {}).get("quiet")), fmt=fmt)


def _refuse_sweep_id(job: str, db: str | None, storage: str) -> None:
    """`run SWEEP_ID` is a user wanting an interrupted sweep back: point them at `resume`."""
    if not SWEEP_ID.fullmatch(job):
        return
    from tuning_service.store import open_store

    try:
        with open_store(db, storage=storage, must_exist=True) as store:
            row = store.find_sweep(job)
    except InputError:
        raise InputError(f"{job!r} is a sweep id, not a job; `tuning-service jobs` lists the jobs") from None
    if row.status == FINISHED:
        raise InputError(
            f"sweep {row.sweep_id} finished already; run its job with `tuning-service run {row.job}`"
        )
    raise InputError(
        f"sweep {row.sweep_id} ({row.job}) is {row.status}; continue it with "
        f"`tuning-service resume {row.sweep_id}`"
    )


def show_sweep(start: Callable[[Any], Any], *, quiet: bool, fmt: str) -> None:
    """Run ``start(progress_sink)``, with a live view, then print the leaderboard or the best config."""
    # Ray prints some cluster events ("(raylet) ...") on the driver's stdout; with --format
    # json, stdout must hold the JSON document alone.
    unrecorded = None
    with redirect_stdout(sys.stderr) if fmt == "json" else nullcontext():
        try:
            result = _with_progress(start, quiet=quiet)
        except NotRecordedError as exc:  # the sweep ran and its files are written: show it, then fail
            result, unrecorded = exc.result, exc
    _show_result(result, fmt)
    if unrecorded is not None:
        raise unrecorded


def _show_result(result: Any, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(best_config_record(result), indent=2, default=str))
    else:
        from tuning_service.cli.render import print_summary, stdout_console

        print_summary(stdout_console(), result)


def _with_progress(start: Callable[[Any], Any], *, quiet: bool) -> Any:
    """A live view on a terminal, or a line per finished trial otherwise."""
    from tuning_service.cli.render import console_for, snapshot_line, snapshot_view

    console = console_for(stderr=True)
    live = (
        Live(console=console, refresh_per_second=2, transient=False)
        if console.is_terminal and not quiet
        else None
    )
    last = {"finished": -1, "at": 0.0}

    def sink(snapshot: Any) -> None:
        if live is not None:
            live.update(snapshot_view(snapshot))
        elif not quiet and (snapshot.finished != last["finished"] or time.monotonic() - last["at"] > 30):
            last["finished"], last["at"] = snapshot.finished, time.monotonic()
            console.print(snapshot_line(snapshot), highlight=False)

    with live if live is not None else nullcontext():
        return start(sink)
