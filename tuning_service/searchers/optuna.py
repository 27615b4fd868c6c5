"""Bayesian search with Optuna's TPE sampler, driven through Ray Tune's OptunaSearch."""

from __future__ import annotations

from typing import Annotated, Any

from tuning_service.registry import AtLeast
from tuning_service.searchers import SearchPlan, limit_concurrency
from tuning_service.space import Space


def build(
    space: Space,
    *,
    seed: int,
    points_to_evaluate: list[dict[str, Any]] | None = None,
    max_concurrent: int | None = None,
    n_startup_trials: Annotated[int, AtLeast(0)] = 5,
    multivariate: bool = True,
) -> SearchPlan:
    """TPE: ``points_to_evaluate`` first, random for the first ``n_startup_trials``, then model-guided."""
    import optuna
    from optuna.samplers import TPESampler
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = TPESampler(seed=seed, n_startup_trials=n_startup_trials, multivariate=multivariate)
    searcher = OptunaSearch(sampler=sampler, points_to_evaluate=points_to_evaluate or None)
    return SearchPlan(limit_concurrency(searcher, max_concurrent), space.to_ray())
