"""Multi-objective evolution with Optuna's NSGA-II sampler: a population ranked by Pareto fronts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from tuning_service.core.objectives import Constraint, Objective
from tuning_service.core.registry import AtLeast, AtMost
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
    population_size: Annotated[int, AtLeast(2)] = 10,
    mutation_prob: Annotated[float, AtLeast(0), AtMost(1)] | None = None,
    crossover_prob: Annotated[float, AtLeast(0), AtMost(1)] = 0.9,
) -> SearchPlan:
    """NSGA-II: ``population_size`` random trials, then children of the best fronts (constrained
    dominance where the sweep has constraints: feasible trials first)."""
    # Imports Ray Tune: only a sweep that uses this searcher does (`jobs` reads this module's docstring).
    from tuning_service.raytune.searchers.multiobjective import (
        PicklableNSGAII,
        constraints_func,
        objectives_plan,
    )

    with quiet_optuna():
        sampler = PicklableNSGAII(
            seed=seed,
            population_size=population_size,
            mutation_prob=mutation_prob,
            crossover_prob=crossover_prob,
            constraints_func=constraints_func(constraints),
        )
    return objectives_plan(space, sampler, objectives, constraints, points_to_evaluate, max_concurrent)
