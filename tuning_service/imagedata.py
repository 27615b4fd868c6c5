"""The job API's image datasets: what job modules import to load MNIST, Fashion-MNIST or CIFAR-10.

`tuning_service.training.imagedata` holds the code (it reads CIFAR-10 with Keras' loader);
this module keeps the import path jobs use (``from tuning_service.imagedata import
image_dataset``) and re-exports its public names only.
"""

from __future__ import annotations

from tuning_service.training.imagedata import (
    CIFAR10_ORIGIN,
    CONNECT_TIMEOUT_S,
    KERAS_ORIGIN,
    OFFLINE_ENV,
    SOURCES,
    Arrays,
    ImageSource,
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
    "image_dataset",
    "keras_cache_dir",
    "load_arrays",
]
