"""`tuning-service dashboard`: a read-only live web view of the results database."""

from __future__ import annotations

import threading
from pathlib import Path

import click

from tuning_service.cli.database import database_options


@click.command()
@database_options
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; beyond loopback a token is required.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port to listen on (0: any free one).",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False),
    help="The token asked for when --host is not loopback (made, mode 0600, when missing) "
    "[default: ~/.config/tuning-service/dashboard_token].",
)
@click.option(
    "--require-token",
    is_flag=True,
    help="Ask for the token on loopback too (a machine other people log in to can reach 127.0.0.1).",
)
@click.option(
    "--schedule",
    "schedule_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A schedule file whose sweeps' next runs the schedules page shows (repeatable; re-read at each view).",
)
def dashboard(
    db: str | None,
    storage: str,
    host: str,
    port: int,
    token_file: str | None,
    require_token: bool,
    schedule_files: tuple[str, ...],
) -> None:
    """Serve sweeps, jobs, schedules and comparisons from the results database, live, read-only."""
    from tuning_service.dashboard import create_app, open_read_only
    from tuning_service.dashboard.auth import default_token_path, is_loopback, load_or_create_token
    from tuning_service.dashboard.figures import warm_up
    from tuning_service.dashboard.server import bind, serve
    from tuning_service.sweeps.nightly.schedulefile import load_schedule

    for schedule_file in schedule_files:  # a bad file is one line and exit 2, before anything is served
        load_schedule(schedule_file, check_jobs=False)
    store = open_read_only(db, storage)
    try:
        token, note = None, "loopback only, no token asked"
        if require_token or not is_loopback(host):
            path = Path(token_file).expanduser() if token_file else default_token_path()
            token = load_or_create_token(path)
            where = "on loopback, as asked" if is_loopback(host) else "beyond loopback"
            note = (
                f"listening {where}: every request needs the token in {path} "
                "(header `Authorization: Bearer TOKEN`, or log in at /login)"
            )
        sock = bind(host, port)
        shown_host = f"[{host.strip('[]')}]" if ":" in host else host
        url = f"http://{shown_host}:{sock.getsockname()[1]}/"
        app = create_app(store, token=token, schedule_files=[Path(f).absolute() for f in schedule_files])

        def started() -> None:
            click.echo(f"dashboard of {store.display_url} at {url} ({note})", err=True)
            threading.Thread(target=warm_up, name="dashboard-warm-up", daemon=True).start()

        serve(app, sock, on_start=started)
    finally:
        store.close()
