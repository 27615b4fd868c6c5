"""Every built-in job's model builder on small data, and the shared vocabulary's new pieces."""

from __future__ import annotations

import numpy as np
import pytest

from tuning_service.core.errors import InputError
from tuning_service.data.catalog import builtin_jobs, load_job
from tuning_service.training.lrfind import representative_config
from tuning_service.training.models import build_model, check_config_keys

# Many Keras models built and trained one after another: the module takes tens of seconds.
pytestmark = pytest.mark.slow

TABULAR = ("digits", "digits_cnn", "telco_churn", "pima_diabetes")


def _fit_once(job, data, config):
    import keras

    keras.utils.set_random_seed(0)
    model = job.build_model(job.model_config(config), data.input_spec)
    history = model.fit(
        data.x_train[:64],
        data.y_train[:64],
        validation_data=(data.x_val[:32], data.y_val[:32]),
        epochs=1,
        batch_size=32,
        verbose=0,
    )
    assert job.metric in history.history and np.isfinite(history.history[job.metric][-1])
    return model


def test_every_builtin_job_is_registered_and_loads():
    names = builtin_jobs().names()
    assert set(names) >= {
        "digits",
        "digits_cnn",
        "telco_churn",
        "pima_diabetes",
        "mnist",
        "fashion_mnist",
        "cifar10",
    }
    for name in names:
        job = load_job(name)
        assert job.name == name and job.description and len(job.space) >= 4


@pytest.mark.parametrize("name", TABULAR)
def test_tabular_job_builds_and_trains(name):
    job = load_job(name)
    data = job.load_data(limit=64)
    assert len(data.x_train) == 64
    _fit_once(job, data, representative_config(job.space))


def test_the_digits_cnn_option_is_convolutional():
    job = load_job("digits_cnn")
    model = _fit_once(job, job.load_data(limit=64), representative_config(job.space))
    assert any(type(layer).__name__ == "Conv2D" for layer in model.layers)


def test_telco_space_is_the_tutorials():
    space = load_job("telco_churn").space
    # Keras Tuner's Int(32..512, step 32); a grid runs GridSearchCV's nodes.
    assert (space["units_1"].low, space["units_1"].high, space["units_1"].step) == (32, 512, 32)
    assert space["units_1"].grid_values("units_1") == [64, 128, 256]
    assert space["learning_rate"].values == (1e-2, 1e-3, 1e-4)
    assert space["activation"].values == ("relu", "sigmoid") and space["batch_size"].values == (64, 128, 256)
    assert load_job("telco_churn").max_epochs == 30


@pytest.mark.parametrize("name", builtin_jobs().names())
def test_every_builtin_job_runs_a_grid_of_a_few_hundred_points_at_most(name):
    # README's `run digits --searcher grid` once stopped at the first continuous range.
    assert 1 < load_job(name).space.grid_size() <= 600


def test_pima_space_is_the_tutorials_grid():
    space = load_job("pima_diabetes").space
    assert space.grid_size() == 3 * 3 * 3 * 3 * 4


def test_fashion_mnist_model_has_the_tutorials_regularizers_and_schedule(tiny_files, tmp_path, offline):
    tiny_files.fashion(tmp_path)
    job = load_job("fashion_mnist")
    model = _fit_once(job, job.load_data(data_dir=tmp_path), representative_config(job.space))
    dense = [layer for layer in model.layers if type(layer).__name__ == "Dense"][0]
    assert dense.kernel_regularizer is not None and dense.bias_regularizer is not None
    assert dense.activity_regularizer is not None
    assert type(model.optimizer).__name__ == "Adam"
    assert model.optimizer.beta_1 == job.model_config(representative_config(job.space))["beta_1"]
    assert type(model.optimizer._learning_rate).__name__ == "CosineDecayRestarts"
    assert any(type(layer).__name__ == "Dropout" for layer in model.layers)


@pytest.mark.parametrize(
    ("branch", "layer", "init"),
    [
        ({"activation": "elu", "batch_norm": True}, "BatchNormalization", "HeNormal"),
        ({"activation": "selu", "alpha_dropout": 0.1}, "AlphaDropout", "LecunNormal"),
    ],
)
def test_cifar10_deep_mlp_branches(tiny_files, tmp_path, offline, branch, layer, init):
    tiny_files.cifar10(tmp_path)
    job = load_job("cifar10")
    config = {**representative_config(job.space), "layers": 5, **branch}
    model = _fit_once(job, job.load_data(data_dir=tmp_path), job.space.effective(config))
    names = [type(layer).__name__ for layer in model.layers]
    assert layer in names and names.count("Dense") == 6  # 5 hidden x 100 units + softmax
    hidden = [lay for lay in model.layers if type(lay).__name__ == "Dense"][0]
    assert hidden.units == 100 and type(hidden.kernel_initializer).__name__ == init
    assert type(model.optimizer).__name__ == "Nadam"


def test_cifar10_conditions_drop_the_other_branchs_settings():
    space = load_job("cifar10").space
    selu = space.effective({"layers": 5, "activation": "selu", "batch_norm": True, "alpha_dropout": 0.1})
    elu = space.effective({"layers": 5, "activation": "elu", "batch_norm": True, "alpha_dropout": 0.1})
    assert "batch_norm" not in selu and "alpha_dropout" not in elu


def test_mnist_builds_on_tiny_cache(tiny_files, tmp_path, offline):
    tiny_files.mnist(tmp_path)
    job = load_job("mnist")
    _fit_once(job, job.load_data(data_dir=tmp_path), representative_config(job.space))


def test_unknown_architecture_and_settings_are_refused():
    from tuning_service.core.job import InputSpec

    with pytest.raises(InputError, match="unknown architecture 'rnn'; choose one of: mlp, cnn"):
        build_model({"architecture": "rnn"}, InputSpec((4,), "binary"))
    with pytest.raises(InputError, match="architecture 'cnn' needs image inputs"):
        build_model({"architecture": "cnn"}, InputSpec((4,), "binary"))
    with pytest.raises(
        InputError, match=r"here: unknown model setting 'lerning_rate' .*did you mean 'learning_rate'"
    ):
        check_config_keys(["units_3", "lerning_rate"], where="here")
