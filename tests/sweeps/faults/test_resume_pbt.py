"""A PBT sweep's driver SIGKILLed after its first exploits: `resume` ends it with exactly its trials,
each trained to the epoch budget, and its lineage whole."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.sweeps.faults.conftest import JOB_FILE, cli, kill_group, wait_for
from tuning_service.store import open_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRIALS, EPOCHS = 4, 4


def _exploits(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("select count(*) from exploits").fetchone()[0]
    except sqlite3.OperationalError:  # the schema is still being created
        return 0


def test_a_pbt_sweep_resumes_after_its_driver_is_killed(tmp_path):
    (tmp_path / "resumable_job.py").write_text(JOB_FILE)
    storage, db = tmp_path / "results", tmp_path / "results" / "tuning.db"
    args = [
        "--searcher", "random", "--scheduler", "pbt", "--num-samples", str(TRIALS),
        "--max-epochs", str(EPOCHS), "--scheduler-option", "perturbation_interval=2",
        # Every trial waits at epoch 2 for the others, then the worse half copies the better half:
        # the driver is killed with exploits made and trials paused on copied checkpoints.
        "--scheduler-option", "synch=true", "--scheduler-option", "quantile_fraction=0.5",
        "--data-limit", "300", "--storage", str(storage),
    ]  # fmt: skip
    driver = cli("run", f"{tmp_path / 'resumable_job.py'}:JOB", *args, cwd=tmp_path)
    try:
        wait_for(lambda: _exploits(db) >= 1, timeout=400, what="a first exploit", proc=driver)
    finally:
        kill_group(driver)
    with open_store(None, storage=storage) as store:
        (row,) = store.sweeps()
        before = store.exploits(row.sweep_id)
        unfinished = [t for t in store.trials([row.sweep_id]) if t.status in ("running", "interrupted")]
    assert before and unfinished, "the driver was killed too late to test anything"

    resumed = cli("resume", row.sweep_id, "--storage", str(storage), cwd=tmp_path)
    _, err = resumed.communicate(timeout=500)
    assert resumed.returncode == 0, err[-3000:]
    with open_store(None, storage=storage) as store:
        (row,) = store.sweeps()
        trials = [t for t in store.trials([row.sweep_id]) if t.status != "dropped"]
        after = store.exploits(row.sweep_id)
        rows = {t.trial_id: [e.epoch for e in store.epochs(row.sweep_id, t.trial_id)] for t in trials}
    assert row.status == "finished", row.message
    assert len(trials) == TRIALS, [(t.trial_id, t.status) for t in trials]
    assert all(t.status == "completed" and t.epochs == EPOCHS for t in trials), (
        [(t.trial_id, t.status, t.epochs, t.message) for t in trials],
        err[-3000:],
    )
    assert all(epochs == list(range(1, EPOCHS + 1)) for epochs in rows.values()), rows
    # The exploits made before the kill that the snapshot kept are still there, numbered in order.
    assert [x.number for x in after] == list(range(1, len(after) + 1))
    assert len(after) >= 1 and {x.trial_id for x in after} | {x.donor_id for x in after} <= set(rows)
    lineage = json.loads((Path(row.sweep_dir) / "lineage.json").read_text())
    assert [e["number"] for e in lineage] == [x.number for x in after]
