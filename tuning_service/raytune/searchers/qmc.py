"""Quasi-random search with Optuna's QMC sampler: low-discrepancy points cover the space evenly."""

from __future__ import annotations

from typing import Any, Literal

from tuning_service.core.space import Space
from tuning_service.raytune.searchers import SearchPlan
from tuning_service.raytune.searchers.optuna import quiet_optuna, sampler_plan


def build(
    space: Space,
    *,
    seed: int,
    points_to_evaluate: list[dict[str, Any]] | None = None,
    max_concurrent: int | None = None,
    qmc_type: Literal["sobol", "halton"] = "sobol",
    scramble: bool = True,
) -> SearchPlan:
    """Sobol or Halton points in order; ``scramble`` (seeded) avoids always starting at the corners.

    Fills the space more evenly than random for the same trial count (a power of two for Sobol);
    it learns nothing from results, so it also serves as a baseline.
    """
    from optuna.samplers import QMCSampler

    with quiet_optuna():
        sampler = QMCSampler(qmc_type=qmc_type, scramble=scramble, seed=seed)
    return sampler_plan(space, sampler, points_to_evaluate, max_concurrent)
