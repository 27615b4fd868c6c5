"""Ray's FIFO, ASHA and median-stopping schedulers, choosing the next trial among the live ones only.

Ray's ``FIFOScheduler.choose_trial_to_run`` (which ASHA and median stopping inherit)
walks every trial of the sweep, finished ones included, up to twice per call, and Tune
calls it at nearly every driver step: a sweep's driver slowed as it grew (6 % of its
time at 3,000 no-op trials, `python -m benchmarks.driver_scale` with py-spy). These
classes make the same choice, the first PENDING trial, else the first PAUSED one, in
the order Tune added them, among the trials Tune still runs or holds.

One change to that choice: a PENDING trial whose own new actor is starting is passed over while
another waits (`others_first`), or the first slot's actor takes every trial and the second
slot never trains.
"""

from __future__ import annotations

import math
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, MedianStoppingRule

from tuning_service.raytune.snapshotpace import attach, snapshot_due, unwrapped


class LiveTrialsFirst:
    """``choose_trial_to_run`` over ``get_live_trials()``, in the order the trials were added;
    hands Tune's controller to the sweep's snapshot pace (`snapshotpace.py`)."""

    PACES_SNAPSHOTS = True
    # Trial id -> when it was added, for the trials not yet ended (a restored scheduler keeps it).
    _added: dict[str, int]
    _added_count: int

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        super().on_trial_add(tune_controller, trial)  # type: ignore[misc]
        snapshot_due(self, tune_controller)  # the searcher's state moved on
        self._added = getattr(self, "_added", {})
        self._added_count = getattr(self, "_added_count", 0) + 1
        self._added.setdefault(trial.trial_id, self._added_count)

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> None:
        super().on_trial_complete(tune_controller, trial, result)  # type: ignore[misc]
        getattr(self, "_added", {}).pop(trial.trial_id, None)

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        super().on_trial_remove(tune_controller, trial)  # type: ignore[misc]
        getattr(self, "_added", {}).pop(trial.trial_id, None)

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        attach(self, tune_controller)
        added = getattr(self, "_added", {})
        live = tune_controller.get_live_trials()
        for status in (Trial.PENDING, Trial.PAUSED):
            waiting = [t for t in live if t.status == status]
            if status == Trial.PENDING:
                waiting = others_first(tune_controller, waiting)
            if waiting:
                first: Trial = min(waiting, key=lambda t: added.get(t.trial_id, math.inf))
                return first
        return None


def others_first(tune_controller: Any, pending: list[Trial]) -> list[Trial]:
    """``pending`` less the trials whose own new actor is starting, while an actor that ended its
    trial is free; all of ``pending`` when that leaves none.

    Tune hands the trial chosen here to a free actor, and removes the actor that was starting for
    it. With trials shorter than an actor's start, one slot's actor thus took each trial whose
    actor was starting in the other slot, and killed that actor every time: the second slot never
    trained (one worker ran every trial in 2 of 13 runs of `python -m benchmarks.overhead
    --trials 256`). Tune's own attributes; where a Ray lacks them, the choice is Tune's.
    """
    controller = unwrapped(tune_controller)
    cache = getattr(controller, "_actor_cache", None)
    owners = getattr(controller, "_trial_to_actor", None)
    actors = getattr(controller, "_actor_manager", None)
    if cache is None or owners is None or actors is None or not cache.num_cached_objects:
        return pending
    others = [t for t in pending if t not in owners or not actors.is_actor_started(owners[t])]
    return others or pending


class FIFO(LiveTrialsFirst, FIFOScheduler):
    """Ray's FIFOScheduler."""


class ASHA(LiveTrialsFirst, AsyncHyperBandScheduler):
    """Ray's ASHAScheduler (AsyncHyperBandScheduler)."""


class MedianStopping(LiveTrialsFirst, MedianStoppingRule):
    """Ray's MedianStoppingRule."""
