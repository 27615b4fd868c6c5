"""A trial's reported results read as rows from its result.json (`raytune.resultrows`), and a
sweep's driver that never loads pandas for them."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys

import pytest
from ray.tune import Result

from tuning_service.data.catalog import load_job
from tuning_service.raytune.resultrows import RESULT_FILE, reported_rows


def _result(path) -> Result:
    return Result(metrics={"training_iteration": 2}, checkpoint=None, error=None, path=str(path))


def test_rows_are_the_trials_results_oldest_first_as_tune_wrote_them(tmp_path):
    rows = [
        {"training_iteration": 1, "val_loss": math.nan, "config": {"units": 8}},
        {"training_iteration": 2, "val_loss": 0.5, "diverged": False, "config": {"units": 8}},
    ]
    # As Tune's JSON logger writes them: a line each, NaN as JSON's extension writes it.
    (tmp_path / RESULT_FILE).write_text("".join(json.dumps(row) + "\n" for row in rows))
    read = reported_rows(_result(tmp_path))
    assert [r["training_iteration"] for r in read] == [1, 2]
    assert math.isnan(read[0]["val_loss"]) and read[1]["val_loss"] == 0.5
    assert read[1]["config"] == {"units": 8} and "diverged" not in read[0]


def test_a_line_cut_short_is_left_out_and_said_once(tmp_path, caplog):
    (tmp_path / RESULT_FILE).write_text('{"training_iteration": 1}\n{"training_iter')  # a killed driver's
    with caplog.at_level(logging.WARNING, logger="tuning_service.raytune.resultrows"):
        assert reported_rows(_result(tmp_path)) == [{"training_iteration": 1}]
    assert [r.getMessage().endswith("line 2 is not JSON; left out") for r in caplog.records] == [True]


def test_a_trial_that_reported_nothing_has_no_rows(tmp_path):
    assert reported_rows(_result(tmp_path)) == []
    (tmp_path / RESULT_FILE).write_text("")
    assert reported_rows(_result(tmp_path)) == []


# In a new process, as a user runs it: the command's driver imports Tune with pandas deferred.
SWEEP = r"""
import json, sys
from pathlib import Path
from tuning_service.cli import main
from tuning_service.raytune.lazydata import loaded
code = main(["-q", "run", "digits", "--num-samples", "2", "--max-epochs", "2", "--searcher", "random",
             "--scheduler", "fifo", "--storage", sys.argv[1]])
(trials,) = Path(sys.argv[1]).glob("digits/*/trials.json")
print(json.dumps({"code": code, "pandas": loaded("pandas"), "trials": json.loads(trials.read_text())}))
"""


@pytest.mark.integration
def test_a_sweeps_driver_reads_its_trials_epochs_without_loading_pandas(tmp_path):
    # Digits' split kept in the session's dataset cache, as after a user's first sweep: making it
    # runs scikit-learn, whose input checks load pandas where it is bound.
    load_job("digits").load_data()
    env = {**os.environ, "TUNING_SERVICE_WORKERS_KEEP_S": "0"}
    done = subprocess.run(
        [sys.executable, "-c", SWEEP, str(tmp_path / "results")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["code"] == 0 and seen["pandas"] is False
    histories = [[h["training_iteration"] for h in trial["history"]] for trial in seen["trials"]]
    assert histories == [[1, 2], [1, 2]]  # every epoch of both trials, from their result.json
    assert all(h["val_accuracy"] > 0 and h["loss"] > 0 for t in seen["trials"] for h in t["history"])
