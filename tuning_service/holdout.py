"""Score one configuration on the held-out test split, outside Ray: the number a sweep never saw."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuning_service.job import Dataset, Job


def fit_and_test(
    job: Job, config: Mapping[str, Any], dataset: Dataset, *, epochs: int, seed: int = 0
) -> dict[str, float]:
    """Train ``config`` on the train split for ``epochs``, then evaluate on validation and test.

    Called after a sweep for its best configuration (and by the baseline tests): the
    sweep chose on validation, so test is scored exactly once, here. Returns Keras'
    metrics prefixed ``val_`` and ``test_`` (``test_accuracy``, ``test_loss``, ...).
    """
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model_config = job.model_config(config)
    model = job.build_model(model_config, dataset.input_spec)
    model.fit(
        dataset.x_train,
        dataset.y_train,
        batch_size=int(model_config.get("batch_size", job.batch_size)),
        epochs=epochs,
        shuffle=True,
        verbose=0,
    )
    scores: dict[str, float] = {}
    for split, x, y in (("val", dataset.x_val, dataset.y_val), ("test", dataset.x_test, dataset.y_test)):
        logs = model.evaluate(x, y, verbose=0, return_dict=True)
        scores.update({f"{split}_{k}": float(v) for k, v in logs.items()})
    return scores
