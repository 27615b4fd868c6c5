"""The shared graph trains every vocabulary setting exactly as a freshly built Keras model does."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from tuning_service.core.job import InputSpec, Job
from tuning_service.training.models import any_network, build_mlp
from tuning_service.training.pipeline import Split, epoch_order
from tuning_service.training.sharedgraph import GraphModel, data_specs
from tuning_service.training.trialmodel import KerasModel, trial_models

# Many Keras models built and trained one after another: the module takes tens of seconds.
pytestmark = pytest.mark.slow

EPOCHS = 2
RNG = np.random.default_rng(0)
X = RNG.normal(size=(96, 10)).astype("float32")
IMAGES = RNG.normal(size=(96, 6, 6)).astype("float32")
TARGETS = {
    "binary": (X[:, 0] + X[:, 1] > 0).astype("float32"),
    "multiclass": (np.abs(X[:, 0] * 3).astype("int64") % 4),
    "regression": (X[:, 0] - 2 * X[:, 1]).astype("float32"),
}
SPECS = {
    "binary": InputSpec((10,), "binary"),
    "multiclass": InputSpec((10,), "multiclass", 4),
    "regression": InputSpec((10,), "regression"),
    "images": InputSpec((6, 6), "multiclass", 4),
}

# Every setting of the vocabulary appears in at least one case; each case trains both ways.
CASES = {
    "relu-adam": ("binary", {"layers": 2, "units_1": 12, "units_2": 7}),
    "sigmoid-glorot-sgd": ("binary", {"activation": "sigmoid", "optimizer": "sgd", "learning_rate": 0.1}),
    "tanh-he-uniform-momentum-step": (
        "binary",
        {"activation": "tanh", "initializer": "he_uniform", "optimizer": "momentum", "lr_schedule": "step"},
    ),
    "elu-he-normal-nesterov-exponential": (
        "multiclass",
        {
            "activation": "elu",
            "initializer": "he_normal",
            "optimizer": "nesterov",
            "lr_schedule": "exponential",
        },
    ),
    "selu-lecun-alpha-dropout-nadam": (
        "multiclass",
        {"activation": "selu", "initializer": "auto", "alpha_dropout": 0.1, "optimizer": "nadam"},
    ),
    "dropout-adagrad-cosine-restarts": (
        "binary",
        {"dropout": 0.3, "optimizer": "adagrad", "lr_schedule": "cosine_restarts", "learning_rate": 0.05},
    ),
    "batch-norm-rmsprop-momentum": ("binary", {"batch_norm": True, "optimizer": "rmsprop", "momentum": 0.5}),
    "regularizers-adadelta-one-cycle": (
        "regression",
        {
            **{f"{w}_{n}": 1e-3 for w in ("kernel", "bias", "activity") for n in ("l1", "l2")},
            "optimizer": "adadelta",
            "learning_rate": 0.5,
            "lr_schedule": "one_cycle",
        },
    ),
    "adamw-weight-decay-beta": ("binary", {"optimizer": "adamw", "weight_decay": 0.01, "beta_1": 0.8}),
    "loss-override": ("binary", {"loss": "mse", "units": 9}),
    "cnn": ("images", {"architecture": "cnn", "filters": 3, "conv_layers": 2, "kernel_size": 2, "units": 5}),
}
# Defaults a case may override: small steps, several batches per epoch, a ragged last one.
BASE = {"units": 8, "layers": 1, "batch_size": 20, "decay_steps": 4, "learning_rate": 0.01}


def _splits(task: str) -> tuple[Split, Split]:
    x = IMAGES if task == "images" else X
    y = TARGETS["multiclass" if task == "images" else task]
    return Split.from_arrays(x[:70], y[:70]), Split.from_arrays(x[70:], y[70:])


def _train(way: str, cfg: dict, spec: InputSpec, fit: Split, val: Split, seed: int = 3):
    import keras

    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(seed)
    network = any_network(cfg, spec)
    model = (
        GraphModel(network, data_specs(fit.x, fit.y)) if way == "graph" else KerasModel(network.to_keras())
    )
    history = [
        model.fit_epoch(fit, val, batch_size=cfg["batch_size"], order=epoch_order(len(fit), seed, epoch))
        for epoch in range(EPOCHS)
    ]
    weights = model.weights if way == "graph" else [v for v in model.model.weights if "seed" not in v.path]
    return history, [np.asarray(w) for w in weights]


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_setting_trains_exactly_as_keras_does(case):
    task, settings = CASES[case]
    cfg = {**BASE, **settings}
    fit, val = _splits(task)
    keras_history, keras_weights = _train("keras", cfg, SPECS[task], fit, val)
    graph_history, graph_weights = _train("graph", cfg, SPECS[task], fit, val)
    assert [sorted(h) for h in graph_history] == [sorted(h) for h in keras_history]
    # Float rounding of a few ops may differ in the last bit (the graph's shapes are
    # unknown to TensorFlow); batch norm zeroes the gradient of the bias before it, and
    # Adam-like optimizers turn that gradient's rounding noise into steps of their own.
    tolerance = 2e-5 if cfg.get("batch_norm") else 1e-6
    for mine, theirs in zip(graph_history, keras_history, strict=True):
        for key in theirs:
            assert mine[key] == pytest.approx(theirs[key], abs=tolerance), (case, key)
    assert [w.shape for w in graph_weights] == [w.shape for w in keras_weights]
    for mine, theirs in zip(graph_weights, keras_weights, strict=True):
        np.testing.assert_allclose(mine, theirs, atol=1e-3 if cfg.get("batch_norm") else 1e-5)


def test_dropout_masks_change_every_step_and_follow_the_seed():
    fit, val = _splits("binary")
    cfg = {**BASE, "dropout": 0.5}
    first, _ = _train("graph", cfg, SPECS["binary"], fit, val, seed=1)
    again, _ = _train("graph", cfg, SPECS["binary"], fit, val, seed=1)
    other, _ = _train("graph", cfg, SPECS["binary"], fit, val, seed=2)
    assert first == again and first != other
    no_dropout, _ = _train("graph", {**BASE}, SPECS["binary"], fit, val, seed=1)
    # Dropout is active in training only: its training loss differs, and the same seed repeats it.
    assert first[0]["loss"] != no_dropout[0]["loss"]


def test_trials_that_differ_in_sizes_and_numbers_share_one_traced_graph():
    fit, val = _splits("binary")
    configs = [
        {
            **BASE,
            "layers": 2,
            "units_1": u1,
            "units_2": u2,
            "learning_rate": lr,
            "batch_size": b,
            "dropout": d,
        }
        for u1, u2, lr, b, d in [(4, 9, 0.01, 20, 0.1), (33, 2, 0.003, 7, 0.4), (16, 16, 0.1, 64, 0.25)]
    ]
    models = []
    for i, cfg in enumerate(configs):
        _, _ = _train("graph", cfg, SPECS["binary"], fit, val, seed=i)
        import keras

        keras.utils.set_random_seed(i)
        models.append(GraphModel(any_network(cfg, SPECS["binary"]), data_specs(fit.x, fit.y)))
    assert len({id(m.family) for m in models}) == 1
    assert models[0].family.traces == 1
    # Another activation is another structure: another family.
    keras.utils.set_random_seed(0)
    tanh = GraphModel(
        any_network({**configs[0], "activation": "tanh"}, SPECS["binary"]), data_specs(fit.x, fit.y)
    )
    assert tanh.family is not models[0].family


def test_a_saved_state_continues_exactly(tmp_path):
    fit, val = _splits("multiclass")
    cfg = {**BASE, "optimizer": "nadam", "batch_norm": True, "dropout": 0.2}
    straight, _ = _train("graph", {**cfg}, SPECS["multiclass"], fit, val)

    import keras

    keras.utils.set_random_seed(3)
    model = GraphModel(any_network(cfg, SPECS["multiclass"]), data_specs(fit.x, fit.y))
    model.fit_epoch(fit, val, batch_size=20, order=epoch_order(len(fit), 3, 0))
    model.save(tmp_path / "model.npz")
    keras.utils.set_random_seed(99)  # another trial's initial state, replaced by the load
    resumed = GraphModel(any_network(cfg, SPECS["multiclass"]), data_specs(fit.x, fit.y))
    resumed.load(tmp_path / "model.npz")
    second = resumed.fit_epoch(fit, val, batch_size=20, order=epoch_order(len(fit), 3, 1))
    assert second == straight[1]


def _job(build) -> Job:
    return Job(name="t", description="t", space={"units": [4, 8]}, load_data=None, build_model=build)


def test_a_jobs_own_builder_and_an_unsupported_setting_train_with_keras(caplog):
    fit, _ = _splits("binary")
    spec = SPECS["binary"]

    def own(cfg, spec):
        return build_mlp(cfg, spec)

    def models(build, cfg):
        return trial_models(_job(build), cfg, spec, [fit], seed=0)

    assert isinstance(models(own, BASE)[0], KerasModel)
    assert isinstance(models(build_mlp, BASE)[0], GraphModel)
    with caplog.at_level(logging.DEBUG, logger="tuning_service.training.sharedgraph"):
        assert isinstance(models(build_mlp, {**BASE, "loss": "poisson"})[0], KerasModel)
    assert "does not reproduce loss 'poisson'" in caplog.text


def test_the_trials_models_start_alike_either_way_for_every_fold():
    """A trial's seed gives the same initial weights whether its models train in the graph or in Keras."""
    fit, val = _splits("binary")
    folds = [fit, Split.from_arrays(fit.x[::-1], fit.y[::-1])]
    cfg = {**BASE, "dropout": 0.2, "layers": 2}

    def own(cfg, spec):  # the same network, compiled by Keras: a job's own builder
        return build_mlp(cfg, spec)

    graph = trial_models(_job(build_mlp), cfg, SPECS["binary"], folds, seed=5)
    compiled = trial_models(_job(own), cfg, SPECS["binary"], folds, seed=5)
    assert [type(m) for m in graph] == [GraphModel] * 2 and [type(m) for m in compiled] == [KerasModel] * 2
    for g, k, data in zip(graph, compiled, folds, strict=True):
        order = epoch_order(len(data), 1, 0)
        mine = g.fit_epoch(data, val, batch_size=20, order=order)
        theirs = k.fit_epoch(data, val, batch_size=20, order=order)
        assert mine == pytest.approx(theirs, abs=1e-6)


