"""A driver SIGKILLed halfway through a 12-trial sweep: `resume` ends it with exactly 12 trials."""

from __future__ import annotations

import glob
import json
import pickle
from pathlib import Path

import pytest

from tests.faults.conftest import cli, finished_trials, kill_group, wait_for
from tuning_service.store import open_store

FINISHED = {"completed", "stopped early", "diverged", "errored"}


def _trial_record(trial, epochs):
    return (
        trial.status,
        trial.value,
        trial.epochs,
        json.dumps(trial.config, sort_keys=True),
        [(e.epoch, e.value, json.dumps(e.metrics, sort_keys=True)) for e in epochs],
    )


def _optuna_numbers(sweep_dir: Path) -> list[int]:
    """Trial numbers in the Optuna study of the sweep's last searcher snapshot."""
    newest = sorted(glob.glob(str(sweep_dir / "trials" / "searcher-state-*.pkl")))[-1]
    with open(newest, "rb") as f:
        state = pickle.load(f)
    return sorted(t.number for t in state["_ot_study"].trials)


@pytest.mark.parametrize("searcher", ["grid", "random", "optuna", "hyperopt"])
def test_resume_after_the_driver_is_killed_halfway(searcher, job_file, tmp_path):
    storage = tmp_path / "results"
    db = storage / "tuning.db"
    args = [
        "--searcher", searcher, "--scheduler", "asha", "--num-samples", "12",
        "--max-concurrent", "2", "--data-limit", "300", "--storage", str(storage),
    ]  # fmt: skip
    driver = cli("run", job_file, *args, cwd=tmp_path)
    try:
        wait_for(lambda: finished_trials(db) >= 5, timeout=240, what="5 finished trials", proc=driver)
    finally:
        kill_group(driver)

    with open_store(None, storage=storage) as store:
        (row,) = store.sweeps()
        before = {
            t.trial_id: _trial_record(t, store.epochs(row.sweep_id, t.trial_id))
            for t in store.trials([row.sweep_id])
            if t.status in FINISHED
        }
    assert 5 <= len(before) < 12, (
        f"the driver was killed too late to test anything: {len(before)} trials done"
    )

    # `run` with the interrupted sweep's id points at `resume` instead of starting anything.
    wrong = cli("run", row.sweep_id, "--storage", str(storage), cwd=tmp_path)
    out, err = wrong.communicate(timeout=60)
    assert wrong.returncode == 2, err
    assert f"tuning-service resume {row.sweep_id}" in err and len(err.strip().splitlines()) == 1

    resumed = cli("resume", row.sweep_id, "--storage", str(storage), cwd=tmp_path)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]

    with open_store(None, storage=storage) as store:
        (row,) = store.sweeps()
        trials = store.trials([row.sweep_id])
        after = {t.trial_id: _trial_record(t, store.epochs(row.sweep_id, t.trial_id)) for t in trials}
    assert row.status == "finished", row.message
    assert len(trials) == 12, sorted(after)
    assert all(t.status in FINISHED for t in trials), [(t.trial_id, t.status) for t in trials]
    assert all(1 <= t.epochs <= 3 for t in trials), [(t.trial_id, t.epochs) for t in trials]
    assert len({json.dumps(t.config, sort_keys=True) for t in trials}) == 12, "a config ran twice"
    for trial_id, record in before.items():
        assert after.get(trial_id) == record, f"trial {trial_id} changed after the resume"
    for trial_id, (_, _, epochs, _, rows) in after.items():
        assert [r[0] for r in rows] == list(range(1, epochs + 1)), f"trial {trial_id}: epoch rows {rows}"
    if searcher == "optuna":
        assert _optuna_numbers(Path(row.sweep_dir)) == list(range(12))
