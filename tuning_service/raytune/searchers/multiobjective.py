"""Optuna samplers over several objectives and constraints, driven through Ray Tune's OptunaSearch."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from optuna.samplers import NSGAIISampler
from ray.tune.search.optuna import OptunaSearch

from tuning_service.core.objectives import Constraint, Objective
from tuning_service.core.space import Space
from tuning_service.raytune.searchers import SearchPlan, limit_concurrency

# The user attribute of an Optuna 4 trial that holds its constraint margins (<= 0: met).
CONSTRAINTS_ATTR = "constraints"


def _trials_hold_constraints() -> bool:
    """Optuna 5 keeps constraints on the trial (``Trial.set_constraint``) and deprecates
    ``constraints_func``; Optuna 4 has only the function."""
    from optuna.trial import Trial

    return hasattr(Trial, "set_constraint")


class ConstraintValues:
    """Optuna 4's ``constraints_func``: a finished trial's margins, set by `ObjectivesSearch` before
    it tells the study (a class, not a closure: Tune pickles the searcher into its snapshots)."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __call__(self, trial: Any) -> Sequence[float]:
        return trial.user_attrs.get(CONSTRAINTS_ATTR) or [math.inf] * self.count


def constraints_func(constraints: Sequence[Constraint]) -> ConstraintValues | None:
    """What a constrained Optuna sampler takes: None without constraints, or where trials hold them."""
    return ConstraintValues(len(constraints)) if constraints and not _trials_hold_constraints() else None


class PicklableNSGAII(NSGAIISampler):
    """Optuna's NSGA-II sampler, which Tune can pickle: Optuna 5's generation cache holds a
    thread lock, and Tune pickles the searcher (with its sampler) into every snapshot."""

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_thread_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._thread_lock = threading.Lock()  # unused by Optuna 4


# Optuna names the study attributes holding a genetic sampler's generations after its class:
# keep NSGA-II's names, so a sweep's study reads the same as with Optuna's own class.
for _key in ("_GENERATION_KEY", "_PARENT_CACHE_KEY_PREFIX"):
    if _key in vars(NSGAIISampler):
        setattr(PicklableNSGAII, _key, vars(NSGAIISampler)[_key])


class ObjectivesSearch(OptunaSearch):
    """OptunaSearch with every objective of the sweep, and the constraint margins for the sampler.

    Tune hands a searcher the sweep's one metric (the first objective); this one keeps its
    list. A trial without a finite value for every objective (it raised) is told as failed,
    where OptunaSearch would leave it running in the study.
    """

    def __init__(
        self,
        *,
        objectives: Sequence[Objective],
        constraints: Sequence[Constraint],
        sampler: Any,
        points_to_evaluate: list[dict[str, Any]] | None,
    ) -> None:
        # No objectives (a searcher built outside a sweep): the one metric Tune hands it.
        super().__init__(
            metric=[o.name for o in objectives] or None,
            mode=[o.mode for o in objectives] or None,
            sampler=sampler,
            points_to_evaluate=points_to_evaluate or None,
        )
        self._constraints = tuple(constraints)

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        if isinstance(self._metric, list):
            metric, mode = None, None
        return super().set_search_properties(metric, mode, config, **spec)

    def on_trial_complete(
        self, trial_id: str, result: Mapping[str, Any] | None = None, error: bool = False
    ) -> None:
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        values = dict(result or {})
        finite = result is not None and all(_finite(values.get(m)) for m in metrics)
        if finite and self._constraints and trial_id in self._ot_trials:
            margins = [
                c.margin(float(values[c.name])) if _finite(values.get(c.name)) else math.inf
                for c in self._constraints
            ]
            ot_trial = self._ot_trials[trial_id]
            if hasattr(ot_trial, "set_constraint"):
                for constraint, margin in zip(self._constraints, margins, strict=True):
                    ot_trial.set_constraint(str(constraint), margin)
            else:
                ot_trial.set_user_attr(CONSTRAINTS_ATTR, margins)
        super().on_trial_complete(trial_id, values if finite else None, error=error or not finite)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def objectives_plan(
    space: Space,
    sampler: Any,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint],
    points_to_evaluate: list[dict[str, Any]] | None,
    max_concurrent: int | None,
) -> SearchPlan:
    """A multi-objective Optuna sampler as a Ray Tune searcher."""
    searcher = ObjectivesSearch(
        objectives=objectives, constraints=constraints, sampler=sampler, points_to_evaluate=points_to_evaluate
    )
    return SearchPlan(limit_concurrency(searcher, max_concurrent), space.to_ray())
