"""Gaussian-process Bayesian optimisation with Optuna's GPSampler (PyTorch: the gp extra)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from tuning_service.core.objectives import Constraint, Objective
from tuning_service.core.registry import AtLeast
from tuning_service.core.space import Space
from tuning_service.raytune.searchers import SearchPlan
from tuning_service.raytune.searchers.optuna import constrained, quiet_optuna, sampler_plan


def build(
    space: Space,
    *,
    seed: int,
    points_to_evaluate: list[dict[str, Any]] | None = None,
    max_concurrent: int | None = None,
    objectives: Sequence[Objective] = (),
    constraints: Sequence[Constraint] = (),
    n_startup_trials: Annotated[int, AtLeast(0)] = 5,
    deterministic_objective: bool = False,
) -> SearchPlan:
    """A GP fitted to every result picks the next trial by expected improvement.

    Strong on small budgets (tens of trials) of mostly numeric ranges; each suggestion
    refits the GP, so past a few hundred trials TPE is cheaper. ``deterministic_objective``
    assumes no noise (the same config always scores the same: seeded, small data). With
    constraints, a second GP models them and suggestions weigh in how likely they are met.
    """
    from optuna.samplers import GPSampler

    with quiet_optuna():
        sampler = GPSampler(
            seed=seed,
            n_startup_trials=n_startup_trials,
            deterministic_objective=deterministic_objective,
            **constrained(constraints),
        )
    return sampler_plan(space, sampler, points_to_evaluate, max_concurrent, objectives, constraints)
