"""A trial that starts again from its checkpoint keeps its result.json rows, even when Tune's
background copy of the sweep's files to its folder is under way as its logger copies that file
back (`callbacks.SyncBeforeRestore`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

# Rows of about 1 kB: a file of some 20 MB, whose copy lasts long enough to be seen under way.
ROWS = 20_000
ATTEMPTS = 20


def _trial_with_a_checkpoint(tmp_path: Path):
    """A real Tune trial (its storage on Tune's driver staging folder, as in a sweep) that has saved
    a checkpoint, so Tune's loggers copy its files back from the sweep folder when it starts."""
    from ray.train import Checkpoint
    from ray.train._internal.session import _TrainingResult
    from ray.train._internal.storage import StorageContext
    from ray.tune.experiment import Trial

    storage = StorageContext(storage_path=str(tmp_path / "sweep"), experiment_dir_name="trials")
    trial = Trial("T", config={}, storage=storage, stub=True)
    trial.init_local_path()
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    trial.run_metadata.checkpoint_manager.register_checkpoint(
        _TrainingResult(checkpoint=Checkpoint(str(checkpoint)), metrics={})
    )
    return trial


def _copy_under_way(trial, staged: Path, copied: Path) -> bool:
    """Start Tune's background copy of the staging folder to the sweep folder; True once the copy of
    result.json is seen part-written (False if it finished first)."""
    trial.storage.syncer.sync_up(trial.local_experiment_path, trial.storage.experiment_fs_path)
    whole = staged.stat().st_size
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if copied.exists() and copied.stat().st_size < whole:
            return True
        if not trial.storage.syncer._should_continue_existing_sync():
            return False
    return False


def test_a_restarted_trial_keeps_its_rows_while_tune_copies_the_sweep_folder(ray_local, tmp_path):
    from ray.tune.logger import JsonLoggerCallback

    from tuning_service.raytune.callbacks import SyncBeforeRestore

    trial = _trial_with_a_checkpoint(tmp_path)
    staged = Path(trial.local_path) / "result.json"
    copied = Path(trial.path) / "result.json"
    rows = [json.dumps({"training_iteration": i, "pad": "x" * 1000}) for i in range(1, ROWS + 1)]
    staged.write_text("\n".join(rows) + "\n")
    for _ in range(ATTEMPTS):
        trial.storage.syncer.wait()
        if _copy_under_way(trial, staged, copied):
            break
    else:
        pytest.fail(f"Tune's copy of a {staged.stat().st_size} B file was never seen under way")

    SyncBeforeRestore().on_trial_start(0, [trial], trial)
    logger = JsonLoggerCallback()
    logger.log_trial_start(trial)  # what Tune's logger does first for a trial that starts again
    logger.log_trial_end(trial)
    lines = staged.read_text().splitlines()
    assert len(lines) == ROWS and lines[-1] == rows[-1], f"{len(lines)} of {ROWS} rows left"
