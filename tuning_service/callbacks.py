"""Ray Tune callbacks that run in the driver: progress from trial events, and the kept snapshot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray import tune

from tuning_service.errors import SweepStopped
from tuning_service.outcomes import REPLAYED_KEY, is_measured, trial_status
from tuning_service.progress import Sink, Snapshot
from tuning_service.snapshots import SNAPSHOT_FILE, RestoreWatch, Seen, keep


class ProgressCallback(tune.Callback):
    """Counts trial outcomes as Tune reports them and hands each change to ``sink``.

    Tune calls these hooks in the driver process, between scheduling steps.
    """

    def __init__(self, snapshot: Snapshot, sink: Sink | None, effective: Callable[[dict], dict]) -> None:
        self.snapshot, self.sink, self.effective = snapshot, sink, effective
        self._last: dict[str, dict[str, Any]] = {}
        # Trials started and not yet ended (running or paused): counting the running ones
        # among them, not among all of the sweep's trials, keeps an event's cost flat as a
        # sweep of thousands of trials grows.
        self._live: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles callbacks with its experiment state; a live view cannot be pickled,
        # and trials are Tune's to restore.
        return {**self.__dict__, "sink": None, "_live": {}}

    def _running(self) -> int:
        return sum(1 for t in self._live.values() if t.status == "RUNNING")

    def _emit(self) -> None:
        if self.sink is not None:
            self.sink(self.snapshot)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._live[trial.trial_id] = trial
        # Tune calls this just before it marks the trial RUNNING.
        self.snapshot.running = self._running() + (trial.status != "RUNNING")
        self._emit()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        s = self.snapshot
        s.epochs += 0 if result.get(REPLAYED_KEY) else 1
        self._last[trial.trial_id] = result
        if is_measured(result) and result.get(s.metric) is not None:
            s.offer(float(result[s.metric]), self.effective(trial.config))
        self._live[trial.trial_id] = trial  # a trial restored by a resume reports without a start
        s.running = self._running()
        self._emit()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        s = self.snapshot
        # An ended trial's last result is needed no more (it would grow every snapshot).
        last = self._last.pop(trial.trial_id, {})
        if last.get(REPLAYED_KEY):
            return  # finished before the sweep was resumed: counted from the store already
        s.count(trial_status(last, s.max_epochs, trial.config or {}))
        self._live.pop(trial.trial_id, None)
        s.running = self._running()
        self._emit()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.snapshot.errored += 1
        self._last.pop(trial.trial_id, None)
        self._live.pop(trial.trial_id, None)
        self.snapshot.running = self._running()
        self._emit()


class SnapshotKeeper(tune.Callback):
    """Keeps ``<sweep>/tune-snapshot.tar`` at Tune's last complete snapshot.

    ``on_step_end`` runs after the step's ``checkpoint()``, which writes every state file
    before it returns, so the staging folder then holds one consistent snapshot.
    """

    def __init__(self, sweep_dir: Path, watch: RestoreWatch | None = None) -> None:
        self.target = Path(sweep_dir) / SNAPSHOT_FILE
        self.watch = watch
        self._seen: Seen | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles callbacks with its experiment state; a logging handler cannot be pickled.
        return {**self.__dict__, "watch": None, "_seen": None}

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if self.watch is not None:
            self.watch.check()

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self._keep(trials)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._keep(trials)

    def _keep(self, trials: list) -> None:
        if trials:  # Tune's staging folder is only reachable through a trial
            self._seen = keep(Path(trials[0].local_experiment_path), self.target, self._seen)


class Halt(tune.Callback):
    """Stops the sweep before a driver step once ``why()`` names a reason to (raising SweepStopped).

    The runner's ``stop`` argument: a scheduled run asks whether its lock is still its own.
    """

    def __init__(self, why: Callable[[], str | None] | None) -> None:
        self.why = why

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles callbacks with its experiment state; the question is this run's alone.
        return {**self.__dict__, "why": None}

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        reason = self.why() if self.why is not None else None
        if reason:
            raise SweepStopped(reason)
