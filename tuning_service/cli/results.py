"""`tuning-service results`: leaderboards of recorded trials across sweeps, and the sweeps themselves."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from tuning_service.cli.database import (
    check_top,
    database_options,
    fmt,
    fmt_duration,
    open_for_reading,
)
from tuning_service.cli.render import stdout_console
from tuning_service.core.errors import InputError
from tuning_service.core.lineage import HEADER, exploit_dict
from tuning_service.core.lineage import rows as lineage_rows
from tuning_service.store import Store, SweepRow, TrialRow
from tuning_service.sweeps.aggregate import (
    SweepSummary,
    config_record,
    rank_trials,
    summarize,
    summary_dict,
    top_trials,
    trial_dict,
)
from tuning_service.sweeps.front import Front, objectives_of, sweep_front


@click.command()
@click.option("--job", help="Only this job's sweeps.")
@click.option("--sweep", help="Only this sweep (its id or a unique prefix): every trial, any outcome.")
@click.option("--top", type=int, default=10, show_default=True, help="Trials per leaderboard.")
@click.option("--format", "fmt_", type=click.Choice(["table", "json"]), default="table", show_default=True)
@database_options
def results(job: str | None, sweep: str | None, top: int, fmt_: str, db: str | None, storage: str) -> None:
    """Leaderboards of the best trials per job across recorded sweeps, then the sweeps."""
    check_top(top)
    with open_for_reading(db, storage) as store:
        if sweep is not None:
            _one_sweep(store, sweep, job, top, fmt_)
        else:
            _across_sweeps(store, job, top, fmt_)


def _one_sweep(store: Store, ref: str, job: str | None, top: int, fmt_: str) -> None:
    row = store.find_sweep(ref)
    if job is not None and row.job != job:
        raise InputError(f"sweep {row.sweep_id} is a sweep of job {row.job!r}, not {job!r}")
    summary = summarize(store, [row])[0]
    trials = rank_trials(store.trials([row.sweep_id]), row.mode)[:top]
    exploits = [exploit_dict(x) for x in store.exploits(row.sweep_id)]
    front = sweep_front(store, row) if objectives_of(row) else None
    if fmt_ == "json":
        data = {"sweep": summary_dict(summary), "trials": [trial_dict(t) for t in trials]}
        if front is not None:
            data["pareto_front"] = front.records()
        click.echo(json.dumps({**data, **({"lineage": exploits} if exploits else {})}, indent=2, default=str))
        return
    console = stdout_console()
    console.print(
        _trials_table(f"{row.job} - sweep {row.sweep_id}", row, [(t, row) for t in trials], sweep_col=False)
    )
    if exploits:
        console.print(_lineage_table(row, exploits))
    if front is not None:
        console.print(front_table(front))
    console.print(_sweeps_table([summary]))
    if row.message:
        console.print(f"{row.status}: {row.message}", highlight=False)


def _across_sweeps(store: Store, job: str | None, top: int, fmt_: str) -> None:
    if job is not None:
        store.check_job(job)
    jobs = [job] if job is not None else store.jobs()
    summaries = summarize(store, store.sweeps(job=job))
    boards = {name: top_trials(store, name, top) for name in jobs}
    if fmt_ == "json":
        data = {
            "leaderboards": {
                name: [config_record(t, s, rank=i, refit=None) for i, (t, s) in enumerate(rows, 1)]
                for name, rows in boards.items()
            },
            "sweeps": [summary_dict(s) for s in summaries],
        }
        click.echo(json.dumps(data, indent=2, default=str))
        return
    console = stdout_console()
    if not summaries:
        console.print(f"no sweep recorded in {store.display_url}", highlight=False)
        return
    for name, rows in boards.items():
        count = sum(s.trials for s in summaries if s.sweep.job == name)
        sweeps = sum(1 for s in summaries if s.sweep.job == name)
        title = f"{name} - top {len(rows)} of {count} trials across {sweeps} sweep{'s' * (sweeps != 1)}"
        if rows:
            console.print(_trials_table(title, rows[0][1], rows, sweep_col=True))
        else:
            console.print(f"{name}: no finished trial with a valid metric yet", highlight=False)
    console.print(_sweeps_table(summaries))


def _trials_table(
    title: str, ref: SweepRow, rows: list[tuple[TrialRow, SweepRow]], *, sweep_col: bool
) -> Table:
    keys: list[str] = []
    for trial, _ in rows:
        keys += [k for k in trial.config if k not in keys]
    table = Table(title=title)
    columns = [
        "#",
        *(["sweep"] if sweep_col else []),
        "trial",
        f"{ref.metric} ({ref.mode})",
        "epoch",
        "epochs",
    ]
    for col in [*columns, "status", "node", *keys]:
        right = col in ("#", "epoch", "epochs") or col.startswith(ref.metric)
        table.add_column(col, justify="right" if right else "left", overflow="fold")
    for rank, (t, s) in enumerate(rows, 1):
        status = t.status if not t.message else f"{t.status}: {t.message[:60]}"
        table.add_row(
            str(rank),
            *([s.sweep_id] if sweep_col else []),
            t.trial_id,
            fmt(t.value),
            fmt(t.best_epoch),
            str(t.epochs),
            status,
            t.node_ip or t.hostname or "-",
            *(fmt(t.config.get(k, "")) for k in keys),
        )
    return table


def front_table(front: Front) -> Table:
    """A multi-objective sweep's Pareto front, best first by the first objective; * marks the pick."""
    constraints = front.sweep.spec.get("constraints") or []
    title = (
        f"Pareto front: {len(front.members)} trials over {', '.join(map(str, front.objectives))}"
        + (f" (feasible under {', '.join(constraints)})" if constraints else "")
        + f"; * = {front.pick}"
    )
    table = Table(title=title)
    keys: list[str] = []
    for c in front.members:
        keys += [k for k in c.item.config if k not in keys]
    for col in ["#", "trial", *(str(o) for o in front.objectives), "epoch", "status", *keys]:
        table.add_column(col, justify="right" if col == "#" or ":" in col else "left", overflow="fold")
    for rank, c in enumerate(front.members, 1):
        table.add_row(
            f"{rank}{'*' if c is front.picked else ''}",
            c.trial_id,
            *(fmt(c.values[o.name]) for o in front.objectives),
            fmt(c.item.best_epoch),
            c.item.status,
            *(fmt(c.item.config.get(k, "")) for k in keys),
        )
    return table


