"""Every searcher reads the same space the same way: bounds inclusive, conditions harmless.

Searchers are driven directly through `suggest` / `on_trial_complete`, as Tune would,
with no Ray cluster and no training.
"""

from __future__ import annotations

import importlib.util
import logging

import numpy as np
import pytest

from tuning_service.core.errors import InputError
from tuning_service.core.space import Choice, Float, Int, Space
from tuning_service.core.spec import SweepSpec
from tuning_service.raytune.searchers import SEARCHERS, check_pairing, create_searcher, validate_searcher

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


def _drive(name: str, n: int = N) -> list[dict]:
    plan = create_searcher(name, SPACE, seed=1)
    searcher = plan.search_alg
    assert searcher.set_search_properties("score", "max", plan.param_space)
    configs, rng = [], np.random.default_rng(7)
    for i in range(n):
        config = searcher.suggest(f"t{i}")
        configs.append(config)
        # Scores unrelated to the config keep TPE exploring the whole space.
        searcher.on_trial_complete(f"t{i}", {"score": float(rng.random())})
    return configs


# The GP refits on every result (about half a second a suggestion on 2 cores): fewer trials.
@pytest.mark.parametrize(
    ("name", "n"),
    [
        ("optuna", N),
        ("hyperopt", N),
        ("cmaes", N),
        ("qmc", N),
        ("gp", 12),
        ("bohb", N),
        ("nsga2", 20),
        ("motpe", N),
    ],
)
def test_model_based_searchers_stay_inside_the_space_and_reach_both_ends(name, n):
    configs = _drive(name, n)
    for config in configs:
        _check(config)
        # Plain Python values, as the results database and best_config.json write them.
        assert all(type(v) in (int, float, str) for v in config.values()), config
    assert {c["layers"] for c in configs} == {1, 2, 3}  # Int bounds are inclusive everywhere
    assert {c["optimizer"] for c in configs} == {"adam", "sgd"}


def test_bohb_keeps_a_ranges_step_that_rays_conversion_drops():
    configs = _drive("bohb", 30)
    assert {c["units"] % 32 for c in configs} == {0} and len({c["units"] for c in configs}) > 3
    assert all(round(c["dropout"] * 10, 9).is_integer() for c in configs)


def test_bohb_runs_warm_start_points_first_as_given():
    point = {
        "layers": 2,
        "units": 64,
        "width": 8,
        "lr": 1e-3,
        "dropout": 0.3,
        "optimizer": "sgd",
        "momentum": 0.5,
    }
    plan = create_searcher("bohb", SPACE, seed=0, points_to_evaluate=[point])
    plan.search_alg.set_search_properties("score", "max", plan.param_space)
    assert plan.search_alg.suggest("t0") == point


def test_bohb_takes_results_of_a_trial_its_restored_state_never_suggested():
    # Found in the resume test: a driver killed between Tune's snapshot and the searcher's left a
    # trial the restored TuneBOHB did not know, and its KeyError ended the resumed sweep.
    plan = create_searcher("bohb", SPACE, seed=0)
    searcher = plan.search_alg
    searcher.set_search_properties("score", "max", plan.param_space)
    searcher.suggest("known")
    result = {"score": 0.5, "hyperband_info": {"budget": 1}}
    searcher.on_trial_result("unknown", result)
    searcher.on_trial_complete("unknown", result)
    searcher.on_trial_result("known", result)
    searcher.on_trial_complete("known", result)
    assert searcher.trial_to_params == {} and searcher.suggest("next") is not None


def test_cmaes_says_once_that_it_draws_choices_at_random(caplog):
    import optuna

    optuna.logging.enable_propagation()  # Optuna's own warnings reach caplog too
    try:
        with caplog.at_level(logging.INFO):
            _drive("cmaes", 12)
    finally:
        optuna.logging.disable_propagation()
    said = [
        r.getMessage()
        for r in caplog.records
        if "random" in r.getMessage() or "independent" in r.getMessage()
    ]
    assert said == [
        "searcher 'cmaes': CMA-ES models only numeric ranges; optimizer is drawn at random for every trial "
        "(Optuna's independent sampling); optuna, gp or qmc model choices too"
    ]


def test_random_searcher_samples_the_same_domains():
    plan = create_searcher("random", SPACE, seed=1)
    rng = np.random.default_rng(0)
    samples = [{k: d.sample(random_state=rng) for k, d in plan.param_space.items()} for _ in range(200)]
    for config in samples:
        _check(config)
    assert {c["layers"] for c in samples} == {1, 2, 3}
    assert max(c["units"] for c in samples) == 512 and min(c["units"] for c in samples) == 32


# The model-based searchers, whose state Tune's snapshot must carry whole (grid and random are
# Tune's BasicVariantGenerator, resumed in tests/sweeps/faults/test_resume.py).
MODEL_BASED = ("optuna", "hyperopt", "cmaes", "qmc", "gp", "bohb", "nsga2", "motpe")


