"""The loss and metrics Keras' compile makes of their names, for the shared graph to compute alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuning_service.training.sharedgraph.layers import Unsupported

# The loss names Keras' compile wraps around a function, and the Keras class wrapping the
# same function with the same defaults.
LOSSES = {
    "binary_crossentropy": "BinaryCrossentropy",
    "categorical_crossentropy": "CategoricalCrossentropy",
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "mse": "MeanSquaredError",
    "mean_squared_error": "MeanSquaredError",
    "mae": "MeanAbsoluteError",
    "mean_absolute_error": "MeanAbsoluteError",
    "huber": "Huber",
    "log_cosh": "LogCosh",
}


def loss_object(name: str, y_rank: int, outputs: int) -> Any:
    """The loss Keras' compile makes of ``name`` ("crossentropy" resolved as compile does)."""
    import keras

    if name.lower() in ("crossentropy", "ce"):
        if outputs == 1:
            name = "binary_crossentropy"
        elif y_rank < 2:
            name = "sparse_categorical_crossentropy"
        else:
            name = "categorical_crossentropy"
    if name not in LOSSES:
        raise Unsupported(f"loss {name!r}")
    return getattr(keras.losses, LOSSES[name])(name=name)


# Metric names Keras' compile turns into a mean of a per-sample function, and that function.
METRICS = {
    "mae": "mean_absolute_error",
    "mean_absolute_error": "mean_absolute_error",
    "mse": "mean_squared_error",
    "mean_squared_error": "mean_squared_error",
    "mape": "mean_absolute_percentage_error",
    "mean_absolute_percentage_error": "mean_absolute_percentage_error",
}


def metric_fn(name: str, y_rank: int, outputs: int) -> Callable[..., Any]:
    """The per-sample function of the metric Keras' compile makes of ``name``."""
    import functools

    import keras

    fn: Callable[..., Any]
    if name.lower() in ("accuracy", "acc"):
        if outputs == 1:
            return functools.partial(keras.metrics.binary_accuracy, threshold=0.5)
        fn = keras.metrics.sparse_categorical_accuracy if y_rank < 2 else keras.metrics.categorical_accuracy
        return fn
    if name not in METRICS:
        raise Unsupported(f"metric {name!r}")
    fn = getattr(keras.metrics, METRICS[name])
    return fn
