"""Every searcher reads the same space the same way: bounds inclusive, conditions harmless.

Searchers are driven directly through `suggest` / `on_trial_complete`, as Tune would,
with no Ray cluster and no training.
"""

from __future__ import annotations

import numpy as np
import pytest

from tuning_service.errors import InputError
from tuning_service.searchers import SEARCHERS, create_searcher, validate_searcher
from tuning_service.space import Choice, Float, Int, Space

SPACE = Space(
    {
        "layers": Int(1, 3),
        "units": Int(32, 512, step=32),
        "width": Int(2, 64, log=True),
        "lr": Float(1e-4, 1e-1, log=True),
        "dropout": Float(0.0, 0.5, step=0.1),
        "optimizer": Choice(("adam", "sgd")),
        "momentum": Float(0.0, 0.99, when={"optimizer": ("sgd",)}),
    }
)
N = 60


def _check(config: dict) -> None:
    for name, param in SPACE.items():
        value = config[name]
        assert param.contains(round(value, 9) if isinstance(value, float) else value), (name, value)


def _drive(name: str) -> list[dict]:
    plan = create_searcher(name, SPACE, seed=1)
    searcher = plan.search_alg
    assert searcher.set_search_properties("score", "max", plan.param_space)
    configs, rng = [], np.random.default_rng(7)
    for i in range(N):
        config = searcher.suggest(f"t{i}")
        configs.append(config)
        # Scores unrelated to the config keep TPE exploring the whole space.
        searcher.on_trial_complete(f"t{i}", {"score": float(rng.random())})
    return configs


@pytest.mark.parametrize("name", ["optuna", "hyperopt"])
def test_model_based_searchers_stay_inside_the_space_and_reach_both_ends(name):
    configs = _drive(name)
    for config in configs:
        _check(config)
    assert {c["layers"] for c in configs} == {1, 2, 3}  # Int bounds are inclusive everywhere
    assert {c["optimizer"] for c in configs} == {"adam", "sgd"}


def test_random_searcher_samples_the_same_domains():
    plan = create_searcher("random", SPACE, seed=1)
    rng = np.random.default_rng(0)
    samples = [{k: d.sample(random_state=rng) for k, d in plan.param_space.items()} for _ in range(200)]
    for config in samples:
        _check(config)
    assert {c["layers"] for c in samples} == {1, 2, 3}
    assert max(c["units"] for c in samples) == 512 and min(c["units"] for c in samples) == 32


def test_same_seed_same_suggestions():
    assert _drive("optuna")[:8] == _drive("optuna")[:8]


def test_grid_runs_each_distinct_point_once():
    space = Space(
        {"optimizer": Choice(("adam", "sgd")), "momentum": Choice((0.0, 0.9), when={"optimizer": ("sgd",)})}
    )
    plan = create_searcher("grid", space, seed=0)
    assert plan.num_samples == 3
    assert plan.search_alg._points_to_evaluate == [
        {"optimizer": "adam"},
        {"optimizer": "sgd", "momentum": 0.0},
        {"optimizer": "sgd", "momentum": 0.9},
    ]


def test_every_registered_searcher_is_tested_here():
    assert set(SEARCHERS.names()) == {"grid", "random", "optuna", "hyperopt"}


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        (
            "tpe",
            {},
            r"unknown searcher 'tpe'; choose one of: grid, hyperopt, optuna, random \(did you mean 'optuna'\?\)",
        ),
        (
            "optuna",
            {"n_startup": 3},
            r"searcher 'optuna': unknown option 'n_startup' \(accepted: multivariate, n_startup_trials\)",
        ),
        ("random", {"seed": 3}, r"unknown option 'seed'"),
    ],
)
def test_unknown_names_and_options_are_refused(name, options, message):
    with pytest.raises(InputError, match=message):
        validate_searcher(name, SPACE, options)


def test_max_concurrent_caps_every_searcher():
    from ray.tune.search import ConcurrencyLimiter

    for name in ("grid", "random"):
        space = Space({"a": Choice((1, 2, 3))})
        assert create_searcher(name, space, seed=0, max_concurrent=2).search_alg.max_concurrent == 2
    for name in ("optuna", "hyperopt"):
        alg = create_searcher(name, SPACE, seed=0, max_concurrent=2).search_alg
        assert isinstance(alg, ConcurrencyLimiter) and alg.max_concurrent == 2