def _tell(searcher, first: int, n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    configs = []
    for i in range(first, first + n):
        configs.append(searcher.suggest(f"t{i}"))
        searcher.on_trial_complete(f"t{i}", {"score": float(rng.random()), "hyperband_info": {"budget": 1}})
    return configs


@pytest.mark.parametrize("name", MODEL_BASED)
def test_a_searcher_restored_from_tunes_snapshot_suggests_what_it_would_have(name, tmp_path):
    """What `resume` does: the searcher pickled with the Tuner at the start, then its state from
    the sweep's last snapshot. A sampler whose state the snapshot misses (its random generator,
    its population) suggests other configs than the uninterrupted searcher, or fails to pickle."""
    from ray import cloudpickle

    plan = create_searcher(name, SPACE, seed=1)
    at_start = cloudpickle.dumps(plan.search_alg)  # what tune.Tuner writes to tuner.pkl
    running = plan.search_alg
    running.set_search_properties("score", "max", plan.param_space)
    _tell(running, 0, 6, seed=3)
    running.save_to_dir(str(tmp_path), session_str="s")

    restored = cloudpickle.loads(at_start)
    restored.set_search_properties("score", "max", plan.param_space)
    restored.restore_from_dir(str(tmp_path))
    assert _tell(restored, 6, 4, seed=5) == _tell(running, 6, 4, seed=5)


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
    assert set(SEARCHERS.names()) == {
        "grid", "random", "optuna", "hyperopt", "cmaes", "qmc", "gp", "bohb", "nsga2", "motpe"
    }  # fmt: skip


def test_grid_spreads_points_over_ranges_when_asked():
    space = Space({"lr": Float(1e-4, 1e-2, log=True), "layers": Int(1, 3), "act": Choice(("relu", "tanh"))})
    plan = create_searcher("grid", space, seed=0, points=3)
    assert plan.num_samples == 3 * 3 * 2
    assert {p["lr"] for p in plan.search_alg._points_to_evaluate} == {1e-4, 1e-3, 1e-2}


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        (
            "tpe",
            {},
            r"unknown searcher 'tpe'; choose one of: bohb, cmaes, gp, grid, hyperopt, motpe, nsga2, optuna, qmc, random \(did you mean 'optuna'\?\)",
        ),
        ("cma-es", {}, r"unknown searcher 'cma-es'; .* \(did you mean 'cmaes'\?\)"),
        (
            "cmaes",
            {"popsize": 1},
            r"^searcher 'cmaes': option 'popsize' must be an integer >= 2 \(or left empty\), got 1$",
        ),
        (
            "qmc",
            {"qmc_type": "lhs"},
            r"^searcher 'qmc': option 'qmc_type' must be one of: sobol, halton, got 'lhs'$",
        ),
        (
            "bohb",
            {"random_fraction": 1.5},
            r"^searcher 'bohb': option 'random_fraction' must be a number >= 0 and <= 1, got 1.5$",
        ),
        (
            "gp",
            {"n_startup_trials": -1},
            r"^searcher 'gp': option 'n_startup_trials' must be an integer >= 0, got -1$",
        ),
        (
            "grid",
            {"points": 0},
            r"^searcher 'grid': option 'points' must be an integer >= 1 \(or left empty\), got 0$",
        ),
        (
            "optuna",
            {"n_startup": 3},
            r"searcher 'optuna': unknown option 'n_startup' \(accepted: multivariate, n_startup_trials\)",
        ),
        ("random", {"seed": 3}, r"unknown option 'seed'"),
        # A schedule or job file's YAML may give a number as an option's name.
        (
            "optuna",
            {1.5: 3},
            r"^searcher 'optuna': unknown option 1.5 \(accepted: multivariate, n_startup_trials\)$",
        ),
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


@pytest.mark.parametrize(("name", "extra", "module"), [("gp", "gp", "torch"), ("bohb", "bohb", "hpbandster")])
def test_a_searcher_whose_extra_is_missing_names_the_pip_command(monkeypatch, name, extra, module):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda m, *a: None if m == module else real(m, *a))
    with pytest.raises(InputError) as info:
        validate_searcher(name, SPACE, {})
    assert str(info.value) == (
        f"searcher {name!r} needs {module}, which is not installed: pip install 'tuning-service[{extra}]'"
    )


def test_bohb_pairs_with_its_own_scheduler_and_no_other():
    assert SweepSpec(searcher="bohb").scheduler == "bohb"
    assert SweepSpec(searcher="optuna").scheduler == "asha"
    check_pairing("bohb", "bohb")
    with pytest.raises(
        InputError,
        match=r"^searcher 'bohb' runs only with scheduler 'bohb' .* got scheduler 'asha'; pass --scheduler bohb or leave it out$",
    ):
        check_pairing("bohb", "asha")
    with pytest.raises(
        InputError,
        match=r"^scheduler 'bohb' runs only with searcher 'bohb', got searcher 'random'; use --searcher bohb, or --scheduler hyperband with 'random'$",
    ):
        check_pairing("random", "bohb")
