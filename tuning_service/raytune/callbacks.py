"""Ray Tune callbacks that run in the driver: progress from trial events, the kept snapshot, and
Tune's trial files kept whole across a restore."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray import tune

from tuning_service.core.errors import SweepStopped
from tuning_service.core.outcomes import INFEASIBLE_KEY, REPLAYED_KEY, is_measured, trial_status
from tuning_service.core.progress import Sink, Snapshot
from tuning_service.raytune.snapshots import SNAPSHOT_FILE, RestoreWatch, Seen, keep, remove_checkpoint

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

log = logging.getLogger(__name__)


class ProgressCallback(tune.Callback):
    """Counts trial outcomes as Tune reports them and hands each change to ``sink``.

    Tune calls these hooks in the driver process, between scheduling steps.
    """

    def __init__(
        self, snapshot: Snapshot, sink: Sink | None, effective: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> None:
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

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Any, **info: Any) -> None:
        self._live[trial.trial_id] = trial
        # Tune calls this just before it marks the trial RUNNING.
        self.snapshot.running = self._running() + (trial.status != "RUNNING")
        self._emit()

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        s = self.snapshot
        s.epochs += 0 if result.get(REPLAYED_KEY) else 1
        self._last[trial.trial_id] = result
        # An infeasible trial's value is real but never the best (see `objectives`).
        if is_measured(result) and not result.get(INFEASIBLE_KEY) and result.get(s.metric) is not None:
            s.offer(float(result[s.metric]), self.effective(trial.config))
        self._live[trial.trial_id] = trial  # a trial restored by a resume reports without a start
        s.running = self._running()
        self._emit()

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Any, **info: Any) -> None:
        s = self.snapshot
        # An ended trial's last result is needed no more (it would grow every snapshot).
        last = self._last.pop(trial.trial_id, {})
        if last.get(REPLAYED_KEY):
            return  # finished before the sweep was resumed: counted from the store already
        s.count(trial_status(last, s.max_epochs, trial.config or {}))
        self._live.pop(trial.trial_id, None)
        s.running = self._running()
        self._emit()

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Any, **info: Any) -> None:
        self.snapshot.errored += 1
        self._last.pop(trial.trial_id, None)
        self._live.pop(trial.trial_id, None)
        self.snapshot.running = self._running()
        self._emit()


class SnapshotKeeper(tune.Callback):
    """Keeps ``<sweep>/tune-snapshot.tar`` at Tune's last complete snapshot, and deletes the
    checkpoints no snapshot can name any more.

    ``on_step_end`` runs after the step's ``checkpoint()``, which writes every state file
    before it returns, so the staging folder then holds one consistent snapshot.

    Checkpoints: Tune, told to keep N per trial, forces a snapshot of every trial (and
    waits for its copy) whenever a trial has saved N since the last one, so that its
    snapshot never names a deleted checkpoint; at 10,000 trials that made each trial cost
    time in proportion to the trials before it. So Tune keeps them all and this callback
    deletes them: a trial's checkpoints older than its newest ``checkpoints_kept`` go once
    an archived snapshot was taken after them, never before (the archive is what `resume`
    reads, and it names each trial's newest checkpoint at the time it was taken).
    """

    def __init__(
        self, sweep_dir: Path, watch: RestoreWatch | None = None, checkpoints_kept: int | None = None
    ) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.target = self.sweep_dir / SNAPSHOT_FILE
        self.watch = watch
        self.checkpoints_kept = checkpoints_kept
        self._seen: Seen | None = None
        # Per trial, its checkpoints not yet deleted, oldest first; only trials that saved one
        # since the last archive are looked at again.
        self._saved: dict[str, list[Path]] = {}
        self._since: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles callbacks with its experiment state; a logging handler cannot be pickled,
        # and the checkpoints seen are this driver's (a resumed sweep leaves older ones be).
        return {**self.__dict__, "watch": None, "_seen": None, "_saved": {}, "_since": set()}

    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        if self.watch is not None:
            self.watch.check()

    def on_checkpoint(
        self, iteration: int, trials: list[Trial], trial: Any, checkpoint: Any, **info: Any
    ) -> None:
        if self.checkpoints_kept is not None and getattr(checkpoint, "path", None):
            self._saved.setdefault(trial.trial_id, []).append(Path(checkpoint.path))
            self._since.add(trial.trial_id)

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        self._keep(trials)

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        self._keep(trials)

    def _keep(self, trials: list[Trial]) -> None:
        if not trials:  # Tune's staging folder is only reachable through a trial
            return
        before = self._seen
        self._seen = keep(Path(trials[0].local_experiment_path), self.target, self._seen)
        if self._seen != before and self._seen is not None:
            self._prune()

    def _prune(self) -> None:
        """Delete what the snapshot just archived cannot name: all but each trial's newest few."""
        kept = self.checkpoints_kept
        if kept is None:
            return
        for trial_id in self._since:
            saved = self._saved[trial_id]
            for old in saved[:-kept]:
                remove_checkpoint(old, self.sweep_dir)
            self._saved[trial_id] = saved[-kept:]
        self._since.clear()


class Halt(tune.Callback):
    """Stops the sweep before a driver step once ``why()`` names a reason to (raising SweepStopped).

    The runner's ``stop`` argument: a scheduled run asks whether its lock is still its own.
    """

    def __init__(self, why: Callable[[], str | None] | None) -> None:
        self.why = why

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles callbacks with its experiment state; the question is this run's alone.
        return {**self.__dict__, "why": None}

    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        reason = self.why() if self.why is not None else None
        if reason:
            raise SweepStopped(reason)


class SyncBeforeRestore(tune.Callback):
    """Waits for Tune's background copy of the sweep's files to its folder before a trial with a
    checkpoint starts again (a retry, a resumed sweep, a PBT exploit).

    Tune's loggers, which come after this callback, first copy such a trial's result.json and
    progress.csv back from the sweep folder, the files that copy rewrites (truncated, then
    written). Read in that moment, a file is empty, and the trial's rows before the restart are
    lost from it. Tune starts those copies in the driver's own steps, so none begins between this
    wait and the loggers' read. A trial without a checkpoint is not copied back: no wait.
    """

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        if trial.checkpoint is None:
            return
        syncer = getattr(getattr(trial, "storage", None), "syncer", None)
        if syncer is None:  # a Tune whose storage has no syncer copies nothing in the background
            return
        try:
            syncer.wait()
        except Exception as exc:  # noqa: BLE001 - Tune's next copy tries again; the sweep goes on
            log.warning("copying the sweep's Tune files to its folder failed: %s", exc)
