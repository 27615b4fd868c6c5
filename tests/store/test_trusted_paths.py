"""`resume` and `refit` load code from paths a database row names: only from folders and files that are yours.

No Ray here: every refusal comes before anything is imported or unpickled. A job file
that would leave a mark when imported proves that nothing of it ran.
"""

from __future__ import annotations

import os
import pwd

import pytest
from storefakes import add_sweep

from tuning_service.cli import main
from tuning_service.store import open_store

SWEEP = "20260101-000000-aaaaaa"
JOB_FILE = """\
from pathlib import Path
Path({mark!r}).write_text("imported")
from tuning_service.testing import tiny_job
JOB = tiny_job()
"""


@pytest.fixture
def recorded(tmp_path):
    """An interrupted sweep with a Tune snapshot, a completed trial and a .py job file, inside the root."""
    storage = tmp_path / "results"
    sweep_dir = storage / "tiny" / SWEEP
    (sweep_dir / "trials").mkdir(parents=True)
    (sweep_dir / "trials" / "tuner.pkl").write_bytes(b"pickled code")
    job = tmp_path / "project" / "my_job.py"
    job.parent.mkdir()
    job.write_text(JOB_FILE.format(mark=str(tmp_path / "imported")))
    with open_store(None, storage=storage) as store:
        add_sweep(
            store, SWEEP, job="tiny", job_ref=str(job), sweep_dir=str(sweep_dir), finish="interrupted",
            trials={"t1": ("completed", [0.5, 0.6])},
        )  # fmt: skip
    return storage, sweep_dir, job


def _refused(capsys, tmp_path, *argv: str) -> str:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "imported").exists()  # the job file was never imported
    return err


def _move_row(storage, sweep_dir) -> None:
    import sqlalchemy as sa

    with open_store(None, storage=storage) as store, store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE sweeps SET sweep_dir = :d"), {"d": str(sweep_dir)})


def test_a_sweep_folder_outside_the_results_root_is_refused(recorded, tmp_path, capsys):
    """Before: resume unpickled Tune's state from whatever folder the row named."""
    storage, sweep_dir, _ = recorded
    elsewhere = tmp_path / "elsewhere" / SWEEP
    elsewhere.parent.mkdir()
    sweep_dir.rename(elsewhere)
    _move_row(storage, elsewhere)
    err = _refused(capsys, tmp_path, "resume", SWEEP, "--storage", str(storage))
    assert f"sweep {SWEEP}: its folder '{elsewhere}' is not inside the results root '{storage}'" in err
    assert "pass the --storage it was run with" in err


def test_a_link_out_of_the_results_root_is_refused(recorded, tmp_path, capsys):
    storage, sweep_dir, _ = recorded
    outside = tmp_path / "outside"
    sweep_dir.rename(outside)
    sweep_dir.symlink_to(outside)
    err = _refused(capsys, tmp_path, "resume", SWEEP, "--storage", str(storage))
    assert f"its folder '{outside}' is not inside the results root" in err


@pytest.mark.parametrize("where", ["trials/tuner.pkl", "trials", ".", ".."])
def test_saved_state_writable_by_other_users_is_refused(recorded, tmp_path, capsys, where):
    storage, sweep_dir, _ = recorded
    target = (sweep_dir / where).resolve()
    target.chmod(target.stat().st_mode | 0o002)
    err = _refused(capsys, tmp_path, "resume", SWEEP, "--storage", str(storage))
    assert f"sweep {SWEEP}: '{target}' is writable by other users (mode " in err
    assert f"run `chmod go-w {target}`" in err


@pytest.mark.parametrize("command", ["resume", "refit"])
@pytest.mark.parametrize("where", ["file", "folder"])
def test_a_job_file_writable_by_other_users_is_never_imported(recorded, tmp_path, capsys, command, where):
    """Before: resume and refit imported the recorded job file whoever could write it."""
    storage, _, job = recorded
    target = job if where == "file" else job.parent
    target.chmod(target.stat().st_mode | 0o002)
    err = _refused(capsys, tmp_path, command, SWEEP, "--storage", str(storage))
    assert f"job file '{job}': '{target}' is writable by other users" in err


def test_refit_saves_into_the_sweep_folder_only_inside_the_results_root(recorded, tmp_path, capsys):
    storage, sweep_dir, _ = recorded
    elsewhere = tmp_path / "elsewhere"
    sweep_dir.rename(elsewhere)
    _move_row(storage, elsewhere)
    err = _refused(capsys, tmp_path, "refit", SWEEP, "--storage", str(storage))
    assert f"its folder '{elsewhere}' is not inside the results root" in err


@pytest.mark.skipif(os.getuid() != 0, reason="making a file another user owns needs root")
@pytest.mark.parametrize("command", ["resume", "refit"])
def test_files_of_another_user_are_never_loaded(recorded, tmp_path, capsys, command):
    storage, sweep_dir, job = recorded
    nobody = pwd.getpwnam("nobody").pw_uid
    os.chown(job, nobody, -1)
    err = _refused(capsys, tmp_path, command, SWEEP, "--storage", str(storage))
    assert f"job file '{job}': '{job}' belongs to nobody, not to you (root)" in err
    os.chown(job, 0, -1)
    os.chown(sweep_dir / "trials" / "tuner.pkl", nobody, -1)
    err = _refused(capsys, tmp_path, "resume", SWEEP, "--storage", str(storage))
    assert f"'{sweep_dir / 'trials' / 'tuner.pkl'}' belongs to nobody, not to you (root)" in err
