"""`tuning-service run`: one sweep of a job, with a live view and a leaderboard at the end."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext, redirect_stdout
from typing import Any

import click
from rich.live import Live

from tuning_service.cli.options import parse_key_values
from tuning_service.errors import InputError, NotRecordedError
from tuning_service.results import best_config_record
from tuning_service.searchers import scheduler_help, searcher_help
from tuning_service.searchers.points import read_points_file
from tuning_service.spec import DEFAULT_JOB, DEFAULT_STORAGE, SweepSpec

# `run` and `resume` print the same thing at the end.
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Leaderboard table, or the best-config record as JSON on stdout.",
)

# What `runner.new_sweep_id` makes: YYYYmmdd-HHMMSS-hex.
SWEEP_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")
# A store status (kept here so `run --help` imports no SQLAlchemy).
FINISHED = "finished"


@click.command()
@click.argument("job", default=DEFAULT_JOB)
@click.option("--searcher", default=SweepSpec.searcher, show_default=True, help=searcher_help())
@click.option("--scheduler", help=scheduler_help())
@click.option(
    "--num-samples",
    type=int,
    default=SweepSpec.num_samples,
    show_default=True,
    help="Trials to run (grid runs each grid point once instead).",
)
@click.option("--max-epochs", type=int, help="Epoch budget per trial [default: the job's].")
@click.option("--cpus-per-trial", type=float, default=1.0, show_default=True)
@click.option(
    "--gpus-per-trial",
    type=float,
    default=0.0,
    show_default=True,
    help="Fractions share a GPU, e.g. 0.25 for four trials per GPU.",
)
@click.option(
    "--max-concurrent", type=int, help="Cap on trials running at once [default: as resources allow]."
)
@click.option(
    "--warm-start",
    type=click.Path(dir_okay=False),
    help="JSON/YAML list of configs (or a best-config export) to evaluate before searching.",
)
@click.option(
    "--cv-folds", type=int, help="Score each trial by k-fold cross-validation over train+validation."
)
@click.option(
    "--mlflow",
    metavar="URI",
    help="Also log every trial to this MLflow tracking URI (needs the mlflow extra).",
)
@click.option(
    "--epoch-budget", type=int, help="Stop the sweep once its trials have trained this many epochs in total."
)
@click.option("--time-budget", type=float, help="Stop the sweep after this many seconds.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--storage",
    default=DEFAULT_STORAGE,
    show_default=True,
    help="Results root; each sweep writes to STORAGE/JOB/SWEEP_ID.",
)
@click.option(
    "--address", help="Ray cluster: auto, HOST:PORT or ray://HOST:PORT [default: embedded local Ray]."
)
@click.option("--searcher-option", multiple=True, metavar="KEY=VALUE", help="Searcher option (repeatable).")
@click.option("--scheduler-option", multiple=True, metavar="KEY=VALUE", help="Scheduler option (repeatable).")
@click.option(
    "--checkpoint-frequency",
    type=int,
    help="Checkpoint every N epochs [default: 1 for hyperband, which pauses trials; pbt's perturbation_interval; "
    "else 5].",
)
@click.option(
    "--max-failures",
    type=int,
    default=SweepSpec.max_failures,
    show_default=True,
    help="Restarts of a trial whose worker process or node died, from its last checkpoint "
    "(errors raised by the model are recorded, not retried).",
)
@click.option("--data-limit", type=int, help="Use at most this many training rows (quick checks).")
@click.option(
    "--db",
    metavar="URL",
    help="Results database: sqlite:///PATH or postgresql://USER@HOST/DB "
    "[default: $TUNING_SERVICE_DB, else STORAGE/tuning.db].",
)
@click.option("--data-dir", type=click.Path(file_okay=False), help="Local dataset cache directory.")
@format_option
@click.pass_context
def run(
    ctx: click.Context,
    job: str,
    searcher: str,
    scheduler: str | None,
    num_samples: int,
    max_epochs: int | None,
    cpus_per_trial: float,
    gpus_per_trial: float,
    max_concurrent: int | None,
    time_budget: float | None,
    warm_start: str | None,
    cv_folds: int | None,
    mlflow: str | None,
    epoch_budget: int | None,
    seed: int,
    storage: str,
    address: str | None,
    searcher_option: tuple[str, ...],
    scheduler_option: tuple[str, ...],
    checkpoint_frequency: int | None,
    max_failures: int,
    data_limit: int | None,
    db: str | None,
    data_dir: str | None,
    fmt: str,
) -> None:
    """Run a hyperparameter sweep of JOB (default: digits) and write its best configuration."""
    from tuning_service.runner import prepare

    _refuse_sweep_id(job, db, storage)
    spec = SweepSpec(
        job=job,
        searcher=searcher,
        scheduler=scheduler,
        num_samples=num_samples,
        max_epochs=max_epochs,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
        max_concurrent=max_concurrent,
        time_budget_s=time_budget,
        epoch_budget=epoch_budget,
        mlflow=mlflow,
        cv_folds=cv_folds,
        points_to_evaluate=read_points_file(warm_start) if warm_start else (),
        seed=seed,
        storage=storage,
        address=address,
        searcher_options=parse_key_values("--searcher-option", searcher_option),
        scheduler_options=parse_key_values("--scheduler-option", scheduler_option),
        checkpoint_frequency=checkpoint_frequency,
        max_failures=max_failures,
        data_limit=data_limit,
        data_dir=data_dir,
        db=db,
    )
    prepared = prepare(spec)  # all input errors surface here, before Ray starts

    def start(sink: Any) -> Any:
        from tuning_service.runner import run_sweep

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
