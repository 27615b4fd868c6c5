"""The end of a sweep when its files cannot be written (no Ray; tests/sweeps/faults/test_outages.py takes the database down)."""

from __future__ import annotations

import pytest
from storefakes import add_sweep

from tuning_service.core.errors import SweepError
from tuning_service.core.results import SweepResult, TrialSummary
from tuning_service.core.spec import SweepSpec
from tuning_service.raytune.recording import SweepRecording
from tuning_service.sweeps.runner import _finish
from tuning_service.testing import tiny_job


def _ending(store, sweep_dir):
    add_sweep(store, "s1", trials={"a": ("completed", [0.5, 0.7])}, finish=None)
    trial = TrialSummary("a", {"learning_rate": 0.001, "units": 16}, "completed", 0.7, 2, 2, 1.0, history=[])
    result = SweepResult(
        sweep_id="s1", job="digits", metric="val_accuracy", mode="max", searcher="random", scheduler="fifo",
        seed=0, sweep_dir=sweep_dir, trials=[trial], wall_time_s=1.0, max_epochs=3,
    )  # fmt: skip
    spec = SweepSpec(job="digits", storage=str(sweep_dir.parent))
    return SweepRecording(store, "s1", spec=spec, job=tiny_job(), max_epochs=3, sweep_dir=sweep_dir), result


def test_files_that_cannot_be_written_leave_the_sweep_failed_and_resumable(store, tmp_path):
    sweep_dir = tmp_path / "sweep"
    sweep_dir.write_text("a file where the sweep's folder should be")  # every write in it fails
    recording, result = _ending(store, sweep_dir)
    with pytest.raises(
        SweepError, match=r"^sweep s1 could not write its files in .*; free some space, then "
    ):
        _finish(recording, result)
    (row,) = store.sweeps()
    assert row.status == "failed" and row.message.startswith("could not write its files in")
    assert [(t.trial_id, t.status, t.value) for t in store.trials(["s1"])] == [("a", "completed", 0.7)]
