"""`tuning-service refit`: retrain a sweep's (or a job's) best config on train + validation, score it on test."""

from __future__ import annotations

import json

import click

from tuning_service.cli.database import database_options, fmt, fmt_duration, open_for_reading


@click.command()
@click.argument("sweep", required=False)
@click.option("--job", help="Refit the best config of this job across all its sweeps.")
@click.option(
    "-o",
    "--output",
    metavar="PATH.keras",
    help="Where to save the model [default: SWEEP_DIR/best_model.keras].",
)
@click.option("--format", "fmt_", type=click.Choice(["table", "json"]), default="table", show_default=True)
@database_options
def refit(
    sweep: str | None, job: str | None, output: str | None, fmt_: str, db: str | None, storage: str
) -> None:
    """Retrain the best config of SWEEP (or of --job) for its best epoch count, evaluate on the test split,
    save the model and record the test metrics."""
    from tuning_service.sweeps.refit import refit as run_refit

    if (sweep is None) == (job is None):
        raise click.UsageError("give a SWEEP or --job JOB (one of them)")
    with open_for_reading(db, storage) as store:
        outcome = run_refit(store, sweep=sweep, job=job, output=output, storage=storage)
    if fmt_ == "json":
        data = {k: str(v) if k == "model_path" else v for k, v in outcome.__dict__.items()}
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(
        f"refit {outcome.job} sweep {outcome.sweep_id} trial {outcome.trial_id}: "
        f"{outcome.epochs} epochs on {outcome.train_rows} rows (train + validation) in {fmt_duration(outcome.duration_s)}"
    )
    click.echo(f"{outcome.metric} during the sweep: {fmt(outcome.value)}")
    click.echo(f"{outcome.test_metric} on {outcome.test_rows} held-out rows: {fmt(outcome.test_value)}")
    others = ", ".join(f"{k} {fmt(v)}" for k, v in outcome.test_metrics.items() if k != outcome.test_metric)
    if others:
        click.echo(f"also: {others}")
    click.echo(f"model: {outcome.model_path}")
