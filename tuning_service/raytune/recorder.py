"""RecorderCallback: a Tune callback that writes trials and epochs to the store as they happen."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from ray import tune

from tuning_service.core.outcomes import (
    DIVERGED_KEY,
    ERROR_KEY,
    REPLAYED_KEY,
    classify_error,
    outcome_message,
    trial_status,
)
from tuning_service.core.results import ERRORED
from tuning_service.store.engine import StoreError
from tuning_service.store.records import Store, open_store

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

log = logging.getLogger(__name__)

# How often the driver proves it is alive (see Store.cleanup_stale).
HEARTBEAT_S = 30.0
# After a failed write, skip writes this long: a database that is down must not stall
# the sweep; the runner's final reconciliation fills in what was skipped.
BACKOFF_S = 30.0
# Tune's bookkeeping keys: not metrics of the model.
_NOT_METRICS = {
    "training_iteration",
    "timestamp",
    "pid",
    "time_since_restore",
    "iterations_since_restore",
    "timesteps_since_restore",
    "timesteps_total",
    "episodes_total",
    "done",
    "should_checkpoint",
    "time_total_s",
}
_NODE_KEYS = ("node_ip", "node_id", "hostname")


def epoch_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of one epoch worth keeping: Keras's logs, our keys, the epoch's time."""
    return {
        k: float(v)
        for k, v in result.items()
        if k not in _NOT_METRICS
        and isinstance(v, int | float)
        and not isinstance(v, bool)
        and math.isfinite(v)
    }


class RecorderCallback(tune.Callback):
    """Records every trial start, epoch, checkpoint and outcome in the results store.

    Tune calls these hooks in the driver process. Each write is an idempotent upsert,
    so a hook replayed after a restore changes nothing. Pickled with the Tuner: the
    store's connection is dropped and reopened from its URL on first use.

    Nothing in the run reads what it writes, so its trial events wait until Tune has sent the
    trial's worker its next call (`deferredwrites`).
    """

    WRITES_ONLY = True

    def __init__(
        self,
        store: Store,
        sweep_id: str,
        *,
        metric: str,
        mode: str,
        max_epochs: int,
        effective: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> None:
        self.url, self.sweep_id = store.full_url, sweep_id
        self.metric, self.mode, self.max_epochs, self.effective = metric, mode, max_epochs, effective
        self._store: Store | None = store
        self._last: dict[str, dict[str, Any]] = {}
        self._beat = time.monotonic()
        self._skip_until = 0.0
        self.missed = 0  # writes skipped or failed; the final reconciliation covers them

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles callbacks into the sweep's folder: never the database password. A
        # copy unpickled from there records nothing (`resume` builds a new recorder).
        return {**self.__dict__, "_store": None, "url": None}

    @property
    def store(self) -> Store:
        if self._store is None:
            if self.url is None:
                raise StoreError("this recorder was restored from a snapshot and has no database URL")
            self._store = open_store(self.url)
        return self._store

    def _write(self, what: str, write: Callable[[Store], None]) -> bool:
        """Run ``write``; False (logged, counted in ``missed``) when the store refused it or is backing off."""
        if time.monotonic() < self._skip_until:
            self.missed += 1
            return False
        try:
            write(self.store)
        except StoreError as exc:
            self.missed += 1
            self._skip_until = time.monotonic() + BACKOFF_S
            log.warning(
                "sweep %s: could not record %s (%s); will reconcile at the end", self.sweep_id, what, exc
            )
            return False
        return True

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        if time.monotonic() - self._beat >= HEARTBEAT_S:
            self._beat = time.monotonic()
            self._write("a heartbeat", lambda s: s.heartbeat(self.sweep_id))

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Any, **info: Any) -> None:
        config = self.effective(trial.config or {})
        self._write(f"trial {trial.trial_id}", lambda s: s.start_trial(self.sweep_id, trial.trial_id, config))

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        self._last[trial.trial_id] = result
        epoch = result.get("training_iteration")
        # A failed step trained no epoch; a replayed one is recorded already.
        if epoch is None or result.get(ERROR_KEY) or result.get(REPLAYED_KEY):
            return
        raw = result.get(self.metric)
        diverged = bool(result.get(DIVERGED_KEY))
        value = float(raw) if isinstance(raw, int | float) and not diverged else None
        self._write(
            f"epoch {epoch} of trial {trial.trial_id}",
            lambda s: s.record_epoch(
                self.sweep_id,
                trial.trial_id,
                int(epoch),
                mode=self.mode,
                value=value,
                diverged=diverged,
                metrics=epoch_metrics(result),
                config=self.effective(trial.config or {}),
                node={k: result.get(k) for k in _NODE_KEYS},
                train_time_s=result.get("train_time_s"),
                duration_s=result.get("time_total_s"),
                # The first epoch since a start or a restore: a restarted trial's later rows go.
                restarted=result.get("iterations_since_restore") == 1,
            ),
        )

    def on_checkpoint(
        self, iteration: int, trials: list[Trial], trial: Any, checkpoint: Any, **info: Any
    ) -> None:
        path = getattr(checkpoint, "path", None)
        if path:
            self._write(
                f"the checkpoint of trial {trial.trial_id}",
                lambda s: s.record_checkpoint(self.sweep_id, trial.trial_id, str(path)),
            )

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Any, **info: Any) -> None:
        last = self._last.pop(trial.trial_id, None) or dict(trial.last_result or {})
        if last.get(REPLAYED_KEY):
            return  # finished before the driver died: its outcome is recorded
        status = trial_status(last, self.max_epochs, trial.config or {})
        self._finish(trial, status, outcome_message(status, last, self.max_epochs), last)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Any, **info: Any) -> None:
        last = self._last.pop(trial.trial_id, None) or dict(trial.last_result or {})
        self._finish(trial, ERRORED, _error_line(trial), last)

    def _finish(self, trial: Any, status: str, message: str | None, last: Mapping[str, Any]) -> None:
        checkpoint = getattr(trial.checkpoint, "path", None) if trial.checkpoint else None
        self._write(
            f"the outcome of trial {trial.trial_id}",
            lambda s: s.finish_trial(
                self.sweep_id,
                trial.trial_id,
                status,
                message=message,
                config=self.effective(trial.config or {}),
                duration_s=last.get("time_total_s"),
                checkpoint=str(checkpoint) if checkpoint else None,
            ),
        )


