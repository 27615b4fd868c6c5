"""How this package trains a Keras model, for the trial, the refit and the learning-rate range test.

One place for both halves of "the same model, trained the same way": the seed a configuration's
model starts from, and how Keras' ``fit`` is called (silent, the caller's shuffling, NaN
handling). A refit then starts from the initial weights the sweep measured, and a change to how
models are trained reaches all three.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tuning_service.training.kerasstate import clear_session, set_random_seed

if TYPE_CHECKING:
    from tuning_service.core.job import InputSpec, Job


def trial_seed(sweep_seed: int, config: Mapping[str, Any]) -> int:
    """A seed that depends on the sweep's seed and the configuration, not on timing."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return (sweep_seed * 1_000_003 + zlib.crc32(blob)) % (2**31 - 1)


def fresh_model(job: Job, model_config: Mapping[str, Any], spec: InputSpec, *, seed: int) -> Any:
    """The job's Keras model of ``model_config``, built in a cleared Keras session from ``seed``."""
    clear_session()
    set_random_seed(seed)
    return job.build_model(dict(model_config), spec)


def fit(
    model: Any,
    x: Any,
    y: Any = None,
    *,
    epochs: int = 1,
    batch_size: int | None = None,
    validation_data: Any = None,
    shuffle: bool = True,
    stop_on_nan: bool = True,
    callbacks: Sequence[Any] = (),
) -> dict[str, float]:
    """Keras' ``fit``, silent; the last epoch's history values (training and validation metrics).

    ``stop_on_nan`` ends the epoch at the first NaN loss (the rest of a diverged trial is
    wasted time); the learning-rate range test turns it off to see its curve to the end.
    """
    import keras

    stop = [keras.callbacks.TerminateOnNaN()] if stop_on_nan else []
    history = model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=epochs,
        validation_data=validation_data,
        shuffle=shuffle,
        verbose=0,
        callbacks=[*stop, *callbacks],
    )
    return {k: float(v[-1]) for k, v in history.history.items() if v}
