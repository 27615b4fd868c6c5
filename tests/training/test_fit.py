"""The one fit helper: a refit and a learning-rate test start where the sweep's trial started."""

from __future__ import annotations

import numpy as np
import pytest

from tuning_service.data.catalog import load_job
from tuning_service.training.fit import fit, fresh_model, trial_seed
from tuning_service.training.pipeline import Split
from tuning_service.training.trialmodel import KerasModel, trial_models


def _initial_weights(model) -> list[np.ndarray]:
    if isinstance(model, KerasModel):
        return [np.asarray(w) for w in model.model.get_weights()]
    return [np.asarray(w) for w in model.weights]


@pytest.mark.parametrize("job_name", ["digits", "digits_cnn"])
def test_a_fresh_model_starts_from_the_weights_the_trial_of_its_config_trained_from(job_name):
    job = load_job(job_name)
    data = job.load_data(limit=120)
    config = job.model_config({"learning_rate": 0.01, "units": 24, "batch_size": 32})
    seed = trial_seed(7, config)
    (trial,) = trial_models(
        job, config, data.input_spec, [Split.from_arrays(data.x_train, data.y_train)], seed=seed
    )
    refit = fresh_model(job, config, data.input_spec, seed=seed)
    other = fresh_model(job, config, data.input_spec, seed=seed + 1)
    mine, theirs = _initial_weights(trial), [np.asarray(w) for w in refit.get_weights()]
    assert len(mine) == len(theirs)
    for a, b in zip(mine, theirs, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, np.asarray(b)) for a, b in zip(mine, other.get_weights(), strict=True))


def test_fit_returns_the_last_epochs_values_and_stops_at_a_nan_loss_only_when_asked():
    job = load_job("digits")
    data = job.load_data(limit=120)
    config = job.model_config({"learning_rate": 0.01, "units": 16, "batch_size": 32})
    model = fresh_model(job, config, data.input_spec, seed=0)
    logs = fit(
        model, data.x_train, data.y_train, epochs=2, batch_size=32, validation_data=(data.x_val, data.y_val)
    )
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(logs)
    assert all(np.isfinite(v) for v in logs.values())
    # NaN targets make a regression's loss NaN: TerminateOnNaN ends training at the first NaN
    # (within the first epoch); without it all three epochs run.
    import keras

    epochs: dict[bool, int] = {}
    for stop in (True, False):
        count = keras.callbacks.LambdaCallback(
            on_epoch_begin=lambda epoch, logs, stop=stop: epochs.__setitem__(stop, epoch + 1)
        )
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        fit(
            model,
            np.ones((16, 3)),
            np.full(16, np.nan),
            epochs=3,
            batch_size=4,
            stop_on_nan=stop,
            callbacks=[count],
        )
    assert epochs == {True: 1, False: 3}
