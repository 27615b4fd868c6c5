"""A trial's events written down after Tune has sent its worker the next call.

Tune handles a trial's event whole before it sends the trial's worker its next call: a result
goes to the scheduler, the searcher and every callback, and only then does the worker get its
next epoch; a trial's start goes to every callback before its first. So the worker waits while
the driver writes the event down: the results store's rows, the trial's result.json,
progress.csv and TensorBoard file. None of those writes decides what the trial does next.

While a sweep runs (`writes_after_dispatch`), the callbacks that only write down (Tune's
loggers, the sweep's TensorBoard logger and the results store's recorder: `writes_only`) take
their trial events at the end of the step's event instead, just before the step's snapshot
(`TuneController.checkpoint`): in the order Tune called them, so each sees Tune's order, and
before the snapshot, so no snapshot names a start, a result or an end that the store and the
files have not seen. Their other hooks (a step's start or end, the experiment's end) first run
what is waiting, and so does the end of the context. Every other callback (the schedulers'
state, progress, the snapshot's keeper and pace) takes each event as Tune calls it.

A restarted trial's loggers copy its files back from the sweep's folder as it starts
(`callbacks.SyncBeforeRestore`): deferred, they still do so before the step's snapshot starts
Tune's next copy the other way.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from typing import Any

from ray.tune.logger import LoggerCallback

from tuning_service.raytune.tunepatch import replaced

log = logging.getLogger(__name__)

# Tune's per-trial callback hooks: those of a callback that only writes down wait for the snapshot.
TRIAL_HOOKS = (
    "on_trial_start",
    "on_trial_restore",
    "on_trial_save",
    "on_trial_result",
    "on_trial_complete",
    "on_trial_recover",
    "on_trial_error",
    "on_checkpoint",
)
# Tune's hooks that come after a step's events (or end the run): what is waiting runs first.
AFTER_EVENTS = ("on_step_begin", "on_step_end", "on_experiment_end")


class Waiting:
    """The deferred hook calls of one run, in the order Tune made them."""

    def __init__(self) -> None:
        self.calls: deque[Callable[[], None]] = deque()

    def add(self, call: Callable[[], None]) -> None:
        self.calls.append(call)

    def run(self) -> None:
        """Run every waiting call, oldest first (one that raises leaves the rest waiting)."""
        while self.calls:
            self.calls.popleft()()


def writes_only(callback: Any) -> bool:
    """Whether ``callback`` only writes events down (nothing in the run reads what it does):
    Tune's loggers (JSON, CSV, TensorBoard, MLflow) and those that say so (``WRITES_ONLY``)."""
    return isinstance(callback, LoggerCallback) or getattr(callback, "WRITES_ONLY", False) is True


@contextmanager
def writes_after_dispatch() -> Iterator[None]:
    """While open, callbacks that `writes_only` take their trial events just before each
    step's snapshot (see the module docstring); a Ray whose Tune names these parts otherwise
    runs every callback as Tune does, and the log says so."""
    try:
        from ray.tune.callback import CallbackList
        from ray.tune.execution.tune_controller import TuneController

        tunes_checkpoint = TuneController.checkpoint
        tunes_after = {name: getattr(CallbackList, name) for name in AFTER_EVENTS}
        for name in TRIAL_HOOKS:
            getattr(CallbackList, name)
    except (ImportError, AttributeError) as exc:
        log.debug("every callback takes Tune's events as Tune calls it: %s", exc)
        yield
        return

    waiting = Waiting()

    def trial_hook(name: str) -> Callable[..., None]:
        def hook(self: Any, **info: Any) -> None:
            for callback in self._callbacks:
                method = getattr(callback, name)
                if writes_only(callback):
                    waiting.add(partial(method, **info))
                else:
                    method(**info)

        return hook

    def after_events(tunes: Callable[..., None]) -> Callable[..., None]:
        def hook(self: Any, **info: Any) -> None:
            waiting.run()
            tunes(self, **info)

        return hook

    def checkpoint(self: Any, force: bool = False, wait: bool = False) -> None:
        waiting.run()
        tunes_checkpoint(self, force=force, wait=wait)

    with ExitStack() as stack:
        for name in TRIAL_HOOKS:
            stack.enter_context(replaced(CallbackList, name, trial_hook(name)))
        for name in AFTER_EVENTS:
            stack.enter_context(replaced(CallbackList, name, after_events(tunes_after[name])))
        stack.enter_context(replaced(TuneController, "checkpoint", checkpoint))
        try:
            yield
        finally:
            if waiting.calls:
                # The run ended between an event and its step's snapshot (Tune's end runs them).
                try:
                    waiting.run()
                except Exception as exc:  # noqa: BLE001 - the run's own outcome is what the caller sees
                    log.warning("a trial event could not be written down at the sweep's end: %s", exc)
