"""Bayesian search with Optuna's TPE sampler, driven through Ray Tune's OptunaSearch."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

from tuning_service.core.objectives import Constraint, Objective
from tuning_service.core.registry import AtLeast
from tuning_service.core.space import Space
from tuning_service.raytune.searchers import SearchPlan, limit_concurrency


def build(
    space: Space,
    *,
    seed: int,
    points_to_evaluate: list[dict[str, Any]] | None = None,
    max_concurrent: int | None = None,
    objectives: Sequence[Objective] = (),
    constraints: Sequence[Constraint] = (),
    n_startup_trials: Annotated[int, AtLeast(0)] = 5,
    multivariate: bool = True,
) -> SearchPlan:
    """TPE: ``points_to_evaluate`` first, random for the first ``n_startup_trials``, then model-guided
    (constrained TPE where the sweep has constraints: feasible trials make the good set)."""
    from optuna.samplers import TPESampler

    with quiet_optuna():
        sampler = TPESampler(
            seed=seed,
            n_startup_trials=n_startup_trials,
            multivariate=multivariate,
            **constrained(constraints),
        )
    return sampler_plan(space, sampler, points_to_evaluate, max_concurrent, objectives, constraints)


def constrained(constraints: Sequence[Constraint]) -> dict[str, Any]:
    """A constrained Optuna sampler's keyword arguments for the sweep's ``constraints`` (none: {})."""
    if not constraints:
        return {}
    from tuning_service.raytune.searchers.multiobjective import constraints_func

    return {"constraints_func": constraints_func(constraints)}


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Around building a sampler: Optuna logs every trial at INFO (the sweep's progress says the
    same once), and warns that QMC and CMA-ES's margin are experimental, which no user can act on."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def sampler_plan(
    space: Space,
    sampler: Any,
    points_to_evaluate: list[dict[str, Any]] | None,
    max_concurrent: int | None,
    objectives: Sequence[Objective] = (),
    constraints: Sequence[Constraint] = (),
) -> SearchPlan:
    """Any Optuna sampler as a Ray Tune searcher: the study lives in the driver, asked and told by
    Tune; with constraints, told each trial's margins too."""
    if constraints:
        from tuning_service.raytune.searchers.multiobjective import objectives_plan

        return objectives_plan(space, sampler, objectives, constraints, points_to_evaluate, max_concurrent)
    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch(sampler=sampler, points_to_evaluate=points_to_evaluate or None)
    return SearchPlan(limit_concurrency(searcher, max_concurrent), space.to_ray())
