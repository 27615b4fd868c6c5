"""`tuning-service export`: the best config per job across all sweeps, as the file training reads."""

from __future__ import annotations

from typing import Any

import click

from tuning_service.cli.database import check_top, database_options, open_for_reading
from tuning_service.core.errors import InputError
from tuning_service.sweeps.aggregate import FORMATS, best_configs, check_writable, render_export, write_export


@click.command()
@click.option("--job", help="Only this job [default: every recorded job].")
@click.option("--top", type=int, default=1, show_default=True, help="Configs per job, best first.")
@click.option(
    "--sweep",
    help="A multi-objective sweep (id or unique prefix): export its Pareto front, each member with its "
    "objective values.",
)
@click.option(
    "--pick",
    metavar="RULE",
    help="With --sweep: export only the front member this rule picks, e.g. "
    "'val_accuracy:max where params<=100000' [default rule: the first objective's best].",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="json", show_default=True)
@click.option("-o", "--output", metavar="FILE", help="Write here (atomically) instead of stdout.")
@database_options
def export(
    job: str | None,
    top: int,
    sweep: str | None,
    pick: str | None,
    fmt: str,
    output: str | None,
    db: str | None,
    storage: str,
) -> None:
    """Export the best config of each job (or the top K) with metric, sweep, date and versions;
    or a multi-objective sweep's Pareto front (--sweep), or the member a rule picks (--pick)."""
    check_top(top)
    if pick is not None and sweep is None:
        raise InputError("--pick chooses among a sweep's Pareto front: give the sweep with --sweep ID")
    if output is not None:
        check_writable(output)  # before reading anything: a bad path fails fast
    with open_for_reading(db, storage) as store:
        records = _front_records(store, sweep, job, pick) if sweep else best_configs(store, job=job, top=top)
        text = render_export(records, fmt, database=store.display_url)
    if output is None:
        click.echo(text, nl=False)
        return
    write_export(text, output)
    click.echo(f"wrote {len(records)} config{'s' * (len(records) != 1)} to {output}", err=True)


def _front_records(store: Any, ref: str, job: str | None, rule: str | None) -> list[dict[str, Any]]:
    """The sweep's Pareto front as export records, or the one member ``rule`` picks."""
    from tuning_service.sweeps.front import sweep_front

    row = store.find_sweep(ref)
    if job is not None and row.job != job:
        raise InputError(f"sweep {row.sweep_id} is a sweep of job {row.job!r}, not {job!r}")
    front = sweep_front(store, row, rule)
    if not front.members:
        raise InputError(f"sweep {row.sweep_id} has no finished feasible trial with every objective recorded")
    if rule is None:
        return front.records()
    picked = [r for r in front.records() if r["picked"]]
    if not picked:
        raise InputError(f"--pick {rule!r}: no member of sweep {row.sweep_id}'s Pareto front meets it")
    return picked
