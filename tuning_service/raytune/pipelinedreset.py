"""A reused actor gets its new trial's reset and first call together, not one driver step apart.

When Tune hands a finished trial's actor to the next trial, it sends the actor ``reset`` and
waits for the answer, then, in a later step of the driver, sends the trial's first ``train``:
the worker sits idle for a round trip through the driver's loop, once per trial, while the
driver handles the other trials' events. A trainable whose reset cannot refuse
(``RESET_CANNOT_FAIL``: its ``reset_config`` only stores the configuration and returns True)
has nothing in that answer for Tune to wait on, so here Tune starts the trial in the step that
sends the reset: its first call (or its restore, for a paused trial) goes out right behind the
reset, and Ray runs an actor's calls in the order they were sent. An error raised by the reset
still fails the trial as Tune's own reset would (Tune's error handler is kept).

Other trainables keep Tune's reset, and so does a Tune without the names this replaces (one
debug line).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tuning_service.raytune.tunepatch import replaced

log = logging.getLogger(__name__)

# The class attribute that says a trainable's reset always succeeds.
CANNOT_FAIL = "RESET_CANNOT_FAIL"


def reset_cannot_fail(trial: Any) -> bool:
    """Whether ``trial``'s trainable says its reset always succeeds."""
    try:
        return bool(getattr(trial.get_trainable_cls(), CANNOT_FAIL, False))
    except Exception:  # noqa: BLE001 - a trainable Tune cannot look up keeps Tune's reset
        return False


@contextmanager
def resets_pipelined() -> Iterator[None]:
    """While open, a reused actor's reset and its trial's first call go out in one step (above).

    Tune sends resets while it adds actors (`_maybe_add_actors`), and its bookkeeping there
    (which trials are staged) expects a reused trial to start later, when the reset's answer
    comes. So the trials whose reset needs no answer start at the end of that same call, as
    Tune would start them on the answer (`_on_trial_reset`), before the driver's step waits.
    """
    try:
        from ray.tune.execution.tune_controller import TuneController

        tunes_reset = TuneController._schedule_trial_reset
        tunes_add = TuneController._maybe_add_actors
        TuneController._actor_started  # noqa: B018 - the method this calls
    except (ImportError, AttributeError) as exc:
        log.debug("reused actors wait for their reset: %s", exc)
        yield
        return
    due: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()

    def _schedule_trial_reset(controller: Any, trial: Any, new_config: Any, new_experiment_tag: str) -> None:
        if not reset_cannot_fail(trial):
            tunes_reset(controller, trial, new_config, new_experiment_tag)
            return
        schedule = controller._schedule_trial_task

        def without_waiting(*args: Any, **kwargs: Any) -> Any:
            kwargs["on_result"] = None  # nothing to wait for; Tune's on_error stays
            return schedule(*args, **kwargs)

        controller._schedule_trial_task = without_waiting  # for this call only
        try:
            tunes_reset(controller, trial, new_config, new_experiment_tag)
        finally:
            vars(controller).pop("_schedule_trial_task", None)
        due.setdefault(controller, []).append(trial)

    def _maybe_add_actors(controller: Any) -> None:
        tunes_add(controller)
        for trial in due.pop(controller, []):
            # What Tune does on a reset's successful answer, unless something else took the trial.
            if trial in controller._resetting_trials and trial in controller._trial_to_actor:
                controller._resetting_trials.discard(trial)
                controller._actor_started(controller._trial_to_actor[trial], log="REUSED")

    with (
        replaced(TuneController, "_schedule_trial_reset", _schedule_trial_reset),
        replaced(TuneController, "_maybe_add_actors", _maybe_add_actors),
    ):
        yield
