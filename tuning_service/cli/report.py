"""`tuning-service report`: a sweep (or all sweeps of a job) as one offline HTML page."""

from __future__ import annotations

from pathlib import Path

import click

from tuning_service.core.spec import DEFAULT_STORAGE


@click.command()
@click.argument("sweep", required=False)
@click.option("--job", help="Report all finished sweeps of this job together.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="HTML file [default: report.html in the sweep directory].",
)
@click.option(
    "--png",
    "png_dir",
    type=click.Path(file_okay=False),
    help="Also write every figure as PNG into this directory.",
)
@click.option(
    "--storage", default=DEFAULT_STORAGE, show_default=True, help="Results root to look sweeps up in."
)
def report(sweep: str | None, job: str | None, output: str | None, png_dir: str | None, storage: str) -> None:
    """Write an HTML report of SWEEP (an id or a sweep directory): summary, leaderboard and plots."""
    from tuning_service.core.errors import InputError
    from tuning_service.core.space import Space
    from tuning_service.core.sweepdirs import find_sweep, job_sweeps
    from tuning_service.sweeps.report import load, write_report

    if (sweep is None) == (job is None):
        raise click.UsageError("give a SWEEP id or --job JOB (one of the two)")
    dirs = [find_sweep(sweep, storage)] if sweep is not None else job_sweeps(str(job), storage)
    result, data = load(dirs)
    out = Path(output) if output else result.sweep_dir / "report.html"
    if out.exists() and out.is_dir():
        raise InputError(f"cannot write the report to {str(out)!r}: it is a directory")
    space = Space.from_dict(result.space) if result.space else None
    written = write_report(result, space, out, Path(png_dir) if png_dir else None, data)
    click.echo(str(written))
