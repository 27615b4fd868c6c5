"""CIFAR-10 (60000 32x32 colour images) from Keras' dataset cache: the deep-MLP family of Hands-On ML ch. 11."""

from __future__ import annotations

from pathlib import Path

from tuning_service.imagedata import image_dataset
from tuning_service.job import Dataset, Job
from tuning_service.models import build_mlp
from tuning_service.space import Choice, Float, Int


def load_data(*, limit: int | None = None, data_dir: str | Path | None = None, seed: int = 0) -> Dataset:
    """45000 train / 5000 validation / 10000 test images, standardized with train statistics."""
    # Standardized inputs are what makes a SELU net self-normalizing; ELU nets do not mind.
    return image_dataset("cifar10", limit=limit, data_dir=data_dir, seed=seed, standardize=True)


# Two branches of the exercise: ELU + He init, with or without batch norm; or SELU +
# LeCun init + alpha dropout. `initializer: auto` picks He or LeCun from the activation.
JOB = Job(
    name="cifar10",
    description="CIFAR-10 (keras.datasets cache, 32x32x3, 10 classes), deep MLP: ELU/BN or SELU",
    space={
        # Grid: the exercise's learning rates for the alpha-dropout grid it left undone.
        "layers": Int(5, 20, grid=(10, 20)),
        "learning_rate": Float(1e-5, 1e-2, log=True, grid=(1e-4, 3e-4, 5e-4, 1e-3)),
        "activation": Choice(("elu", "selu")),
        "batch_norm": Choice((False, True), when={"activation": ("elu",)}),
        "alpha_dropout": Float(0.0, 0.4, grid=(0.05, 0.1, 0.2, 0.4), when={"activation": ("selu",)}),
        "batch_size": Choice((32, 64, 128)),
    },
    load_data=load_data,
    build_model=build_mlp,
    metric="val_accuracy",
    mode="max",
    max_epochs=50,
    defaults={"units": 100, "initializer": "auto", "optimizer": "nadam", "patience": 10},
)
