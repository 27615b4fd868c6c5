"""MNIST handwritten digits (70000 28x28 images) from Keras' dataset cache, classified by an MLP."""

from __future__ import annotations

from pathlib import Path

from tuning_service.imagedata import image_dataset
from tuning_service.job import Dataset, Job
from tuning_service.models import build_mlp
from tuning_service.space import Choice, Float, Int


def load_data(*, limit: int | None = None, data_dir: str | Path | None = None, seed: int = 0) -> Dataset:
    """55000 train / 5000 validation / 10000 test images; pixels to [0, 1]."""
    return image_dataset("mnist", limit=limit, data_dir=data_dir, seed=seed)


JOB = Job(
    name="mnist",
    description="MNIST digits (keras.datasets cache, 28x28, 10 classes), MLP",
    space={
        "layers": Int(1, 3),
        "units": Int(64, 512, step=64, grid=(128, 512)),
        "activation": Choice(("relu", "elu", "selu")),
        "initializer": Choice(("auto", "glorot_uniform")),
        "dropout": Float(0.0, 0.5, grid=(0.0, 0.3)),
        "learning_rate": Float(1e-4, 1e-2, log=True, grid=(1e-3, 1e-2)),
        "batch_size": Choice((32, 64, 128, 256)),
    },
    load_data=load_data,
    build_model=build_mlp,
    metric="val_accuracy",
    mode="max",
    max_epochs=20,
    defaults={"optimizer": "adam", "patience": 5},
)