class LineageRecorder(tune.Callback):
    """Records the exploits of a population-based scheduler (whom a trial copied, at which epoch,
    what changed) after every driver step. The scheduler keeps each in its ``exploits`` list, which
    Tune's snapshot saves, until it is written: one the store refused is written at a later step."""

    def __init__(self, recorder: RecorderCallback, scheduler: Any) -> None:
        self.recorder, self.scheduler = recorder, scheduler

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles callbacks with the tuner: a `resume` builds a new recorder around its scheduler.
        return {"recorder": None, "scheduler": None}

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        self._record()

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        self._record()

    def _record(self) -> None:
        pending = getattr(self.scheduler, "exploits", None)
        recorder = self.recorder
        while pending and recorder is not None:
            exploit = pending[0]
            if not recorder._write(
                f"exploit {exploit['number']} (trial {exploit['trial_id']} copied {exploit['donor_id']})",
                partial(Store.record_exploit, sweep_id=recorder.sweep_id, exploit=exploit),
            ):
                return
            pending.pop(0)


def lineage_recorders(recorder: RecorderCallback, scheduler: Any) -> list[Any]:
    """The lineage recorder for a scheduler whose trials copy each other (PBT), else none."""
    return [LineageRecorder(recorder, scheduler)] if hasattr(scheduler, "exploits") else []


def _error_line(trial: Any) -> str:
    """The last line of a trial's error (the exception itself, not the traceback)."""
    try:
        text = trial.get_error()
    except Exception:  # noqa: BLE001 - an unreadable error file must not hide the error
        text = None
    return classify_error(str(text or ""))
