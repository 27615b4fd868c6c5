"""A sweep's driver lives on while the database says otherwise (another node, an outage): a second
`resume` of it is refused in one line naming the live driver, and the live sweep ends untouched."""

from __future__ import annotations

import json
import os
import signal
import socket
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.sweeps.faults.conftest import JOB_FILE, cli, finished_trials, kill_group, wait_for
from tuning_service.raytune.snapshots import SNAPSHOT_FILE
from tuning_service.store import open_store, schema

pytestmark = pytest.mark.integration


def test_a_live_driver_marked_interrupted_on_another_node_cannot_be_resumed_twice(tmp_path):
    (tmp_path / "resumable_job.py").write_text(JOB_FILE)
    storage = tmp_path / "results"
    db = storage / "tuning.db"
    # Twelve trials one at a time: the sweep is far from its end when the first has finished.
    args = ["--searcher", "random", "--scheduler", "fifo", "--num-samples", "12", "--max-concurrent", "1"]
    driver = cli(
        "run", f"{tmp_path / 'resumable_job.py'}:JOB", *args, "--storage", str(storage), cwd=tmp_path
    )
    try:
        wait_for(lambda: finished_trials(db) >= 1, timeout=300, what="a finished trial", proc=driver)
        with open_store(None, storage=storage) as store:
            (row,) = store.sweeps()
            sweep_dir = Path(row.sweep_dir)
            wait_for(lambda: (sweep_dir / SNAPSHOT_FILE).is_file(), timeout=60, what="a kept snapshot")
            # What another node sees after a database outage: the sweep marked interrupted, its
            # driver recorded elsewhere, silent for an hour. Only the folder's lock knows better.
            with store.engine.begin() as conn:
                conn.execute(
                    sa.update(schema.sweeps).values(
                        status="interrupted",
                        host="node-2",
                        driver={"boot": "another-machine", "pidns": "pid:[1]"},
                        heartbeat_at=schema.utcnow() - timedelta(hours=1),
                    )
                )
        # The live driver is paused while the second resume runs: it holds its folder's lock as
        # before, and cannot end the sweep (and release the lock) before that resume looks.
        os.kill(driver.pid, signal.SIGSTOP)
        try:
            second = cli("resume", row.sweep_id, "--storage", str(storage), cwd=tmp_path)
            _, err = second.communicate(timeout=120)
        finally:
            os.kill(driver.pid, signal.SIGCONT)
        assert second.returncode == 2 and err.count("\n") == 1, err
        assert err.startswith(
            f"error: sweep {row.sweep_id} is still being driven by pid {driver.pid} on {socket.gethostname()} since "
        ), err
        assert not (sweep_dir / "trials" / "superseded-snapshot").exists(), (
            "the refused resume touched trials/"
        )
        out, err = driver.communicate(timeout=400)
    finally:
        if driver.poll() is None:
            kill_group(driver)
    assert driver.returncode == 0, err[-3000:]
    with open_store(None, storage=storage) as store:
        (row,) = store.sweeps()
        trials = store.trials([row.sweep_id])
        assert row.status == "finished" and len(trials) == 12, [(t.trial_id, t.status) for t in trials]
        for trial in trials:
            assert [e.epoch for e in store.epochs(row.sweep_id, trial.trial_id)] == list(
                range(1, trial.epochs + 1)
            )
    assert len(json.loads((sweep_dir / "trials.json").read_text())) == 12
