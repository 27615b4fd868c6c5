"""Bayesian search with HyperOpt's TPE, driven through Ray Tune's HyperOptSearch."""

from __future__ import annotations

from typing import Annotated, Any

from tuning_service.core.registry import AtLeast
from tuning_service.core.space import Space
from tuning_service.raytune.searchers import SearchPlan, limit_concurrency


def build(
    space: Space,
    *,
    seed: int,
    points_to_evaluate: list[dict[str, Any]] | None = None,
    max_concurrent: int | None = None,
    n_initial_points: Annotated[int, AtLeast(0)] = 5,
) -> SearchPlan:
    """TPE: ``points_to_evaluate`` first, random for the first ``n_initial_points``, then model-guided."""
    from ray.tune.search.hyperopt import HyperOptSearch

    searcher = HyperOptSearch(
        n_initial_points=n_initial_points,
        random_state_seed=seed,
        points_to_evaluate=points_to_evaluate or None,
    )
    return SearchPlan(limit_concurrency(searcher, max_concurrent), space.to_ray())
