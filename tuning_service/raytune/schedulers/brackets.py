"""Ray's Hyperband and its BOHB variant, made safe to resume after the driver is killed.

Three gaps in Tune's snapshot left a resumed Hyperband sweep crashing on Tune's
``assert trial in self._live_trials``, or waiting for ever
(`tests/sweeps/faults/test_resume.py`, BOHB):

- A trial that Hyperband stops while the trial is saving a checkpoint (it checkpoints
  every epoch) stays RUNNING until the save lands, with the stop only cached in the
  controller; a snapshot taken in between holds the trial as running while the saved
  scheduler has dropped it from its bracket. A resume would run it again.
- Tune changes a trial's status without marking the trial for its next snapshot, so a
  paused trial that Hyperband stops while processing another trial's result stays
  PAUSED in the snapshot; a resume would run it again too.
- Tune brings every unfinished trial back PENDING, the ones Hyperband had paused at their
  bracket's milestone too. Tune starts each PENDING trial, so such a trial trained past the
  milestone before its bracket halved; and a halving that found one of them still waiting
  raised Tune's "unexpected bad status" error, which left the bracket marked as being
  processed, so no trial of it ran again and the sweep waited for ever.

These classes mark every trial they remove for the next snapshot. After a restore
(`state.SchedulerState`), before anything runs, they pause again each trial that the
restored brackets hold at its milestone, and stop each trial Tune brought back unfinished
that the brackets no longer hold, as the interrupted sweep had decided; one the results
store saw finish is left to replay its recorded outcome (`trainable.py`). The class names
are Ray's, so a snapshot saved by Ray's classes restores here.
"""

from __future__ import annotations

import logging
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import HyperBandForBOHB as RayHyperBandForBOHB
from ray.tune.schedulers import HyperBandScheduler as RayHyperBandScheduler

from tuning_service.raytune.snapshotpace import unwrapped

log = logging.getLogger(__name__)


class KeepsBracketsOnResume:
    """Hyperband's brackets, consistent with Tune's snapshot across a driver's kill."""

    _trial_info: dict[Trial, tuple[Any, int]]
    # Trials to pause on the next choice: brought back PENDING, held by a bracket at its milestone.
    _pause_on_resume: list[Trial]
    # Trials to stop on the next choice: unfinished in Tune's snapshot, dropped by the brackets.
    _stop_on_resume: list[Trial]

    def on_restored(self, trials: list[Trial], replayed: frozenset[str] = frozenset()) -> None:
        """Called by `state.SchedulerState` once the brackets are back: note the trials to pause
        again and those to stop.

        A trial in ``replayed`` finished in the results store after Tune's last snapshot; it
        replays its recorded outcome when run (trainable.py), which ends it as recorded. One its
        bracket holds at the milestone waits for the halving like the others: the halving
        decides from the same results as before the kill.
        """
        self._pause_on_resume = [
            trial
            for trial in trials
            if trial.status == Trial.PENDING
            and trial in self._trial_info
            and _at_milestone(self._trial_info[trial][0], trial)
        ]
        self._stop_on_resume = [
            trial
            for trial in trials
            if trial.status in (Trial.PENDING, Trial.PAUSED)
            and trial.trial_id not in replayed
            and trial in self._trial_info
            and trial not in self._trial_info[trial][0]._live_trials
        ]

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        super().on_trial_remove(tune_controller, trial)  # type: ignore[misc]
        # Tune re-serialises only marked trials; the status this removal leads to must reach
        # the next snapshot even when the trial reports nothing more (a paused trial stopped).
        mark = getattr(unwrapped(tune_controller), "_mark_trial_to_checkpoint", None)
        if mark is not None:
            mark(trial)

    def choose_trial_to_run(self, tune_controller: Any, *args: Any, **kwargs: Any) -> Trial | None:
        pause, self._pause_on_resume = getattr(self, "_pause_on_resume", []), []
        for trial in pause:
            if trial.status == Trial.PENDING:
                log.info(
                    "trial %s waited for its bracket to halve when the driver was killed; pausing it again",
                    trial,
                )
                unwrapped(tune_controller)._set_trial_status(trial, Trial.PAUSED)
                self._note_paused(tune_controller, trial)
        stop, self._stop_on_resume = getattr(self, "_stop_on_resume", []), []
        for trial in stop:
            if trial.status in (Trial.PENDING, Trial.PAUSED):
                log.info(
                    "trial %s was stopped by Hyperband before the driver was killed; stopping it again", trial
                )
                tune_controller.stop_trial(trial)
        chosen: Trial | None = super().choose_trial_to_run(tune_controller, *args, **kwargs)  # type: ignore[misc]
        return chosen

    def _note_paused(self, tune_controller: Any, trial: Trial) -> None:
        """What the scheduler does besides Tune's status when it pauses a trial: nothing here."""


def _at_milestone(bracket: Any, trial: Trial) -> bool:
    """Whether ``bracket`` holds ``trial`` paused at its milestone, waiting for the others: the
    trial's last result reached it, and the bracket has not finished (a finished bracket stops
    its trials)."""
    result = bracket._live_trials.get(trial)
    return (
        result is not None and not bracket.finished() and bracket._get_result_time(result) >= bracket._cumul_r
    )


class HyperBandScheduler(KeepsBracketsOnResume, RayHyperBandScheduler):
    """Ray's HyperBandScheduler."""


class HyperBandForBOHB(KeepsBracketsOnResume, RayHyperBandForBOHB):
    """Ray's HyperBandForBOHB."""

    def _note_paused(self, tune_controller: Any, trial: Trial) -> None:
        # As Ray's class does when it pauses a trial: BOHB's searcher counts it as not running.
        tune_controller.search_alg.searcher.on_pause(trial.trial_id)
