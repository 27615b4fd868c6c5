"""The job API: the image datasets (`image_dataset`) of `tuning_service.training.imagedata`."""

from __future__ import annotations

from tuning_service.training.imagedata import (
    CIFAR10_ORIGIN,
    CONNECT_TIMEOUT_S,
    KERAS_ORIGIN,
    OFFLINE_ENV,
    SOURCES,
    Arrays,
    ImageSource,
    dataset_cache_dir,
    image_dataset,
    keras_cache_dir,
    load_arrays,
)

__all__ = [
    "CIFAR10_ORIGIN",
    "CONNECT_TIMEOUT_S",
    "KERAS_ORIGIN",
    "OFFLINE_ENV",
    "SOURCES",
    "Arrays",
    "ImageSource",
    "dataset_cache_dir",
    "image_dataset",
    "keras_cache_dir",
    "load_arrays",
]
