"""Warm-start points: restricted to the current space, passed first to every searcher; no Ray started."""

from __future__ import annotations

import logging

import pytest

from tuning_service.core.errors import InputError
from tuning_service.core.space import Choice, Fixed, Float, Int, Space
from tuning_service.core.spec import SweepSpec
from tuning_service.raytune.searchers import create_searcher, validate_searcher
from tuning_service.raytune.searchers.points import usable_points

SPACE = Space(
    {
        "lr": Float(1e-4, 1e-1, log=True),
        "units": Int(8, 64),
        "opt": Choice(("adam", "sgd")),
        "momentum": Float(0.0, 0.9, when={"opt": ("sgd",)}, grid=(0.0, 0.9)),
        "epochs": Fixed(3),
    }
)
BEST = {"lr": 0.01, "units": 16, "opt": "adam"}
SECOND = {"lr": 0.02, "units": 9, "opt": "sgd", "momentum": 0.5}


def test_points_follow_the_current_space_and_bad_ones_are_logged(caplog):
    points = [
        {**BEST, "epochs": 2, "removed": 1},  # a key dropped since, a fixed value edited since
        {"lr": 0.5, "units": 16, "opt": "adam"},  # lr outside the range now
        {"lr": 0.01, "opt": "adam"},  # units added to the space since
        SECOND,
        dict(BEST),  # the same config again (best of two runs)
    ]
    with caplog.at_level(logging.INFO, logger="tuning_service.raytune.searchers.points"):
        usable = usable_points(SPACE, points)
    # The inactive momentum gets a placeholder (HyperOpt needs every key); the model never sees it.
    assert usable == [{**BEST, "momentum": 0.0}, SECOND]
    assert "lr=0.5 is outside the space" in caplog.text
    assert "no value for 'units'" in caplog.text


@pytest.mark.parametrize("name", ["optuna", "hyperopt"])
def test_model_based_searchers_suggest_the_points_first(name):
    plan = create_searcher(name, SPACE, seed=0, points_to_evaluate=[BEST, SECOND])
    alg = plan.search_alg
    alg.set_search_properties("val_accuracy", "max", plan.param_space)
    suggested = [alg.suggest(f"t{i}") for i in range(2)]
    # In the space's order (HyperOpt sorts keys), without the constant Tune adds back.
    first = [SPACE.effective({k: c[k] for k in SPACE if k in c and k != "epochs"}) for c in suggested]
    assert first == [BEST, SECOND]


def test_random_search_starts_with_the_points():
    plan = create_searcher("random", SPACE, seed=0, points_to_evaluate=[BEST])
    assert plan.search_alg._points_to_evaluate == [{**BEST, "momentum": 0.0}]


def test_grid_runs_the_points_first_and_never_twice():
    space = Space({"units": Int(8, 10), "opt": Choice(("adam", "sgd"))})
    plan = create_searcher("grid", space, seed=0, points_to_evaluate=[{"units": 9, "opt": "sgd"}])
    points = plan.search_alg._points_to_evaluate
    assert points[0] == {"units": 9, "opt": "sgd"}
    assert plan.num_samples == len(points) == 6
    assert len({tuple(sorted(p.items())) for p in points}) == 6


def test_points_are_reserved_for_the_engine():
    with pytest.raises(InputError, match="unknown option 'points_to_evaluate'"):
        validate_searcher("optuna", SPACE, {"points_to_evaluate": [BEST]})


def test_spec_refuses_points_that_are_not_configs(tmp_path):
    with pytest.raises(InputError, match="points_to_evaluate must be configs"):
        SweepSpec(storage=str(tmp_path), points_to_evaluate=(1,)).validate()  # type: ignore[arg-type]
