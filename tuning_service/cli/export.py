"""`tuning-service export`: the best config per job across all sweeps, as the file training reads."""

from __future__ import annotations

import click

from tuning_service.aggregate import FORMATS, best_configs, check_writable, render_export, write_export
from tuning_service.cli.database import check_top, database_options, open_for_reading


@click.command()
@click.option("--job", help="Only this job [default: every recorded job].")
@click.option("--top", type=int, default=1, show_default=True, help="Configs per job, best first.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="json", show_default=True)
@click.option("-o", "--output", metavar="FILE", help="Write here (atomically) instead of stdout.")
@database_options
def export(job: str | None, top: int, fmt: str, output: str | None, db: str | None, storage: str) -> None:
    """Export the best config of each job (or the top K) with metric, sweep, date and versions."""
    check_top(top)
    if output is not None:
        check_writable(output)  # before reading anything: a bad path fails fast
    with open_for_reading(db, storage) as store:
        records = best_configs(store, job=job, top=top)
        text = render_export(records, fmt, database=store.display_url)
    if output is None:
        click.echo(text, nl=False)
        return
    write_export(text, output)
    click.echo(f"wrote {len(records)} config{'s' * (len(records) != 1)} to {output}", err=True)
