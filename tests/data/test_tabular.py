"""Telco and Pima through their own pipelines, and the shared CSV pipeline on tables the tests write."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jobs import pima_diabetes, telco_churn
from tuning_service.core.errors import InputError
from tuning_service.data.tabular import TableSpec, infer_task, read_csv, to_dataset

DATA = Path(telco_churn.__file__).parent / "data"
SHA256 = {
    "telco_churn.csv": "a0ea74c48c1063be89a73ce3fb868593604c0129f2bf581934f04983d728b3b5",
    "pima_diabetes.csv": "b78029447fae2743b3218bb2b76ef0d04afe8d7e55ce2faf4d1ec82d8f8ae8ac",
}


@pytest.mark.parametrize("name", sorted(SHA256))
def test_shipped_csvs_are_the_published_files(name):
    assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == SHA256[name]


@pytest.fixture(scope="module")
def telco():
    return telco_churn.JOB.load_data()


def test_telco_drops_the_11_blank_total_charges_and_keeps_7032_rows(telco):
    raw = read_csv(telco_churn.CSV)
    assert len(raw) == 7043 and (raw["TotalCharges"].str.strip() == "").sum() == 11
    sizes = telco.sizes()
    assert sum(sizes.values()) == 7032
    assert sizes["test"] == 1758  # the tutorial's 25% test split


def test_telco_target_is_0_1_stratified_and_features_scaled_on_train(telco):
    for y in (telco.y_train, telco.y_val, telco.y_test):
        assert set(np.unique(y)) == {0.0, 1.0}
        assert abs(y.mean() - 1869 / 7032) < 0.01  # every split keeps the churn rate
    # 4 numeric columns, scaled on train; 15 categoricals one-hot (41 columns); no customerID.
    assert telco.x_train.shape[1] == 45 and telco.x_train.dtype == np.float32
    numeric, one_hot = telco.x_train[:, :4], telco.x_train[:, 4:]
    np.testing.assert_allclose(numeric.mean(axis=0), 0, atol=1e-4)
    assert not np.allclose(telco.x_test[:, :4].mean(axis=0), 0, atol=1e-4)  # scaler never saw test
    assert set(np.unique(one_hot)) == {0.0, 1.0}


def test_ordinal_encoding_is_the_tutorials_alternative(telco):
    from dataclasses import replace

    data = to_dataset(read_csv(telco_churn.CSV), replace(telco_churn.TABLE, encoding="ordinal"), where="t")
    assert data.x_train.shape[1] == 19  # one scaled code per column
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0, atol=1e-4)


def test_telco_baseline_mlp_reaches_the_tutorials_test_accuracy(telco):
    """Dense 64-64 ReLU, Adam, 10 epochs on the job's own splits: the tutorial reports 0.781."""
    import keras

    keras.utils.set_random_seed(0)
    baseline = {"units_1": 64, "units_2": 64, "activation": "relu", "learning_rate": 1e-3}
    model = telco_churn.JOB.build_model(telco_churn.JOB.model_config(baseline), telco.input_spec)
    model.fit(telco.x_train, telco.y_train, epochs=10, batch_size=32, verbose=0)
    assert model.evaluate(telco.x_test, telco.y_test, verbose=0, return_dict=True)["accuracy"] >= 0.78


def test_pima_splits_and_imputes_missing_zeros_from_train():
    data = pima_diabetes.JOB.load_data()
    assert data.sizes() == {"train": 491, "validation": 123, "test": 154}
    columns = list(read_csv(pima_diabetes.CSV).columns[:-1])
    for name in ("Glucose", "BMI"):
        # A zero left in would sit about 4 standard deviations below the mean.
        column = columns.index(name)
        assert min(x[:, column].min() for x in (data.x_train, data.x_val, data.x_test)) > -3.2


def _frame(rows: int = 100, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "n": rng.normal(size=rows),
            "code": rng.choice(["a", "b"], rows),
            "y": rng.choice(["no", "yes"], rows),
        }
    )


def test_zero_is_missing_imputes_train_median():
    frame = _frame()
    frame["g"] = np.arange(100) + 100.0
    frame.loc[:9, "g"] = 0
    data = to_dataset(frame, TableSpec("y", zero_is_missing=("g",)), where="t")
    g = data.x_train[:, 1]  # numeric columns first: n, g
    # Imputed zeros take the median's scaled value: near 0, never the far-below-range zero.
    assert g.min() > -2


def test_one_hot_encoding_and_missing_categories():
    frame = _frame()
    frame.loc[0:4, "code"] = None
    data = to_dataset(frame, TableSpec("y", test_size=0.1, val_size=0.1), where="t")
    assert data.x_train.shape[1] == 1 + 3  # n, code a / b / (missing)
    assert data.task == "binary" and data.y_train.dtype == np.float32


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (["yes", "no", "yes"], "binary"),
        (["a", "b", "c"], "multiclass"),
        ([0, 1, 1, 0], "binary"),
        ([0, 1, 2, 3, 4], "multiclass"),
        ([0.5, 1.25, 3.0, 7.1], "regression"),
        (list(range(100)), "regression"),
        ([True, False], "binary"),
    ],
)
def test_task_is_inferred_from_the_target(values, task):
    assert infer_task(pd.Series(values)) == task


def test_a_typo_in_a_numeric_column_is_named_with_its_row():
    frame = _frame()
    frame["n"] = frame["n"].round(3).astype(str)
    frame.loc[41, "n"] = "12,5x"
    with pytest.raises(
        InputError, match=r"t: column 'n' is numeric but row 43 holds '12,5x' \(1 such value\)"
    ):
        to_dataset(frame, TableSpec("y"), where="t")


def test_blank_numbers_are_missing_values_not_typos():
    frame = _frame()
    frame["n"] = frame["n"].round(3).astype(str)
    frame.loc[[2, 7], "n"] = " "
    data = to_dataset(frame, TableSpec("y"), where="t")
    assert np.isfinite(data.x_train).all()


def test_a_one_class_target_is_refused():
    frame = _frame()
    frame["y"] = "yes"
    with pytest.raises(InputError, match="target column 'y' has only one class"):
        to_dataset(frame, TableSpec("y"), where="t")


def test_regression_targets_stay_numbers():
    frame = _frame()
    frame["y"] = frame["n"] * 3.5 + 0.25
    data = to_dataset(frame, TableSpec("y"), where="t")
    assert data.task == "regression" and data.num_classes is None and data.y_train.dtype == np.float32
