"""Fashion-MNIST (70000 28x28 clothing images) from Keras' dataset cache: the tutorial's regularized MLP."""

from __future__ import annotations

from pathlib import Path

from tuning_service.imagedata import image_dataset
from tuning_service.job import Dataset, Job
from tuning_service.models import build_mlp
from tuning_service.space import Choice, Float


def load_data(*, limit: int | None = None, data_dir: str | Path | None = None, seed: int = 0) -> Dataset:
    """55000 train / 5000 validation / 10000 test images; pixels to [0, 1]."""
    return image_dataset("fashion_mnist", limit=limit, data_dir=data_dir, seed=seed)


# The tutorial: Dense(64) with L2 kernel / L2 bias / L1 activity regularizers, Dense(100,
# he_uniform), Dropout(0.5); Adam(beta_1=0.89) on CosineDecayRestarts(0.01, 1000);
# EarlyStopping(patience=10). Each of those is a dimension here, centred on its value;
# a grid keeps the regularizers, beta_1 and the learning rate at that centre.
JOB = Job(
    name="fashion_mnist",
    description="Fashion-MNIST (keras.datasets cache, 28x28, 10 classes), regularized MLP",
    space={
        "units_1": Choice((64, 128, 256)),
        "units_2": Choice((100, 200, 300)),
        "initializer": Choice(("he_uniform", "he_normal")),
        "kernel_l2": Float(1e-6, 1e-2, log=True, grid=(1e-4,)),
        "bias_l2": Float(1e-6, 1e-2, log=True, grid=(1e-4,)),
        "activity_l1": Float(1e-8, 1e-4, log=True, grid=(1e-6,)),
        "dropout": Float(0.0, 0.5, grid=(0.2, 0.5)),
        "learning_rate": Float(1e-3, 3e-2, log=True, grid=(1e-2,)),
        "decay_steps": Choice((500, 1000, 2000)),
        "beta_1": Float(0.85, 0.95, grid=(0.89,)),
        "batch_size": Choice((32, 64, 128)),
    },
    load_data=load_data,
    build_model=build_mlp,
    metric="val_accuracy",
    mode="max",
    max_epochs=30,
    defaults={
        "layers": 2,
        "activation": "relu",
        "optimizer": "adam",
        "lr_schedule": "cosine_restarts",
        "patience": 10,
    },
)
