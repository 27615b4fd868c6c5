"""A worker's kept model trains a later trial exactly as a new model would, without tracing again."""

from __future__ import annotations

import numpy as np
import pytest

from tuning_service.job import InputSpec
from tuning_service.modelcache import ModelCache
from tuning_service.models import build_mlp
from tuning_service.pipeline import Split

SPEC = InputSpec(shape=(12,), task="binary")
BASE = {"layers": 2, "units": 16, "dropout": 0.2, "batch_norm": True, "optimizer": "adam"}


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 12)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("float32")
    return Split.from_arrays(x[:160], y[:160]), Split.from_arrays(x[160:], y[160:])


def _train(model, cfg, data, epochs=2, seed=3):
    fit, val = data
    batches = fit.batches(int(cfg.get("batch_size", 32)), shuffle_seed=seed)
    history = [
        model.fit(batches, initial_epoch=e, epochs=e + 1, validation_data=val.batches(32), verbose=0).history
        for e in range(epochs)
    ]
    return history, [v.numpy() for v in model.variables + model.optimizer.variables]


def _seeded(cache, cfg, seed):
    import keras

    keras.backend.clear_session(free_memory=False)  # as the trainable does between trials
    keras.utils.set_random_seed(seed)
    return cache.build(lambda: build_mlp(cfg, SPEC), cfg)


def test_a_kept_model_trains_a_new_trial_exactly_like_a_new_model(monkeypatch):
    import keras

    # A train step's Python body runs only while TensorFlow traces it.
    traced = []
    step = keras.Model.train_step
    monkeypatch.setattr(keras.Model, "train_step", lambda self, data: traced.append(1) or step(self, data))
    data = _data()
    first = {**BASE, "learning_rate": 1e-2, "batch_size": 16}
    second = {**BASE, "learning_rate": 3e-3, "batch_size": 32}
    alone = _train(_seeded(ModelCache(), second, seed=7), second, data)

    cache = ModelCache()
    model = _seeded(cache, first, seed=1)
    _train(model, first, data, epochs=1)
    traces = len(traced)
    cache.release([model])
    again = _seeded(cache, second, seed=7)
    assert again is model and cache.reused == 1
    reused = _train(again, second, data)

    assert traces > 0 and len(traced) == traces, "the kept model traced its train step again"
    assert reused[0] == alone[0]
    for kept, new in zip(reused[1], alone[1], strict=True):
        np.testing.assert_array_equal(kept, new)


@pytest.mark.parametrize(
    "change",
    [
        {"units": 32},
        {"activation": "tanh"},
        {"optimizer": "sgd"},
        {"dropout": 0.3},
        {"lr_schedule": "exponential"},
    ],
)
def test_a_different_graph_gets_a_new_model(change):
    data = _data()
    cache = ModelCache()
    cfg = {
        **BASE,
        "learning_rate": 1e-2,
        **({"lr_schedule": "exponential"} if "lr_schedule" in change else {}),
    }
    model = _seeded(cache, cfg, seed=1)
    _train(model, cfg, data, epochs=1)
    cache.release([model])
    other = {**cfg, **change}
    if "lr_schedule" in change:  # a schedule bakes the learning rate into the graph
        other["learning_rate"] = 3e-3
    assert _seeded(cache, other, seed=2) is not model and cache.reused == 0


def test_models_from_a_jobs_own_builder_are_never_reused():
    import keras

    def own(cfg, spec):
        model = keras.Sequential([keras.Input(spec.shape), keras.layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer=keras.optimizers.Adam(cfg["learning_rate"]), loss="binary_crossentropy")
        return model

    fit, _ = _data()
    cache = ModelCache()
    model = cache.build(lambda: own({"learning_rate": 1e-2}, SPEC), {"learning_rate": 1e-2})
    model.fit(fit.batches(32, shuffle_seed=0), epochs=1, verbose=0)
    cache.release([model])
    assert cache.build(lambda: own({"learning_rate": 1e-3}, SPEC), {"learning_rate": 1e-3}) is not model


def test_the_cache_keeps_the_most_recently_used_models():
    data = _data()
    cache = ModelCache(kept=2)
    models = []
    for units in (8, 16, 24):
        cfg = {**BASE, "units": units, "learning_rate": 1e-2}
        model = _seeded(cache, cfg, seed=units)
        _train(model, cfg, data, epochs=1)
        models.append((cfg, model))
    cache.release([m for _, m in models])
    assert _seeded(cache, models[0][0], seed=0) is not models[0][1]  # evicted
    assert _seeded(cache, models[2][0], seed=0) is models[2][1]
