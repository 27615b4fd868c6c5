"""Live sweep counters: running, done, stopped early, diverged, best so far."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tuning_service.core.results import COMPLETED, DIVERGED, ERRORED, INFEASIBLE, STOPPED

# A finished trial's status -> the counter it adds to.
_COUNTERS = {
    COMPLETED: "completed",
    STOPPED: "stopped",
    INFEASIBLE: "infeasible",
    DIVERGED: "diverged",
    ERRORED: "errored",
}


@dataclass
class Snapshot:
    """What a progress view shows; the CLI renders it, tests read it."""

    total: int
    metric: str
    mode: str
    max_epochs: int
    started: float = field(default_factory=time.monotonic)
    running: int = 0
    completed: int = 0
    stopped: int = 0
    diverged: int = 0
    errored: int = 0
    infeasible: int = 0
    epochs: int = 0
    best: float | None = None
    best_config: dict[str, Any] | None = None

    @property
    def finished(self) -> int:
        return self.completed + self.stopped + self.diverged + self.errored + self.infeasible

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def count(self, status: str, n: int = 1) -> None:
        """``n`` more trials finished with ``status``."""
        setattr(self, _COUNTERS[status], getattr(self, _COUNTERS[status]) + n)

    def offer(self, value: float, config: dict[str, Any]) -> None:
        if self.best is None or (value > self.best if self.mode == "max" else value < self.best):
            self.best, self.best_config = value, config


Sink = Callable[[Snapshot], None]
