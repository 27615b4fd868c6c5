"""The `tuning-service` command: a group of subcommands, one module each."""

from __future__ import annotations

import importlib
import logging
import sys

import click

from tuning_service.core.errors import TuningServiceError
from tuning_service.core.heapfreeze import frozen_at_exit
from tuning_service.raytune.lazydata import defer_pandas, defer_ray_data

# Subcommand name -> "module:attribute". Add a command with one line here; its module
# is imported only when the command runs (or for --help), so start-up stays fast.
COMMANDS: dict[str, str] = {
    "run": "tuning_service.cli.run:run",
    "resume": "tuning_service.cli.resume:resume",
    "jobs": "tuning_service.cli.jobs:jobs",
    "report": "tuning_service.cli.report:report",
    "results": "tuning_service.cli.results:results",
    "export": "tuning_service.cli.export:export",
    "compare": "tuning_service.cli.compare:compare",
    "refit": "tuning_service.cli.refit:refit",
    "cluster": "tuning_service.cli.cluster:cluster",
    "submit": "tuning_service.cli.submit:submit",
    "submissions": "tuning_service.cli.submissions:submissions",
    "lr-find": "tuning_service.cli.lr_find:lr_find",
    "schedule": "tuning_service.cli.schedule:schedule",
    "dashboard": "tuning_service.cli.dashboard:dashboard",
    "workers": "tuning_service.cli.workers:workers",
}


class LazyGroup(click.Group):
    """A click group whose subcommands come from `COMMANDS`, imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command


@click.group(
    cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.option("-v", "--verbose", count=True, help="More log detail on stderr (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr; no live progress view.")
@click.option(
    "--log-file", type=click.Path(dir_okay=False), help="Also write logs to this file, each line timestamped."
)
@click.version_option(package_name="tuning-service")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, log_file: str | None) -> None:
    """Distributed hyperparameter search for Keras models on Ray Tune."""
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    console = logging.StreamHandler(sys.stderr)
    handlers: list[logging.Handler] = [console]
    if log_file:
        try:
            handlers.append(logging.FileHandler(log_file))
        except OSError as exc:  # a missing folder, a name too long, no permission
            raise click.UsageError(
                f"--log-file {log_file!r} cannot be written: {exc.strerror or exc}"
            ) from None
        # A log file is read later: each line says when it happened.
        stamped = OneLineFormatter("%(asctime)s | " + LOG_FORMAT)
        stamped.default_msec_format = "%s.%03d"
        handlers[-1].setFormatter(stamped)
    logging.basicConfig(level=level, handlers=handlers, format=LOG_FORMAT, force=True)
    if not sys.stderr.isatty():
        console.setFormatter(OneLineFormatter(LOG_FORMAT))
    ctx.obj = {"quiet": quiet}


LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


class OneLineFormatter(logging.Formatter):
    """One line per event for cron, journald and log files: a traceback's lines are joined with " | "."""

    def format(self, record: logging.LogRecord) -> str:
        return " | ".join(line for line in super().format(record).splitlines() if line.strip())


# click >= 8.2 raises this for a bare `tuning-service`; older releases print help themselves.
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def printable(message: str) -> str:
    """``message`` with every control character but its own line breaks written as an escape.

    User text reaches messages (a key, a sweep name, a path): a carriage return or a
    record separator in it would split one error line into several for a terminal, a log
    or `str.splitlines`.
    """
    return "".join(
        c if c == "\n" or c.isprintable() else c.encode("unicode_escape").decode() for c in message
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point: one line on stderr and exit code 2 for bad input, never a traceback.

    The logging set up for the command is undone when it returns, so a caller in the same
    process (a test, a notebook) keeps its own handlers, not ones writing to a stream gone since.
    """
    # A sweep's driver imports Tune on the start-up's critical path; it reads its trials'
    # results as rows (`raytune.resultrows`), so pandas loads only for a job's tables.
    defer_ray_data()
    defer_pandas()
    frozen_at_exit()  # the process's end spares walking all it holds (`core.heapfreeze`)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return _run(argv)
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)


def _run(argv: list[str] | None) -> int:
    try:
        cli.main(args=argv, prog_name="tuning-service", standalone_mode=False)
    except _NO_ARGS_IS_HELP as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        return 0
    except click.UsageError as exc:
        click.echo(f"error: {printable(exc.format_message())}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except TuningServiceError as exc:
        click.echo(f"error: {printable(str(exc))}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    return 0
