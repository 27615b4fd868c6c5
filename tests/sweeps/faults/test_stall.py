"""A sweep in which no trial runs for `TUNING_SERVICE_STALL_S` is stopped with one line, recorded as
interrupted, and `resume` ends it. The wait here is shorter than a trial's start, which stands in
for a sweep that can run nothing more."""

from __future__ import annotations

import pytest

from tests.sweeps.faults.conftest import JOB_FILE, cli
from tuning_service.core.stall import STALL_ENV
from tuning_service.store import open_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRIALS = 3


def test_a_stalled_sweep_stops_with_one_line_and_resume_ends_it(tmp_path):
    (tmp_path / "resumable_job.py").write_text(JOB_FILE)
    storage = tmp_path / "results"
    args = ["--num-samples", str(TRIALS), "--data-limit", "300", "--storage", str(storage)]
    stalled = cli("run", f"{tmp_path / 'resumable_job.py'}:JOB", *args, cwd=tmp_path, env={STALL_ENV: "0.01"})
    _, err = stalled.communicate(timeout=300)
    assert stalled.returncode == 1, err[-3000:]
    with open_store(None, storage=storage) as store:
        (row,) = store.sweeps()
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: no trial has run for 0.01 s"), err[-3000:]
    assert f"`tuning-service resume {row.sweep_id}`" in line and STALL_ENV in line
    assert row.status == "interrupted" and "no trial has run" in row.message

    resumed = cli("resume", row.sweep_id, "--storage", str(storage), cwd=tmp_path)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    with open_store(None, storage=storage) as store:
        (row,) = store.sweeps()
        trials = store.trials([row.sweep_id])
    assert row.status == "finished"
    assert len([t for t in trials if t.status != "dropped"]) == TRIALS
