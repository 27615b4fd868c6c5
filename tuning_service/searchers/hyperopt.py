"""Bayesian search with HyperOpt's TPE, driven through Ray Tune's HyperOptSearch."""

from __future__ import annotations

from tuning_service.searchers import SearchPlan
from tuning_service.space import Space


def build(space: Space, *, seed: int, n_initial_points: int = 5) -> SearchPlan:
    """TPE: random for the first ``n_initial_points``, then model-guided."""
    from ray.tune.search.hyperopt import HyperOptSearch

    return SearchPlan(
        HyperOptSearch(n_initial_points=n_initial_points, random_state_seed=seed), space.to_ray()
    )
