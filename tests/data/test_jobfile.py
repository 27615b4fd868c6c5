"""Job files (YAML / TOML / JSON over a CSV): what they accept, infer and refuse."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tuning_service.core.errors import InputError
from tuning_service.data.catalog import load_job
from tuning_service.data.jobfile import DEFAULT_SPACE

YAML = """\
name: churn
description: churn from a CSV
csv: data/customers.csv
target: label
ignore: [id]
max_epochs: 3
defaults: {optimizer: adam, layers: 1}
space:
  learning_rate: {type: float, low: 1e-3, high: 1e-2, log: true}
  units: [8, 16]
"""


@pytest.fixture
def job_dir(tmp_path, tiny_files):
    tiny_files.table(tmp_path / "data" / "customers.csv")
    return tmp_path


def _write(path, text):
    path.write_text(text)
    return str(path)


def test_a_yaml_job_reads_its_csv_relative_to_the_file(job_dir, monkeypatch, tmp_path):
    ref = _write(job_dir / "churn.yaml", YAML)
    monkeypatch.chdir(tmp_path.parent)  # the CSV path is relative to the job file, not the cwd
    job = load_job(ref)
    assert job.name == "churn" and job.metric == "val_accuracy" and job.mode == "max" and job.max_epochs == 3
    assert list(job.space) == ["learning_rate", "units"] and job.defaults == {
        "optimizer": "adam",
        "layers": 1,
    }
    data = job.load_data(limit=40)
    assert data.task == "binary" and len(data.x_train) == 40
    # age, spend (numeric) + plan one-hot (basic, plus, pro, maybe missing); id ignored
    assert data.x_train.shape[1] in (5, 6) and np.isfinite(data.x_train).all()
    assert set(np.unique(data.y_train)) == {0.0, 1.0}


def test_toml_and_json_job_files_are_the_same_settings(job_dir):
    toml = _write(
        job_dir / "churn.toml",
        'csv = "data/customers.csv"\ntarget = "label"\nignore = ["id"]\n\n'
        '[space]\nunits = [8, 16]\nlearning_rate = {type = "float", low = 1e-3, high = 1e-2, log = true}\n',
    )
    as_json = _write(job_dir / "churn.json", json.dumps({"csv": "data/customers.csv", "target": "label"}))
    assert load_job(toml).space["units"].values == (8, 16)
    assert list(load_job(as_json).space) == list(DEFAULT_SPACE)  # no space: the default one


def test_a_job_file_declares_objectives_and_constraints_its_sweeps_use(job_dir):
    from tuning_service.core.spec import SweepSpec
    from tuning_service.sweeps.runner import prepare

    text = YAML + "objectives: [val_accuracy:max, params:min]\nconstraints: ['params<=5000']\n"
    ref = _write(job_dir / "churn.yaml", text)
    job = load_job(ref)
    assert job.objectives == ("val_accuracy:max", "params:min") and job.constraints == ("params<=5000",)
    spec = SweepSpec(job=ref, searcher="nsga2", storage=str(job_dir / "results"))
    prepared = prepare(spec, job)
    assert [str(o) for o in prepared.objectives] == ["val_accuracy:max", "params:min"]
    assert prepared.spec.objectives == job.objectives  # recorded with the sweep, for resume and results
    # The command line's own objectives win over the job's; its constraints stay unless given.
    own = prepare(spec.replace(objectives=("val_loss:min", "latency_ms:min")), job)
    assert [str(o) for o in own.objectives] == ["val_loss:min", "latency_ms:min"]
    assert own.job.metric == "val_loss" and own.job.mode == "min"
    assert [str(c) for c in own.constraints] == ["params<=5000"]


def test_task_metric_and_mode_follow_the_target(job_dir):
    import pandas as pd

    frame = pd.read_csv(job_dir / "data" / "customers.csv")
    frame["amount"] = frame["spend"] * 2.5 + 0.1
    frame.drop(columns="label").to_csv(job_dir / "r.csv", sep=";", index=False)
    ref = _write(job_dir / "r.yaml", "csv: r.csv\ntarget: amount\nseparator: ';'\nignore: [id]\n")
    job = load_job(ref)
    assert job.metric == "val_loss" and job.mode == "min"
    assert job.load_data().task == "regression"
    frame.assign(amount=frame["plan"]).to_csv(job_dir / "m.csv", index=False)
    ref = _write(job_dir / "m.yaml", "csv: m.csv\ntarget: amount\nignore: [id, plan]\n")
    assert load_job(ref).load_data().num_classes == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("csv: data/customers.csv\ntarget: label\ntargt: x\n", "unknown key 'targt' (accepted: "),
        (
            "csv: data/customers.csv\ntarget: label\nmax_epochs: ten\n",
            "key 'max_epochs' must be an integer >= 1, got 'ten'",
        ),
        (
            "csv: data/customers.csv\ntarget: label\nignore: id\n",
            "key 'ignore' must be a list of column names, got 'id'",
        ),
        ("csv: data/customers.csv\ntarget: [label]\n", "key 'target' must be a column name, got ['label']"),
        (
            "csv: data/customers.csv\ntarget: label\ntask: classify\n",
            "key 'task' must be one of binary, multiclass, regression",
        ),
        (
            "csv: data/customers.csv\ntarget: label\ntest_size: 2\n",
            "key 'test_size' must be a number between 0 and 1, got 2",
        ),
        (
            "csv: data/customers.csv\ntarget: label\nspace: 3\n",
            "key 'space' must be a mapping of parameter names, got 3",
        ),
        ("target: label\n", "missing required key 'csv'"),
        (
            "csv: data/customers.csv\ntarget: label\nname: ../up\n",
            "key 'name' must be up to 100 letters, digits",
        ),
        (
            "csv: data/customers.csv\ntarget: label\nmetric: val_auc\n",
            "key 'metric': a binary job reports val_accuracy, val_loss",
        ),
        ("csv: data/customers.csv\ntarget: label\nspace: {lr: [0.1, 0.01]}\n", "unknown model setting 'lr'"),
        (
            "csv: data/customers.csv\ntarget: label\nspace: {units: {type: int, low: 8}}\n",
            "space: parameter 'units': int range needs a number for high",
        ),
        (
            "csv: data/customers.csv\ntarget: label\nobjectives: [val_accuracy:max, size:min]\n",
            "key 'objectives': 'size:min': unknown objective 'size'; choose one of: latency_ms, loss, params,",
        ),
        (
            "csv: data/customers.csv\ntarget: label\nobjectives: [val_accuracy:max, params:least]\n",
            "key 'objectives': 'params:least': the direction must be max or min, got 'least'",
        ),
        (
            "csv: data/customers.csv\ntarget: label\nconstraints: ['params=<5']\n",
            "key 'constraints': 'params=<5': write NAME OP NUMBER",
        ),
        (
            "csv: data/customers.csv\ntarget: label\nobjectives: val_accuracy:max\n",
            "key 'objectives' must be a list",
        ),
        ("- just\n- a list\n", "expected a mapping of job settings, got list"),
        ("csv: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_job_files_are_refused_naming_the_key(job_dir, text, message):
    ref = _write(job_dir / "bad.yaml", text)
    with pytest.raises(InputError) as info:
        load_job(ref)
    assert message in str(info.value) and str(info.value).startswith(ref)
