"""MO-ASHA: asynchronous successive halving whose rungs rank trials by Pareto fronts, not one metric.

Schmucker, Donini, Zafar, Salinas and Archambeau (2021), "Multi-objective Asynchronous
Successive Halving" (arXiv:2106.12639): ASHA's rungs and promotion quota, with the
single-metric ranking replaced by a multi-objective one. Of the rankings the paper studies,
this uses non-dominated sorting with NSGA-II's crowding distance as the tie-break within a
front (the paper's "NSGA-II" selection; its epsilon-net variant is not implemented): a trial
reaching a rung continues when fewer than ceil(n / reduction_factor) of the n trials recorded
there (itself included) rank strictly ahead of it: on an earlier front, or on its own front
with a larger crowding distance. Ties go to the newcomer, as Ray's ASHA lets a trial equal
to the cutoff continue. `rung_decision` is that rule; the tests drive it with hand-built rungs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from tuning_service.core.objectives import Objective, values_of
from tuning_service.core.outcomes import INFEASIBLE_KEY
from tuning_service.core.pareto import crowding_distance, non_dominated_sort
from tuning_service.core.registry import AtLeast
from tuning_service.raytune.schedulers import TIME_ATTR
from tuning_service.raytune.schedulers.live import LiveTrialsFirst

log = logging.getLogger(__name__)

Vector = Sequence[float]


def rung_decision(recorded: Sequence[Vector], new: Vector, reduction_factor: float) -> bool:
    """Whether a trial reaching a rung with minimised objective vector ``new`` continues, given the
    vectors ``recorded`` there before it (see the module docstring for the rule)."""
    points = [*recorded, new]
    me = len(points) - 1
    quota = math.ceil(len(points) / reduction_factor)
    ahead = 0
    for members in non_dominated_sort(points):
        if me not in members:
            ahead += len(members)
            continue
        crowd = dict(zip(members, crowding_distance([points[i] for i in members]), strict=True))
        ahead += sum(1 for i in members if crowd[i] > crowd[me])
        break
    return ahead < quota


def milestones(max_t: int, grace_period: int, reduction_factor: float) -> list[int]:
    """The rungs' epochs, highest first, as Ray's ASHA places them (grace_period * rf**k up to max_t)."""
    count = int(math.log(max_t / grace_period) / math.log(reduction_factor) + 1)
    return [int(grace_period * reduction_factor**k) for k in reversed(range(max(count, 1)))]


class MOASHA(LiveTrialsFirst, FIFOScheduler):
    """Stops a trial at a rung when `rung_decision` says so; picklable, so `resume` restores its rungs."""

    def __init__(
        self, objectives: Sequence[Objective], *, max_t: int, grace_period: int, reduction_factor: float
    ) -> None:
        super().__init__()
        self.objectives = tuple(objectives)
        self.reduction_factor = reduction_factor
        # Rung epoch -> (trial id, minimised objective vector) in the order trials reached it.
        self.rungs: dict[int, list[tuple[str, tuple[float, ...]]]] = {
            m: [] for m in milestones(max_t, grace_period, reduction_factor)
        }

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True  # Tune passes the first objective; this scheduler ranks all of them

    def on_trial_result(self, tune_controller: Any, trial: Any, result: Mapping[str, Any]) -> str:
        values = values_of(result, self.objectives)
        if values is None or result.get(INFEASIBLE_KEY):
            return TrialScheduler.CONTINUE  # a failed or infeasible trial ends by itself
        vector = tuple(o.minimised(values[o.name]) for o in self.objectives)
        epoch = int(result.get(TIME_ATTR) or 0)
        for milestone, rung in self.rungs.items():  # highest first
            if epoch < milestone:
                continue
            if any(trial_id == trial.trial_id for trial_id, _ in rung):
                break  # decided at this rung already
            keep = rung_decision([v for _, v in rung], vector, self.reduction_factor)
            rung.append((trial.trial_id, vector))
            if not keep:
                log.info(
                    "MO-ASHA stops trial %s at epoch %d: outside the best 1/%g of %d trials at the rung by "
                    "Pareto front and crowding distance",
                    trial.trial_id,
                    epoch,
                    self.reduction_factor,
                    len(rung),
                )
                return TrialScheduler.STOP
            break
        return TrialScheduler.CONTINUE

    def debug_string(self) -> str:
        return "MO-ASHA rungs: " + ", ".join(f"{m}: {len(r)}" for m, r in self.rungs.items())


def build(
    *,
    max_t: int,
    objectives: Sequence[Objective],
    grace_period: Annotated[int, AtLeast(1)] = 1,
    reduction_factor: Annotated[float, AtLeast(1, strict=True)] = 3,
) -> Any:
    """MO-ASHA with rungs at grace_period * reduction_factor**k epochs, like `asha`."""
    return MOASHA(
        objectives, max_t=max_t, grace_period=min(grace_period, max_t), reduction_factor=reduction_factor
    )
