"""This process's garbage collections within a stretch of wall-clock time.

Python's collector stops the thread that triggers it; in a sweep's driver a full collection
walks every object the driver holds (Ray, Tune and their libraries, every trial), while the
workers wait for their next call. A scenario that runs the driver in this process (`overhead`)
notes each collection as it happens (`gc.callbacks`), then asks how many there were, and how
long they took, between two moments it learns afterwards (its first and last epoch).
"""

from __future__ import annotations

import gc
import time
from types import TracebackType
from typing import Any


class GcPauses:
    """(wall time at its start, seconds, generation) of every collection until the block ends."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, float, int]] = []
        self._began: tuple[float, float] | None = None

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._note)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        gc.callbacks.remove(self._note)

    def _note(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = (time.time(), time.perf_counter())
        elif self._began is not None:
            wall, began = self._began
            self.pauses.append((wall, time.perf_counter() - began, int(info["generation"])))
            self._began = None

    def within(self, start: float, end: float) -> dict[int, tuple[int, float]]:
        """Per generation, the collections that began between ``start`` and ``end`` and their seconds."""
        out: dict[int, tuple[int, float]] = {}
        for wall, seconds, generation in self.pauses:
            if start <= wall <= end:
                count, total = out.get(generation, (0, 0.0))
                out[generation] = (count + 1, total + seconds)
        return out
