"""`resume` refuses, in one line and exit code 2, what it cannot or must not continue."""

from __future__ import annotations

import pytest

from tuning_service.cli import main
from tuning_service.store import open_store


def _record(storage, sweep_id, status, sweep_dir):
    with open_store(None, storage=storage) as store:
        store.create_sweep(
            sweep_id, job="digits", job_ref="digits", metric="val_accuracy", mode="max", searcher="random",
            scheduler="fifo", seed=0, space={}, spec={"job": "digits"}, versions={}, sweep_dir=str(sweep_dir),
        )  # fmt: skip
        if status != "running":
            store.finish_sweep(sweep_id, status)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (
            "finished",
            "sweep 20260101-000000-aaaaaa finished already; `tuning-service results 20260101-000000-aaaaaa`",
        ),
        # Recorded as running by this very process: a live driver.
        ("running", "sweep 20260101-000000-aaaaaa is still running (driver pid"),
        ("interrupted", "sweep 20260101-000000-aaaaaa cannot be resumed: its folder"),
    ],
)
def test_resume_refuses(status, message, tmp_path, capsys):
    storage = tmp_path / "results"
    _record(storage, "20260101-000000-aaaaaa", status, tmp_path / "gone")
    code = main(["resume", "20260101-000000-aaaaaa", "--storage", str(storage)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "gone").exists()


def test_resume_of_an_unknown_sweep_names_the_recorded_ones(tmp_path, capsys):
    storage = tmp_path / "results"
    _record(storage, "20260101-000000-aaaaaa", "interrupted", tmp_path / "gone")
    assert main(["resume", "20991231", "--storage", str(storage)]) == 2
    err = capsys.readouterr().err
    assert "unknown sweep '20991231'" in err and "20260101-000000-aaaaaa" in err


def test_run_with_an_interrupted_sweeps_id_points_at_resume(tmp_path, capsys):
    storage = tmp_path / "results"
    _record(storage, "20260101-000000-aaaaaa", "interrupted", tmp_path / "gone")
    assert main(["run", "20260101-000000-aaaaaa", "--storage", str(storage)]) == 2
    err = capsys.readouterr().err
    assert "is interrupted; continue it with `tuning-service resume 20260101-000000-aaaaaa`" in err


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (None, "it stopped before Ray Tune saved its first snapshot"),
        (b"", "its Ray Tune snapshot"),
        (b'{"trial_data": [', "is damaged"),
    ],
)
def test_resume_refuses_a_sweep_without_a_readable_snapshot(state, message, tmp_path, capsys):
    storage = tmp_path / "results"
    sweep_dir = storage / "digits" / "20260101-000000-aaaaaa"
    (sweep_dir / "trials").mkdir(parents=True)
    (sweep_dir / "trials" / "tuner.pkl").write_bytes(b"tuner")
    if state is not None:
        (sweep_dir / "trials" / "experiment_state-2026-01-01_00-00-00.json").write_bytes(state)
    _record(storage, "20260101-000000-aaaaaa", "interrupted", sweep_dir)
    code = main(["resume", "20260101-000000-aaaaaa", "--storage", str(storage)])
    err = capsys.readouterr().err
    assert code == 2 and "sweep 20260101-000000-aaaaaa cannot be resumed" in err and message in err, err
    assert err.count("\n") == 1, err
