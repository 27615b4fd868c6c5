"""Pima Indians diabetes (768 patients, 8 measurements), binary diagnosis by a small MLP."""

from __future__ import annotations

from pathlib import Path

from tuning_service.job import Dataset, Job
from tuning_service.models import build_mlp
from tuning_service.space import Choice
from tuning_service.tabular import TableSpec, read_csv, to_dataset

CSV = Path(__file__).parent / "data" / "pima_diabetes.csv"

# A glucose, blood pressure, skin fold, insulin or BMI of 0 means "not measured":
# those become missing and are imputed with train medians.
TABLE = TableSpec(
    target="Outcome",
    task="binary",
    zero_is_missing=("Glucose", "BloodPressure", "SkinThickness", "Insulin", "BMI"),
    test_size=0.2,
    val_size=0.2,
)


def load_data(*, limit: int | None = None, data_dir: str | Path | None = None, seed: int = 0) -> Dataset:
    """768 rows: 20% test, 20% of the rest validation, stratified by Outcome."""
    return to_dataset(
        read_csv(CSV, where="pima_diabetes"), TABLE, limit=limit, seed=seed, where="pima_diabetes"
    )


JOB = Job(
    name="pima_diabetes",
    description="Pima Indians diabetes (768 rows, binary), MLP; the scikeras grid of the tutorial",
    space={
        "units": Choice((16, 32, 64)),
        "batch_size": Choice((16, 32, 64)),
        "activation": Choice(("relu", "tanh", "sigmoid")),
        "optimizer": Choice(("adam", "sgd", "adagrad")),
        "learning_rate": Choice((0.01, 0.05, 0.1, 0.3)),
    },
    load_data=load_data,
    build_model=build_mlp,
    metric="val_accuracy",
    mode="max",
    max_epochs=50,
    defaults={"layers": 2},
)
