"""A trial's history when Tune ran some of its epochs twice: only its latest run counts (no Ray)."""

from __future__ import annotations

import pandas as pd
from ray.tune import Result

from tuning_service.sweeps.runner import _summarize
from tuning_service.testing import tiny_job


def _summary(rows: list[tuple[int, float]]):
    job = tiny_job(max_epochs=3)
    frame = pd.DataFrame([{"training_iteration": n, job.metric: v} for n, v in rows])
    n, v = rows[-1]
    result = Result(
        metrics={"training_iteration": n, job.metric: v, "trial_id": "t1"},
        checkpoint=None,
        error=None,
        path="t1",
        metrics_dataframe=frame,
    )
    return _summarize(result, job, 3)


def test_a_trial_restarted_from_scratch_keeps_only_its_new_run():
    """It ran 3 epochs (the best at 3) before the driver died, then again from scratch, stopped at 1."""
    summary = _summary([(1, 0.4), (2, 0.7), (3, 0.8), (1, 0.39)])
    assert [h["training_iteration"] for h in summary.history] == [1]
    assert (summary.epochs, summary.best_epoch, summary.value) == (1, 1, 0.39)


def test_a_trial_restored_from_a_checkpoint_keeps_the_epochs_before_it():
    summary = _summary([(1, 0.4), (2, 0.7), (3, 0.5), (3, 0.6), (2, 0.65), (3, 0.6)])
    assert [(h["training_iteration"], h["val_accuracy"]) for h in summary.history] == [
        (1, 0.4), (2, 0.65), (3, 0.6)
    ]  # fmt: skip
    assert (summary.epochs, summary.best_epoch, summary.value) == (3, 2, 0.65)
