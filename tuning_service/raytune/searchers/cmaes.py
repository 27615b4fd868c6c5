"""Evolution strategy with Optuna's CMA-ES sampler: numeric ranges adapt as one Gaussian."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from tuning_service.core.registry import AtLeast
from tuning_service.core.space import Choice, Space
from tuning_service.raytune.searchers import SearchPlan
from tuning_service.raytune.searchers.optuna import quiet_optuna, sampler_plan

log = logging.getLogger(__name__)


def build(
    space: Space,
    *,
    seed: int,
    points_to_evaluate: list[dict[str, Any]] | None = None,
    max_concurrent: int | None = None,
    n_startup_trials: Annotated[int, AtLeast(0)] = 1,
    popsize: Annotated[int, AtLeast(2)] | None = None,
    with_margin: bool = False,
) -> SearchPlan:
    """CMA-ES over the numeric ranges; ``popsize`` trials per generation (default 4 + 3 ln n).

    ``with_margin`` keeps integer and stepped ranges from collapsing onto one value.
    """
    from optuna.samplers import CmaEsSampler

    _log_random_choices(space)
    with quiet_optuna():
        sampler = CmaEsSampler(
            seed=seed,
            n_startup_trials=n_startup_trials,
            popsize=popsize,
            with_margin=with_margin,
            # Optuna would warn once per choice per trial; `_log_random_choices` says it once.
            warn_independent_sampling=False,
        )
    return sampler_plan(space, sampler, points_to_evaluate, max_concurrent)


def _log_random_choices(space: Space) -> None:
    """CMA-ES models numbers only: Optuna draws choices at random beside it (independent sampling)."""
    choices = [name for name, param in space.items() if isinstance(param, Choice) and len(param.values) > 1]
    if choices:
        log.info(
            "searcher 'cmaes': CMA-ES models only numeric ranges; %s drawn at random for every trial "
            "(Optuna's independent sampling); optuna, gp or qmc model choices too",
            ", ".join(choices) + (" is" if len(choices) == 1 else " are"),
        )
