"""Handwritten 8x8 digits bundled with scikit-learn, classified by an MLP or a small CNN (no download)."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

from tuning_service.job import Dataset, Job
from tuning_service.models import build_cnn, build_mlp
from tuning_service.space import Choice, Float, Int

if TYPE_CHECKING:
    import numpy as np


# Bumped whenever the split or its preprocessing changes, so that no older cached split is read.
SPLIT_VERSION = 1


def load_data(*, limit: int | None = None, data_dir: str | Path | None = None, seed: int = 0) -> Dataset:
    """1797 images: 20% test, then 20% of the rest validation, stratified; pixels to [0, 1].

    The split is kept in the dataset cache (``data_dir``, else Keras') once made: it is fixed for a
    scikit-learn version and seed, and importing scikit-learn (SciPy with it) to make it is most of
    what loading the data costs a sweep's start (`python -m benchmarks.startup`)."""
    # Imported here: both load NumPy, which commands that only list or read jobs never need.
    from tuning_service.data.arraycache import cached_arrays
    from tuning_service.imagedata import dataset_cache_dir

    name = f"tuning-service-digits-v{SPLIT_VERSION}-sklearn-{version('scikit-learn')}-seed-{seed}.npz"
    split = cached_arrays(dataset_cache_dir(data_dir) / name, lambda: _split(seed))
    x_train, y_train = split["x_train"], split["y_train"]
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]
    return Dataset(
        x_train, y_train, split["x_val"], split["y_val"], split["x_test"], split["y_test"],
        task="multiclass", num_classes=10,
    )  # fmt: skip


def _split(seed: int) -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32").reshape(-1, 8, 8)
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=0.2, stratify=y_rest, random_state=seed
    )
    return {
        "x_train": x_train,
        "y_train": y_train,
        "x_val": x_val,
        "y_val": y_val,
        "x_test": x_test,
        "y_test": y_test,
    }


JOB = Job(
    name="digits",
    description="scikit-learn's 8x8 handwritten digits (1797 images, 10 classes), MLP",
    space={
        "learning_rate": Float(1e-4, 3e-2, log=True, grid=(1e-3, 1e-2)),
        "units": Int(16, 256, log=True, grid=(32, 128)),
        "layers": Int(1, 3),
        "activation": Choice(("relu", "elu", "tanh")),
        "batch_size": Choice((16, 32, 64)),
    },
    load_data=load_data,
    build_model=build_mlp,
    metric="val_accuracy",
    mode="max",
    max_epochs=15,
    defaults={"optimizer": "adam"},
)


# The CNN option: two small conv blocks (8x8 -> 4x4 -> 2x2), then one Dense layer.
CNN_JOB = Job(
    name="digits_cnn",
    description="scikit-learn's 8x8 handwritten digits, small CNN (2 conv blocks + Dense)",
    space={
        "learning_rate": Float(1e-4, 3e-2, log=True, grid=(1e-3, 1e-2)),
        "filters": Choice((8, 16, 32)),
        "conv_layers": Int(1, 2),
        "units": Int(16, 128, log=True, grid=(32, 64)),
        "activation": Choice(("relu", "elu")),
        "batch_size": Choice((16, 32, 64)),
    },
    load_data=load_data,
    build_model=build_cnn,
    metric="val_accuracy",
    mode="max",
    max_epochs=15,
    defaults={"optimizer": "adam", "layers": 1},
)
