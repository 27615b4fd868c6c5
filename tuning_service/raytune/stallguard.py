"""StallGuard: ends a sweep in which no trial has run for a long time, instead of waiting for ever.

Ray Tune waits as long as a trial is unfinished or its searcher may still suggest one. Where
nothing can run any more (a scheduler that holds every trial back, a searcher that counts trials
as running that have ended), it only logs, once a minute, that no trial is running and none has
started, and the command never returns. On the embedded Ray, whose CPUs and GPUs are the
machine's and were checked against the trials' needs before the sweep started, a trial that
waits that long has nothing to wait for. The guard then stops the sweep with one line, recorded
as interrupted, so `tuning-service resume` can continue it once the cause is fixed.

How long it waits: `core.stall` (``$TUNING_SERVICE_STALL_S``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from ray import tune
from ray.tune.experiment import Trial

from tuning_service.core.errors import SweepStopped
from tuning_service.core.stall import STALL_ENV


class StallGuard(tune.Callback):
    """Raises SweepStopped before a driver step once no trial has run for ``limit_s`` seconds.

    A trial's start, result or end counts as running; the trials' statuses are looked at only
    once that long has passed without one (a single epoch may take longer: its trial is
    RUNNING all the while), so a step costs no walk over the sweep's trials.
    """

    def __init__(self, limit_s: float, sweep_id: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit_s, self.sweep_id, self.clock = limit_s, sweep_id, clock
        self._last: float | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles callbacks with its experiment state; a resumed sweep's waiting starts anew.
        return {**self.__dict__, "_last": None}

    def _ran(self, *args: Any, **info: Any) -> None:
        self._last = self.clock()

    on_trial_start = on_trial_restore = on_trial_result = on_trial_complete = on_trial_error = _ran

    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        if not self.limit_s:
            return
        now = self.clock()
        if self._last is None:
            self._last = now
        if now - self._last < self.limit_s:
            return
        if any(trial.status == Trial.RUNNING for trial in trials):
            self._last = now  # a long epoch: its trial reports nothing while it trains
            return
        waiting = Counter(
            trial.status.lower() for trial in trials if trial.status in (Trial.PENDING, Trial.PAUSED)
        )
        waits = ", ".join(f"{count} {status}" for status, count in sorted(waiting.items())) or "none"
        raise SweepStopped(
            f"no trial has run for {self.limit_s:g} s (trials waiting: {waits}); the sweep is stopped "
            f"rather than left waiting for ever and recorded as interrupted: `tuning-service resume "
            f"{self.sweep_id}` continues it ({STALL_ENV} sets the wait, 0 turns this off; its log, "
            "ray.log in the sweep's folder, says what Ray Tune was waiting for)"
        )
