"""Tiny real sweeps of the new jobs on the session's shared local Ray."""

from __future__ import annotations

import json

import pytest

from tuning_service.cli import main
from tuning_service.core.spec import SweepSpec
from tuning_service.sweeps.runner import run_sweep

pytestmark = pytest.mark.integration


def test_a_yaml_job_over_a_csv_runs_end_to_end(ray_local, tmp_path, tiny_files, capsys):
    tiny_files.table(tmp_path / "customers.csv", rows=200)
    (tmp_path / "churn.yaml").write_text(
        "name: churn\ncsv: customers.csv\ntarget: label\nignore: [id]\n"
        "defaults: {layers: 1}\nspace:\n  units: [4, 8]\n  learning_rate: {type: float, low: 1e-3, high: 3e-2, log: true}\n"
    )
    storage = tmp_path / "results"
    argv = ["-q", "run", str(tmp_path / "churn.yaml"), "--searcher", "random", "--scheduler", "fifo"]
    code = main(
        [*argv, "--num-samples", "2", "--max-epochs", "2", "--storage", str(storage), "--format", "json"]
    )
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["job"] == "churn" and record["metric"] == "val_accuracy" and 0 <= record["value"] <= 1
    assert set(record["config"]) == {"units", "learning_rate"}
    (sweep_dir,) = (storage / "churn").iterdir()
    assert (sweep_dir / "best_config.json").exists()


def test_telco_sweeps_with_optuna_and_asha(ray_local, storage):
    spec = SweepSpec(
        job="telco_churn",
        searcher="optuna",
        scheduler="asha",
        num_samples=2,
        max_epochs=2,
        data_limit=256,
        storage=str(storage),
    )
    result = run_sweep(spec)
    assert len(result.trials) == 2 and result.best is not None
    config = result.best.config
    assert config["batch_size"] in (64, 128, 256) and 32 <= config["units_1"] <= 512
