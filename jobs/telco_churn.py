"""IBM's Telco customer churn table (7043 customers), binary churn prediction by an MLP."""

from __future__ import annotations

from pathlib import Path

from tuning_service.job import Dataset, Job
from tuning_service.models import build_mlp
from tuning_service.space import Choice, Int
from tuning_service.tabular import TableSpec, read_csv, to_dataset

CSV = Path(__file__).parent / "data" / "telco_churn.csv"

# The tutorial's preprocessing: `TotalCharges` to numbers and its 11 blank rows dropped,
# `customerID` is not a feature, 25% stratified test split, scaling fitted on train.
# Categoricals are one-hot encoded where the tutorial used ordinal codes: contract or
# payment method have no order, and one-hot gains about half a point of accuracy.
TABLE = TableSpec(
    target="Churn",
    task="binary",
    ignore=("customerID",),
    numeric=("TotalCharges",),
    drop_missing=("TotalCharges",),
    encoding="onehot",
    test_size=0.25,
    val_size=0.2,
)


def load_data(*, limit: int | None = None, data_dir: str | Path | None = None, seed: int = 0) -> Dataset:
    """7032 usable rows: 25% test, 20% of the rest validation; Churn Yes -> 1."""
    return to_dataset(read_csv(CSV, where="telco_churn"), TABLE, limit=limit, seed=seed, where="telco_churn")


JOB = Job(
    name="telco_churn",
    description="IBM Telco customer churn (7032 rows, binary), two-layer MLP",
    space={
        # Grid: the tutorial's GridSearchCV nodes.
        "units_1": Int(32, 512, step=32, grid=(64, 128, 256)),
        "units_2": Int(32, 512, step=32, grid=(64, 128, 256)),
        "learning_rate": Choice((1e-2, 1e-3, 1e-4)),
        "activation": Choice(("relu", "sigmoid")),
        "batch_size": Choice((64, 128, 256)),
    },
    load_data=load_data,
    build_model=build_mlp,
    metric="val_accuracy",
    mode="max",
    max_epochs=30,
    defaults={"layers": 2, "optimizer": "adam"},
)