def _lineage_table(ref: SweepRow, exploits: list[dict[str, Any]]) -> Table:
    """PBT's exploits, in order: which trial copied which, at which epoch, what changed."""
    table = Table(title=f"lineage: {len(exploits)} exploits (a trial took over a better one's checkpoint)")
    for col in HEADER:
        title = col.replace("value", ref.metric)
        table.add_column(
            title, justify="right" if "epoch" in col or "value" in col else "left", overflow="fold"
        )
    for cells in lineage_rows(exploits):
        table.add_row(*(fmt(c) for c in cells))
    return table


def _sweeps_table(summaries: list[SweepSummary]) -> Table:
    table = Table(title="sweeps")
    for col in (
        "sweep",
        "job",
        "status",
        "searcher",
        "scheduler",
        "trials",
        "epochs",
        "best",
        "test",
        "started",
        "time",
    ):
        table.add_column(
            col, justify="right" if col in ("trials", "epochs", "best", "test", "time") else "left"
        )
    for s in summaries:
        test = f"{s.refit.test_metric} {fmt(s.refit.test_value)}" if s.refit else "-"
        table.add_row(
            s.sweep.sweep_id,
            s.sweep.job,
            s.sweep.status,
            s.sweep.searcher,
            s.sweep.scheduler,
            s.tally,
            str(s.epochs),
            fmt(s.best.value) if s.best else "-",
            test,
            f"{s.sweep.started_at:%Y-%m-%d %H:%M}",
            fmt_duration(s.sweep.wall_time_s),
        )
    return table
