"""A trial's history when Tune ran some of its epochs twice: only its latest run counts (no Ray).
Read from Tune's table of the trial's results and from its result.json alike (`resultrows`)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from ray.tune import Result

from tuning_service.raytune.resultrows import RESULT_FILE
from tuning_service.sweeps.runner import _summarize
from tuning_service.testing import tiny_job


@pytest.fixture(params=["table", "file"])
def summary(request, tmp_path):
    def summarize(rows: list[tuple[int, float]]):
        job = tiny_job(max_epochs=3)
        reported = [{"training_iteration": n, job.metric: v} for n, v in rows]
        n, v = rows[-1]
        metrics = {"training_iteration": n, job.metric: v, "trial_id": "t1"}
        if request.param == "table":
            result = Result(metrics, None, None, "t1", metrics_dataframe=pd.DataFrame(reported))
        else:
            (tmp_path / RESULT_FILE).write_text("".join(json.dumps(row) + "\n" for row in reported))
            result = Result(metrics, None, None, str(tmp_path))
        return _summarize(result, job, 3)

    return summarize


def test_a_trial_restarted_from_scratch_keeps_only_its_new_run(summary):
    """It ran 3 epochs (the best at 3) before the driver died, then again from scratch, stopped at 1."""
    trial = summary([(1, 0.4), (2, 0.7), (3, 0.8), (1, 0.39)])
    assert [h["training_iteration"] for h in trial.history] == [1]
    assert (trial.epochs, trial.best_epoch, trial.value) == (1, 1, 0.39)


def test_a_trial_restored_from_a_checkpoint_keeps_the_epochs_before_it(summary):
    trial = summary([(1, 0.4), (2, 0.7), (3, 0.5), (3, 0.6), (2, 0.65), (3, 0.6)])
    assert [(h["training_iteration"], h["val_accuracy"]) for h in trial.history] == [
        (1, 0.4), (2, 0.65), (3, 0.6)
    ]  # fmt: skip
    assert (trial.epochs, trial.best_epoch, trial.value) == (3, 2, 0.65)
