"""Model-cost objectives the trainable measures itself: parameter count and inference latency."""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

# The same protocol for every trial of every sweep, so latencies compare across trials.
LATENCY_BATCH = 32
LATENCY_WARMUP = 3
LATENCY_REPEATS = 9


def count_params(model: Any) -> int:
    """Every weight of the model, trainable or not (Keras' ``count_params``): a `KerasModel`'s
    Keras model, or a shared-graph model's weights in the same order and number."""
    keras_model = getattr(model, "model", None)
    if keras_model is not None:
        return int(keras_model.count_params())
    return int(sum(int(np.prod(w.shape)) for w in model.weights))


def inference_latency_ms(keras_model: Any, x: np.ndarray) -> float:
    """Milliseconds per sample of ``keras_model.predict_on_batch`` on a fixed batch.

    The protocol, the same for every trial: a batch of LATENCY_BATCH rows of ``x`` (the
    validation inputs, repeated if fewer), LATENCY_WARMUP untimed calls (the first traces
    and compiles the predict function), then the median of LATENCY_REPEATS timed calls,
    divided by the batch size. The median keeps one call delayed by a busy machine from
    deciding the figure. It times a freshly built Keras model of the trial's configuration,
    whatever the trial trains with (Keras' fit or the shared graph): inference in production
    is a Keras model's, and the weights' values do not change its cost.
    """
    rows = np.resize(np.asarray(x), (LATENCY_BATCH, *np.asarray(x).shape[1:])).astype("float32")
    for _ in range(LATENCY_WARMUP):
        keras_model.predict_on_batch(rows)
    times = []
    for _ in range(LATENCY_REPEATS):
        started = time.perf_counter()
        keras_model.predict_on_batch(rows)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000.0 / LATENCY_BATCH
