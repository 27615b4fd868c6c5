"""SchedulerState: keeps a trial scheduler's state in Tune's experiment snapshot.

Tune's snapshot holds the trials, the searcher and stateful callbacks, but not the
scheduler: a restored ASHA forgets every rung value it has seen and a restored
Hyperband its brackets, so a resumed sweep would promote and stop trials differently
from the sweep that was interrupted. This callback rides along in the snapshot and
puts the scheduler's attributes back once the restored trials exist again.
"""

from __future__ import annotations

import io
import logging
import pickle
import types
from typing import Any

from ray import tune
from ray.tune.experiment import Trial

log = logging.getLogger(__name__)


class _TrialsById(pickle.Pickler):
    """Pickles the scheduler's references to trials as their ids (a restore makes new Trial objects)."""

    def persistent_id(self, obj: Any) -> Any:
        return ("trial", obj.trial_id) if isinstance(obj, Trial) else None


class _TrialsFromIds(pickle.Unpickler):
    def __init__(self, data: bytes, trials: dict[str, Any]) -> None:
        super().__init__(io.BytesIO(data))
        self.trials = trials

    def persistent_load(self, pid: Any) -> Any:
        kind, trial_id = pid
        if kind != "trial" or trial_id not in self.trials:
            raise pickle.UnpicklingError(f"the snapshot's scheduler refers to an unknown trial {trial_id}")
        return self.trials[trial_id]


def _without_functions(attributes: dict[str, Any]) -> dict[str, Any]:
    """A scheduler's attributes but its functions: Hyperband keeps two lambdas (bracket sizes
    from its constructor's arguments), which cannot be pickled and which the restored scheduler,
    built with the same arguments, already has."""
    return {k: v for k, v in attributes.items() if not isinstance(v, types.FunctionType)}


class SchedulerState(tune.Callback):
    """Saves ``scheduler``'s attributes with every Tune snapshot; restores them on resume."""

    def __init__(self, scheduler: Any, replayed: frozenset[str] = frozenset()) -> None:
        self.scheduler = scheduler
        # Trials a resume replays from the results store (finished there, not in Tune's snapshot).
        self.replayed = replayed
        self._pending: bytes | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_pending": None}

    def get_state(self) -> dict[str, Any] | None:
        buffer = io.BytesIO()
        try:
            # A scheduler may leave out what cannot outlive the driver (PBT: saves in flight).
            saved = getattr(self.scheduler, "snapshot_vars", lambda: vars(self.scheduler))()
            _TrialsById(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(_without_functions(saved))
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            log.warning("the %s scheduler's state cannot be saved (%s)", type(self.scheduler).__name__, exc)
            return None
        return {"scheduler": type(self.scheduler).__name__, "state": buffer.getvalue()}

    def set_state(self, state: dict[str, Any]) -> None:
        if state.get("scheduler") == type(self.scheduler).__name__:
            self._pending = state["state"]

    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        # Tune restores callbacks before it re-adds the restored trials, so the scheduler's
        # references to trials can only be resolved on the first step of the resumed run.
        if self._pending is None:
            return
        data, self._pending = self._pending, None
        try:
            restored = _TrialsFromIds(data, {t.trial_id: t for t in trials}).load()
        except (pickle.UnpicklingError, EOFError, AttributeError) as exc:
            log.warning("the scheduler starts afresh: its saved state could not be restored (%s)", exc)
            return
        vars(self.scheduler).update(restored)
        # A scheduler may square its state with the trials Tune restored (brackets.py).
        on_restored = getattr(self.scheduler, "on_restored", None)
        if on_restored is not None:
            on_restored(trials, self.replayed)
        log.info("restored the %s scheduler's state from the sweep's snapshot", type(self.scheduler).__name__)
