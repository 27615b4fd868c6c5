"""A resume whose Tune snapshot cannot be read stops: it never starts the sweep over."""

from __future__ import annotations

import pytest

from tuning_service.core.errors import SweepError
from tuning_service.core.results import TRIALS_DIR
from tuning_service.core.spec import SweepSpec
from tuning_service.raytune.snapshots import SNAPSHOT_FILE
from tuning_service.store import open_store
from tuning_service.sweeps.runner import resume_sweep, run_sweep

pytestmark = pytest.mark.integration

JOB_FILE = "from tuning_service.testing import tiny_job\n\nJOB = tiny_job(max_epochs=1)\n"


def test_a_snapshot_tune_cannot_restore_stops_the_resume(ray_local, tmp_path):
    (tmp_path / "tiny_job.py").write_text(JOB_FILE)
    storage = tmp_path / "results"
    spec = SweepSpec(
        job=f"{tmp_path / 'tiny_job.py'}:JOB", storage=str(storage), num_samples=2, scheduler="fifo"
    )
    result = run_sweep(spec)
    trials_dir = result.sweep_dir / TRIALS_DIR
    assert (result.sweep_dir / SNAPSHOT_FILE).is_file()  # kept while the sweep ran
    # Valid JSON that is not a Tune snapshot, and no kept copy to fall back on.
    (result.sweep_dir / SNAPSHOT_FILE).unlink()
    (state,) = trials_dir.glob("experiment_state-*.json")
    state.write_text("{}")
    with open_store(None, storage=storage) as store:
        store.finish_sweep(result.sweep_id, "interrupted")
        before = sorted((t.trial_id, t.status, t.value) for t in store.trials([result.sweep_id]))
    folders = sorted(p.name for p in trials_dir.iterdir())

    with pytest.raises(SweepError, match="could not restore the sweep's snapshot .* nothing was run"):
        resume_sweep(result.sweep_id, storage=str(storage))

    with open_store(None, storage=storage) as store:
        assert sorted((t.trial_id, t.status, t.value) for t in store.trials([result.sweep_id])) == before
        (row,) = store.sweeps()
        assert row.status == "failed" and "could not restore" in row.message
    new = set(p.name for p in trials_dir.iterdir()) - set(folders)
    assert not [n for n in new if n.startswith("KerasTrainable")], f"trials ran: {new}"
