"""`tuning-service lr-find`: the learning-rate range test for a job, printed and plotted."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tuning_service.cli.options import parse_key_values
from tuning_service.core.errors import InputError
from tuning_service.core.spec import DEFAULT_STORAGE, check_creatable


@click.command("lr-find")
@click.argument("job")
@click.option("--min-lr", type=float, default=1e-6, show_default=True, help="Rate of the first batch.")
@click.option("--max-lr", type=float, default=10.0, show_default=True, help="Rate of the last batch.")
@click.option("--batch-size", type=int, help="Batch size [default: the job's].")
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="Model setting for the test, e.g. --set layers=3 (repeatable) [default: middle of the space].",
)
@click.option("--data-limit", type=int, help="Use at most this many training rows.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Local dataset cache directory.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    help=f"PNG to write [default: {DEFAULT_STORAGE}/JOB/lr_find.png].",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def lr_find(
    job: str,
    min_lr: float,
    max_lr: float,
    batch_size: int | None,
    settings: tuple[str, ...],
    data_limit: int | None,
    data_dir: str | None,
    seed: int,
    output: str | None,
    fmt: str,
) -> None:
    """Grow JOB's learning rate exponentially over one epoch; print the suggested rate, plot loss vs rate."""
    from tuning_service.data.catalog import load_job

    overrides = parse_key_values("--set", settings)
    for flag, value in (("--batch-size", batch_size), ("--data-limit", data_limit)):
        if value is not None and value < 1:
            raise InputError(f"{flag} must be an integer >= 1, got {value}")
    if not (0 < min_lr < max_lr):
        raise InputError(f"need 0 < --min-lr < --max-lr, got --min-lr {min_lr:g} --max-lr {max_lr:g}")
    loaded = load_job(job)
    from tuning_service.training.models import check_config_keys

    check_config_keys(list(overrides), where="--set")
    path = Path(output) if output else Path(DEFAULT_STORAGE) / loaded.name / "lr_find.png"
    check_creatable(path.parent)
    dataset = loaded.load_data(limit=data_limit, data_dir=data_dir, seed=seed)

    from tuning_service.raytune.raysession import prepare_environment
    from tuning_service.sweeps.plots import plot_lr_find
    from tuning_service.training.lrfind import find_lr

    prepare_environment("none")  # quiet TensorFlow; no Ray is started
    result = find_lr(
        loaded, dataset, min_lr=min_lr, max_lr=max_lr, overrides=overrides, batch_size=batch_size, seed=seed
    )
    plot_lr_find(
        result.rates,
        result.losses,
        path,
        smoothed=result.smoothed,
        suggested=result.suggested,
        title=f"{loaded.name}: learning-rate range test",
    )
    if fmt == "json":
        record = {
            "job": loaded.name,
            "suggested_learning_rate": result.suggested,
            "min_loss_learning_rate": result.min_loss_rate,
            "batches": len(result.rates),
            "plot": str(path),
        }
        click.echo(json.dumps(record, indent=2))
        return
    click.echo(
        f"suggested learning rate: {result.suggested:.2g} "
        f"(loss lowest at {result.min_loss_rate:.2g}, over {len(result.rates)} batches)"
    )
    click.echo(f"plot: {path}")
