"""A trial the store recorded but Ray Tune's results lack is kept as dropped, in every view of the sweep."""

from __future__ import annotations

import json

import pytest

from tuning_service.cli import main
from tuning_service.core.spec import SweepSpec
from tuning_service.store import open_store
from tuning_service.sweeps.runner import resume_sweep, run_sweep

pytestmark = pytest.mark.integration

JOB_FILE = "from tuning_service.testing import tiny_job\n\nJOB = tiny_job(max_epochs=1)\n"
GHOST = "ghost_00009"


def test_a_recorded_trial_tune_does_not_know_is_kept_as_dropped(ray_local, tmp_path, capsys):
    (tmp_path / "tiny_job.py").write_text(JOB_FILE)
    storage = tmp_path / "results"
    spec = SweepSpec(
        job=f"{tmp_path / 'tiny_job.py'}:JOB", storage=str(storage), num_samples=2, scheduler="fifo"
    )
    first = run_sweep(spec)
    # What a driver killed just after a trial's epoch leaves when Tune's snapshot predates the
    # trial: the store has it (the best value of all), Tune's restored state does not.
    with open_store(None, storage=storage) as store:
        store.start_trial(first.sweep_id, GHOST, {"learning_rate": 0.01, "units": 8})
        store.record_epoch(first.sweep_id, GHOST, 1, mode="max", value=1.0, metrics={"val_accuracy": 1.0})
        store.finish_trial(first.sweep_id, GHOST, "completed")
        store.finish_sweep(first.sweep_id, "interrupted")

    result = resume_sweep(first.sweep_id, storage=str(storage))

    statuses = {t.trial_id: t.status for t in result.trials}
    assert statuses[GHOST] == "dropped" and len(statuses) == 3, statuses
    assert result.best.trial_id != GHOST and result.counts()["dropped"] == 1
    listed = {t["trial_id"]: t for t in json.loads((result.sweep_dir / "trials.json").read_text())}
    assert listed[GHOST]["status"] == "dropped" and "recorded epoch" in listed[GHOST]["error"]
    assert json.loads((result.sweep_dir / "best_config.json").read_text())["trial_id"] != GHOST
    with open_store(None, storage=storage) as store:
        ghost = next(t for t in store.trials([first.sweep_id]) if t.trial_id == GHOST)
        assert ghost.status == "dropped" and [e.epoch for e in store.epochs(first.sweep_id, GHOST)] == [1]
        assert store.find_sweep(first.sweep_id).status == "finished"
    capsys.readouterr()
    assert main(["results", "--sweep", first.sweep_id, "--storage", str(storage)]) == 0
    out = capsys.readouterr().out
    assert "dropped: not in Ray Tune's" in out and "2 (2 completed) + 1 dropped" in out
    assert main(["export", "--storage", str(storage), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["configs"][0]["trial_id"] != GHOST
    assert main(["report", first.sweep_id, "--storage", str(storage)]) == 0
    page = (result.sweep_dir / "report.html").read_text()
    assert "2 (2 completed) + 1 dropped" in page and f"{GHOST}</td>" in page
