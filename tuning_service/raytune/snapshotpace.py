"""When Tune snapshots a sweep: in each driver step that changed what a resume needs.

Tune snapshots the experiment on a timer (``TUNE_GLOBAL_CHECKPOINT_S``). At every step
(period 0) each epoch's result costs the driver a snapshot: the trials' states, the searcher
and the callbacks written out, then copied and archived (`snapshots.py`). A longer period lets
a killed driver forget the trials it started since. Yet a resume reads little from a step
that only took an epoch's result: it restarts each trial from its newest checkpoint, whatever
the snapshot says of the epochs since. So `SnapshotPace` has Tune snapshot in the steps where
a trial was added, started, saved a checkpoint, was restored or retried, ended or failed, and
otherwise every FALLBACK_PERIOD_S (`python -m benchmarks.overhead` measures the difference).

Each snapshot writes every trial (a few KB each, `trialmetadata.py`) and is archived, so
its cost grows with the sweep: a snapshot in every such step made a sweep's driver time grow
with the square of its trials. A step that added, restored or retried a trial is always
snapshotted, so a killed driver forgets no trial the searcher drew. A step where a trial only
started, saved a checkpoint, ended or failed can wait: a resume replays a trial that ended from
the results store, and runs any other from the newest checkpoint the snapshot names (or from
its start). So such a step's snapshot waits until the last one (Tune's save and our archive of
it) is SPACING times its cost old: snapshots take at most a tenth of the driver's time, however
cheap or costly each is (`python -m benchmarks.overhead --trials N` measures the difference).

Tune hands its controller to schedulers only: `LiveTrialsFirst` (FIFO, ASHA, median
stopping, MO-ASHA) passes it here. That a snapshot is due is told to Tune's checkpoint
manager by forgetting when it last saved: its own attributes, which
tests/raytune/test_snapshot_pace.py checks on the installed Ray. Where they are missing, the
driver warns once and sets the manager, if it has one, to snapshot every step (as without a
pace); without one, Tune's fallback period is all that is left.
"""

from __future__ import annotations

import logging
import time
import weakref
from typing import TYPE_CHECKING, Any

from ray import tune

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

log = logging.getLogger(__name__)

# Between the steps that need one, Tune still snapshots this often (Tune's own shortest
# automatic period), so a sweep's progress in its snapshot is never older than this.
FALLBACK_PERIOD_S = 10.0
# A start's, checkpoint's or end's snapshot waits until the last one is this many times its cost old.
SPACING = 9.0

# Scheduler -> the pace of the run it schedules (schedulers are pickled and restored with
# the sweep, so the pace is not kept on them).
_PACES: weakref.WeakKeyDictionary[Any, SnapshotPace] = weakref.WeakKeyDictionary()


def paced(scheduler: Any) -> bool:
    """Whether ``scheduler`` hands Tune's controller on (``PACES_SNAPSHOTS``), so a pace can be kept."""
    return bool(getattr(scheduler, "PACES_SNAPSHOTS", False))


def snapshot_due(scheduler: Any, controller: Any) -> None:
    """A scheduler's hook saw a change a resume needs: snapshot at the end of this step."""
    pace = _PACES.get(scheduler)
    if pace is not None:
        pace.attach(controller)
        pace.due()


def attach(scheduler: Any, controller: Any) -> None:
    """Let the pace of ``scheduler``'s run reach the ``controller`` Tune handed it."""
    pace = _PACES.get(scheduler)
    if pace is not None:
        pace.attach(controller)


def unwrapped(controller: Any) -> Any:
    """Tune's controller behind the wrapper it hands schedulers."""
    return getattr(controller, "_tune_controller", controller)


class SnapshotPace(tune.Callback):
    """Marks the driver steps that must end with a snapshot (see the module docstring).

    Tune calls the hooks below while it handles a step's events, before the step's own
    snapshot, so the snapshot that step takes holds the change.
    """

    def __init__(self, scheduler: Any) -> None:
        self._manager: Any = None
        self._warned = False
        # When this step's snapshot began (None: it took none), what the last one cost (Tune's
        # save and our archive of it) and when it ended, all on time.monotonic.
        self._began: float | None = None
        self._cost = 0.0
        self._ended = float("-inf")
        _PACES[scheduler] = self

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles callbacks with the sweep; the manager and the timings are this driver's.
        return {**self.__dict__, "_manager": None, "_began": None, "_cost": 0.0, "_ended": float("-inf")}

    def attach(self, controller: Any) -> None:
        manager = getattr(unwrapped(controller), "_checkpoint_manager", None)
        if manager is not None and manager is self._manager:
            return
        self._manager = None
        if manager is None or not hasattr(manager, "_last_save_time"):
            # This Ray keeps its snapshot's timing elsewhere: no step can be marked, so every
            # step snapshots where the period can be reached, and the log says so.
            if manager is not None and hasattr(manager, "_checkpoint_period"):
                manager._checkpoint_period = 0.0
            if not self._warned:
                self._warned = True
                log.warning("this Ray Tune's snapshot timing is unknown: the sweep's snapshot pace is off")
            return
        self._manager = manager
        self._time(manager)

    def _time(self, manager: Any) -> None:
        """Note when each of ``manager``'s snapshots begins (its cost ends with the step, in
        `on_step_end`, after our archive of it). `attach` calls it once per manager."""
        syncing = manager.sync_up_experiment_state

        def timed(*args: Any, **kwargs: Any) -> Any:
            before, began = manager._last_save_time, time.monotonic()
            try:
                return syncing(*args, **kwargs)
            finally:
                if manager._last_save_time != before:  # it saved: Tune sets it after each snapshot
                    self._began = began

        manager.sync_up_experiment_state = timed

    def due(self, *, can_wait: bool = False) -> None:
        """Snapshot at the end of this step; for a change that ``can_wait``, once the last
        one is SPACING times its cost old."""
        manager = self._manager
        if manager is None:
            return
        if not can_wait:
            manager._last_save_time = float("-inf")
            return
        # Tune snapshots at a step's end once now - _last_save_time reaches its period.
        at = self._ended + SPACING * self._cost - manager._checkpoint_period
        manager._last_save_time = min(manager._last_save_time, at)

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        if self._began is not None:
            # The sweep lists this pace after SnapshotKeeper: the snapshot's archive is part of its cost.
            self._ended = time.monotonic()
            self._cost, self._began = self._ended - self._began, None
            log.debug("the snapshot of %d trials took %.1f ms", len(trials), self._cost * 1000)

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.due(can_wait=True)

    def on_trial_restore(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.due()

    def on_checkpoint(
        self, iteration: int, trials: list[Trial], trial: Trial, checkpoint: Any, **info: Any
    ) -> None:
        self.due(can_wait=True)

    def on_trial_recover(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.due()

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.due(can_wait=True)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.due(can_wait=True)
