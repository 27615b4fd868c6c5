"""`tuning-service submissions`: list, follow, stop and read sweeps submitted to a cluster."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import click
from rich.table import Table

from tuning_service.cli.render import stdout_console
from tuning_service.core import yamlio
from tuning_service.core.errors import SweepError


def _address(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--address",
        envvar="RAY_API_SERVER_ADDRESS",
        required=True,
        help="The cluster's Jobs API, http://HEAD:8265 [env: RAY_API_SERVER_ADDRESS].",
    )(f)


@click.group()
def submissions() -> None:
    """Sweeps submitted to a Ray cluster with `tuning-service submit`."""


def _when(seconds: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) if seconds else "-"


def _took(start: float | None, end: float | None) -> str:
    if not start:
        return "-"
    return f"{(end or time.time()) - start:.0f}s"


@submissions.command("list")
@_address
@click.option("--all", "everything", is_flag=True, help="Every Ray Job on the cluster, not only sweeps.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def list_(address: str, everything: bool, fmt: str) -> None:
    """List the cluster's submitted sweeps, oldest first."""
    from tuning_service.sweeps.submission import list_submissions

    found = list_submissions(address, everything=everything)
    if fmt == "json":
        click.echo(json.dumps([s.__dict__ for s in found], indent=2))
        return
    table = Table("submission", "status", "job", "started", "took", "message")
    for s in found:
        table.add_row(
            s.submission_id, s.status, s.job, _when(s.start_time), _took(s.start_time, s.end_time), s.message
        )
    stdout_console().print(table)


@submissions.command()
@_address
@click.argument("submission_id")
def status(address: str, submission_id: str) -> None:
    """Show one submission's status (PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED)."""
    from tuning_service.sweeps.submission import get_submission

    s = get_submission(address, submission_id)
    click.echo(f"{s.submission_id}: {s.status}" + (f" ({s.message})" if s.message else ""))


@submissions.command()
@_address
@click.argument("submission_id")
@click.option(
    "--follow", "-f", is_flag=True, help="Keep streaming until the sweep ends; exit 1 unless it succeeds."
)
def logs(address: str, submission_id: str, follow: bool) -> None:
    """Print a submission's logs (the sweep's progress lines and its best-config record)."""
    if follow:
        follow_to_end(address, submission_id)
        return
    from tuning_service.sweeps.submission import get_logs

    click.echo(get_logs(address, submission_id), nl=False)


def follow_to_end(address: str, submission_id: str) -> None:
    """Stream logs until the submission ends; a failed or stopped one exits 1."""
    from tuning_service.sweeps.submission import follow_logs

    final = follow_logs(address, submission_id, lambda chunk: click.echo(chunk, nl=False))
    if final.status != "SUCCEEDED":
        raise SweepError(
            f"submission {submission_id} {final.status}" + (f": {final.message}" if final.message else "")
        )
    click.echo(f"submission {submission_id} SUCCEEDED", err=True)


@submissions.command()
@_address
@click.argument("submission_id")
def stop(address: str, submission_id: str) -> None:
    """Stop a running submission (its trials stop; finished trials' results stay)."""
    from tuning_service.sweeps.submission import get_submission, stop_submission

    if stop_submission(address, submission_id):
        click.echo(f"stopping {submission_id}")
    else:
        click.echo(f"{submission_id} had already ended ({get_submission(address, submission_id).status})")


@submissions.command()
@_address
@click.argument("submission_id")
@click.option("--format", "fmt", type=click.Choice(["json", "yaml"]), default="json", show_default=True)
@click.option(
    "--db",
    metavar="URL",
    help="The results database the sweep recorded in (one the head shares, e.g. `submit --db`): "
    "the result is read from it [default: from the record at the end of the submission's logs].",
)
def result(address: str, submission_id: str, fmt: str, db: str | None) -> None:
    """Print the best configuration of a submission that succeeded."""
    from tuning_service.sweeps.submission import get_result

    record = get_result(address, submission_id, db=db)
    click.echo(json.dumps(record, indent=2) if fmt == "json" else yamlio.dumps(record), nl=fmt == "json")
