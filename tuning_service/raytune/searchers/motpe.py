"""Multi-objective TPE (MOTPE) with Optuna's TPESampler: densities of the non-dominated trials."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from tuning_service.core.objectives import Constraint, Objective
from tuning_service.core.registry import AtLeast
from tuning_service.core.space import Space
from tuning_service.raytune.searchers import SearchPlan
from tuning_service.raytune.searchers.optuna import quiet_optuna


def build(
    space: Space,
    *,
    seed: int,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint] = (),
    points_to_evaluate: list[dict[str, Any]] | None = None,
    max_concurrent: int | None = None,
    n_startup_trials: Annotated[int, AtLeast(0)] = 5,
    multivariate: bool = True,
) -> SearchPlan:
    """MOTPE: random for the first ``n_startup_trials``, then TPE whose good set is the trials on
    the best fronts (Ozaki et al. 2020); constrained where the sweep has constraints."""
    from optuna.samplers import TPESampler

    # Imports Ray Tune: only a sweep that uses this searcher does (`jobs` reads this module's docstring).
    from tuning_service.raytune.searchers.multiobjective import constraints_func, objectives_plan

    with quiet_optuna():
        sampler = TPESampler(
            seed=seed,
            n_startup_trials=n_startup_trials,
            multivariate=multivariate,
            constraints_func=constraints_func(constraints),
        )
    return objectives_plan(space, sampler, objectives, constraints, points_to_evaluate, max_concurrent)
