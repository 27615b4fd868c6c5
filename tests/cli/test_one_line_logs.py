"""Cron, journald and log files get one line per event: nothing of ours is wrapped or split when piped."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from rich.table import Table

from tuning_service.cli import cli, main
from tuning_service.cli.render import stdout_console
from tuning_service.cli.run import _with_progress
from tuning_service.core.progress import Snapshot


def test_the_progress_lines_on_a_pipe_are_never_wrapped(capsys):
    """Before: Rich wrapped them at 80 columns ("best val_accuracy" / "0.9757; 38s" on two lines)."""

    def sweep(sink):
        snapshot = Snapshot(total=1200, metric="val_sparse_categorical_accuracy", mode="max", max_epochs=50)
        for finished in range(3):
            snapshot.completed, snapshot.stopped = 100 * finished, 800
            snapshot.offer(0.9757 + finished / 1000, {"learning_rate": 0.001})
            sink(snapshot)
        return "done"

    assert _with_progress(sweep, quiet=False) == "done"
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3  # one per event
    assert all(
        len(line) > 80 and line.endswith("s") and "best val_sparse_categorical_accuracy 0.97" in line
        for line in lines
    )


def test_results_on_a_pipe_keep_every_row_and_line_whole(capsys):
    table = Table("trial", "config")
    table.add_row("t1", "units=" + "8" * 300)
    console = stdout_console()
    console.print(table)
    console.print("best val_accuracy 0.9757 -> " + "/deep" * 60 + "/best_config.json")
    out = capsys.readouterr().out.splitlines()
    assert any("8" * 300 in line for line in out)
    assert any(line.endswith("/best_config.json") and line.startswith("best val_accuracy") for line in out)


def test_user_text_that_looks_like_rich_markup_is_printed_as_written(tmp_path, capsys):
    """Before: a job description holding "[/bold]" ended `tuning-service jobs` in a MarkupError traceback."""
    (tmp_path / "rows.csv").write_text("x,y\n1,0\n2,1\n3,0\n4,1\n")
    (tmp_path / "job.yaml").write_text('csv: rows.csv\ntarget: y\ndescription: "a [/bold] [red]b"\n')
    assert main(["jobs", str(tmp_path / "job.yaml")]) == 0
    assert "job: a [/bold] [red]b" in capsys.readouterr().out


@pytest.fixture
def root_handlers():
    """The CLI group installs its handlers on the root logger; put the previous ones back."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        if handler not in saved[0]:
            handler.close()
    root.handlers[:], root.level = saved


def test_a_logged_traceback_is_one_line_in_a_log_file(tmp_path: Path, root_handlers):
    log_file = tmp_path / "service.log"
    # The group itself, not `main`: `main` takes its handlers down again when the command returns.
    cli.main(["--log-file", str(log_file), "jobs", "--format", "json"], standalone_mode=False)
    try:
        raise RuntimeError("first line\nsecond line")
    except RuntimeError:
        logging.getLogger("tuning_service.sweeps.nightly").exception("nightly: run 3 failed")
    lines = log_file.read_text().splitlines()
    assert len(lines) == 1, lines
    assert " | ERROR tuning_service.sweeps.nightly: nightly: run 3 failed | Traceback" in lines[0]
    assert lines[0].endswith("RuntimeError: first line | second line")


def test_main_leaves_the_callers_logging_as_it_found_it(tmp_path: Path, root_handlers):
    root = logging.getLogger()
    before = root.handlers[:], root.level
    assert main(["--log-file", str(tmp_path / "service.log"), "-v", "jobs", "--format", "json"]) == 0
    assert (root.handlers, root.level) == before