@pytest.mark.parametrize("way", ["graph", "keras"])
def test_a_checkpoint_loaded_into_a_perturbed_config_trains_with_the_new_hyperparameters(tmp_path, way):
    """PBT: a trial restores another's checkpoint into a model built from its perturbed config.
    Weights and optimizer state come from the file; learning rate, beta_1 and batch size from the
    new config, in the shared graph and in Keras alike (Keras once brought back the saver's)."""
    import keras

    fit, val = _splits("multiclass")
    spec = SPECS["multiclass"]
    perturbed = {**BASE, "learning_rate": 0.05, "beta_1": 0.8, "batch_size": 7}

    def model(cfg, seed):
        keras.backend.clear_session(free_memory=False)
        keras.utils.set_random_seed(seed)
        network = any_network(cfg, spec)
        return (
            GraphModel(network, data_specs(fit.x, fit.y))
            if way == "graph"
            else KerasModel(network.to_keras())
        )

    def second_epoch(cfg):
        saver = model(BASE, 3)
        saver.fit_epoch(fit, val, batch_size=BASE["batch_size"], order=epoch_order(len(fit), 3, 0))
        saver.save(tmp_path / f"model{saver.suffix}")
        restored = model(cfg, 99)  # another trial's initial weights, replaced by the load
        restored.load(tmp_path / f"model{saver.suffix}")
        return restored.fit_epoch(fit, val, batch_size=cfg["batch_size"], order=epoch_order(len(fit), 3, 1))

    straight, _ = _train("graph", BASE, spec, fit, val)  # two epochs at the saver's own settings
    assert second_epoch(BASE) == pytest.approx(straight[1], abs=1e-6)
    changed = second_epoch(perturbed)
    assert changed["loss"] != pytest.approx(straight[1]["loss"], abs=1e-3)
    # The reference: the shared graph built from the perturbed config, given the saved state.
    keras.utils.set_random_seed(3)
    reference = GraphModel(any_network(BASE, spec), data_specs(fit.x, fit.y))
    reference.fit_epoch(fit, val, batch_size=BASE["batch_size"], order=epoch_order(len(fit), 3, 0))
    keras.utils.set_random_seed(99)
    target = GraphModel(any_network(perturbed, spec), data_specs(fit.x, fit.y))
    target.state = reference.state
    expected = target.fit_epoch(fit, val, batch_size=7, order=epoch_order(len(fit), 3, 1))
    assert changed == pytest.approx(expected, abs=1e-6)


def test_a_graph_model_counts_the_parameters_its_keras_model_has():
    """`params` (a multi-objective sweep's cost) is the same whichever way a trial trains,
    batch norm's moving statistics (non-trainable weights) included."""
    from tuning_service.training.modelcost import count_params, inference_latency_ms

    cfg = {**BASE, "batch_norm": True, "layers": 2}
    fit = Split.from_arrays(X, TARGETS["binary"])
    network = any_network(cfg, SPECS["binary"])
    keras_model = network.to_keras()
    assert count_params(GraphModel(network, data_specs(fit.x, fit.y))) == keras_model.count_params()
    assert count_params(KerasModel(keras_model)) == keras_model.count_params()
    assert 0 < inference_latency_ms(keras_model, X[:5]) < 1000
