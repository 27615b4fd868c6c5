"""`tuning-service compare`: two sweeps side by side."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from tuning_service.cli.database import database_options, fmt, fmt_duration, open_for_reading
from tuning_service.cli.render import stdout_console
from tuning_service.sweeps.aggregate import SweepSummary, summary_dict
from tuning_service.sweeps.aggregate import compare as compare_sweeps
from tuning_service.sweeps.front import Front, objectives_of, sweep_front


@click.command()
@click.argument("first")
@click.argument("second")
@click.option("--format", "fmt_", type=click.Choice(["table", "json"]), default="table", show_default=True)
@database_options
def compare(first: str, second: str, fmt_: str, db: str | None, storage: str) -> None:
    """Compare sweeps FIRST and SECOND: best metric, trials, epochs spent, time."""
    with open_for_reading(db, storage) as store:
        pair = compare_sweeps(store, first, second)
        fronts = [sweep_front(store, s.sweep) if objectives_of(s.sweep) else None for s in pair]
    if fmt_ == "json":
        click.echo(
            json.dumps(
                [
                    {**summary_dict(s), **({"pareto_front": f.records()} if f else {})}
                    for s, f in zip(pair, fronts, strict=True)
                ],
                indent=2,
                default=str,
            )
        )
        return
    stdout_console().print(_table(pair[0], pair[1], fronts))


def _better(a: SweepSummary, b: SweepSummary) -> int:
    """0 or 1: which sweep found the better value (-1: not comparable)."""
    if not (a.best and b.best) or a.sweep.metric != b.sweep.metric or a.best.value == b.best.value:
        return -1
    higher = a.best.value > b.best.value  # type: ignore[operator]
    return 0 if higher == (a.sweep.mode == "max") else 1


def _front_cells(front: Front | None) -> str:
    """A multi-objective sweep's front in a cell: its size and the pick's objective values."""
    if front is None:
        return "-"
    best = front.picked
    shown = ", ".join(f"{o.name} {fmt(best.values[o.name])}" for o in front.objectives) if best else "-"
    return f"{len(front.members)} trials; best by {front.objectives[0]}: {shown}"


def _table(a: SweepSummary, b: SweepSummary, fronts: list[Front | None] | None = None) -> Table:
    table = Table(title=f"{a.sweep.sweep_id} vs {b.sweep.sweep_id}")
    table.add_column("")
    table.add_column(a.sweep.sweep_id)
    table.add_column(b.sweep.sweep_id)
    winner = _better(a, b)

    def row(label: str, get: Any) -> None:
        table.add_row(label, get(a), get(b))

    row("job", lambda s: s.sweep.job)
    row("status", lambda s: s.sweep.status)
    row("searcher / scheduler", lambda s: f"{s.sweep.searcher} / {s.sweep.scheduler}")
    row("seed", lambda s: str(s.sweep.seed))
    row("metric", lambda s: f"{s.sweep.metric} ({s.sweep.mode})")
    table.add_row(
        "best",
        *(
            Text(fmt(s.best.value), style="bold green")
            if s.best and i == winner
            else fmt(s.best.value if s.best else None)
            for i, s in enumerate((a, b))
        ),
    )
    row("best trial / epoch", lambda s: f"{s.best.trial_id} / {s.best.best_epoch}" if s.best else "-")
    if fronts and any(fronts):
        table.add_row("objectives", *(", ".join(map(str, f.objectives)) if f else "-" for f in fronts))
        table.add_row("Pareto front", *(_front_cells(f) for f in fronts))
    row("trials", lambda s: s.tally)
    row("epochs spent", lambda s: str(s.epochs))
    row("wall time", lambda s: fmt_duration(s.sweep.wall_time_s))
    row("started", lambda s: f"{s.sweep.started_at:%Y-%m-%d %H:%M:%S} UTC")
    row("test (refit)", lambda s: f"{s.refit.test_metric} {fmt(s.refit.test_value)}" if s.refit else "-")
    keys: list[str] = []
    for s in (a, b):
        keys += [k for k in (s.best.config if s.best else {}) if k not in keys]
    for key in keys:
        row(f"  {key}", lambda s, key=key: fmt(s.best.config.get(key, "-")) if s.best else "-")
    return table
