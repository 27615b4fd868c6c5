"""`tuning-service schedule`: check, list and run the nightly sweeps of a schedule file."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime
from typing import Any

import click
from rich.table import Table

from tuning_service.cli.render import stdout_console
from tuning_service.core.errors import SweepError

_FILE = click.argument("file", type=click.Path(dir_okay=False))


@click.group()
def schedule() -> None:
    """Nightly sweeps: named sweeps in a YAML file, run on their cron times, warm-started from earlier runs."""


@schedule.command()
@_FILE
def validate(file: str) -> None:
    """Check FILE: keys, types, cron times, time zones, jobs, searchers, databases (exit 2 on a problem)."""
    from tuning_service.sweeps.nightly.schedulefile import load_schedule

    loaded = load_schedule(file)
    for sweep in loaded.sweeps:
        click.echo(
            f"{sweep.name}: job {sweep.job_name}, {sweep.cron_text} ({sweep.time_zone}), target {sweep.target}"
        )
    click.echo(f"{file}: {len(loaded.sweeps)} sweep{'s' * (len(loaded.sweeps) != 1)}, all valid")


@schedule.command(name="list")
@_FILE
@click.option(
    "--count", type=click.IntRange(1, 100), default=3, show_default=True, help="Next run times per sweep."
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def list_(file: str, count: int, fmt: str) -> None:
    """The sweeps of FILE with their next run times and their last recorded run."""
    from tuning_service.sweeps.nightly import cron
    from tuning_service.sweeps.nightly.history import runs
    from tuning_service.sweeps.nightly.schedulefile import load_schedule
    from tuning_service.sweeps.nightly.service import due_time, open_history

    loaded = load_schedule(file)
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for sweep in loaded.sweeps:
        last, due = None, cron.latest_fire(sweep.trigger(), now)
        if _has_history(sweep):
            with open_history(sweep) as store:
                last = next(iter(runs(store, sweep.name)), None)
                due = due_time(store, sweep, now)
        rows.append(
            {
                "sweep": sweep.name,
                "job": sweep.job_name,
                "cron": sweep.cron_text,
                "time_zone": sweep.time_zone,
                "target": sweep.target,
                "due_now": due.isoformat() if due else None,
                "next": [t.isoformat() for t in cron.next_fires(sweep.trigger(), now, count)],
                "last_run": None
                if last is None
                else {
                    "scheduled_for": last.scheduled_for.isoformat(),
                    "status": last.status,
                    "best_value": last.best_value,
                    "change": (last.change or {}).get("change"),
                },
            }
        )
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("sweep", "job", "cron", "next runs", "last run")
    for row in rows:
        last = row["last_run"]
        table.add_row(
            row["sweep"],
            row["job"],
            f"{row['cron']} ({row['time_zone']})",
            ("due now\n" if row["due_now"] else "")
            + "\n".join(t[:19].replace("T", " ") for t in row["next"]),
            "never"
            if last is None
            else f"{last['scheduled_for'][:19].replace('T', ' ')} UTC {last['status']}"
            + (f" {last['best_value']:.4f}" if last["best_value"] is not None else "")
            + (f" ({last['change']})" if last["change"] else ""),
        )
    stdout_console().print(table)


@schedule.command()
@_FILE
def run(file: str) -> None:
    """Run the scheduler for FILE until stopped: each sweep starts on its cron time.

    At start-up, a sweep whose cron time passed since its last recorded run runs once
    (runs missed while the scheduler was down are coalesced). Stopping waits for a
    running sweep; a killed scheduler's locks expire.
    """
    from tuning_service.sweeps.nightly.schedulefile import load_schedule
    from tuning_service.sweeps.nightly.scheduler import build_scheduler

    loaded = load_schedule(file)  # every problem is reported here, before anything is scheduled
    scheduler = build_scheduler(loaded, blocking=True, on_report=_echo)
    signal.signal(signal.SIGTERM, _interrupt)  # systemd and Kubernetes stop with SIGTERM
    click.echo(f"scheduling {len(loaded.sweeps)} sweep(s) from {file}; Ctrl-C stops", err=True)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        scheduler.shutdown(wait=False)
        raise


@schedule.command(name="run-due")
@_FILE
def run_due(file: str) -> None:
    """Run, once, every sweep of FILE whose cron time passed since its last run; for cron, systemd, Kubernetes.

    Exit code 0 when every due sweep finished (or was skipped: still running elsewhere),
    1 when one failed.
    """
    from tuning_service.sweeps.nightly import service
    from tuning_service.sweeps.nightly.schedulefile import load_schedule

    loaded = load_schedule(file)
    reports = service.run_due(loaded, on_report=_echo)
    if not reports:
        click.echo("nothing due", err=True)
    failed = [r.name for r in reports if r.status == "failed"]
    if failed:
        raise SweepError(f"{len(failed)} scheduled run(s) failed: {', '.join(failed)}")


def _has_history(sweep: Any) -> bool:
    """Whether the sweep's database exists (listing never creates one)."""
    from tuning_service.core.errors import InputError
    from tuning_service.store import open_store

    try:
        open_store(sweep.spec.db, storage=sweep.storage, must_exist=True).close()
    except InputError:
        return False
    return True


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _echo(report: Any) -> None:
    click.echo(report.line())
