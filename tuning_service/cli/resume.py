"""`tuning-service resume`: continue a sweep whose driver was killed, crashed or stopped."""

from __future__ import annotations

from typing import Any

import click

from tuning_service.cli.database import database_options
from tuning_service.cli.run import format_option, show_sweep


@click.command()
@click.argument("sweep")
@database_options
@format_option
@click.pass_context
def resume(ctx: click.Context, sweep: str, db: str | None, storage: str, fmt: str) -> None:
    """Continue SWEEP (its id or a unique prefix) where its driver stopped.

    Finished trials are kept, unfinished ones continue from their last checkpoint, and
    the searcher and scheduler pick up where they were. The sweep runs with the options
    it was started with, on the same cluster address.
    """

    def start(sink: Any) -> Any:
        from tuning_service.sweeps.runner import resume_sweep

        return resume_sweep(sweep, db=db, storage=storage, progress=sink)

    show_sweep(start, quiet=bool((ctx.obj or {}).get("quiet")), fmt=fmt)
