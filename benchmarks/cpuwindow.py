"""CPU used within a stretch of wall-clock time: this process's, and the whole machine's.

A scenario that runs the sweep's driver in this process (`overhead`) samples both on a thread
while the sweep runs, then asks what each used between two moments it learns afterwards (its
first and last epoch). Linear interpolation between samples SAMPLE_S apart. The machine's figure
comes from Linux's /proc/stat and is None elsewhere.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from pathlib import Path
from types import TracebackType

SAMPLE_S = 0.05
_PROC_STAT = Path("/proc/stat")


def machine_busy_s() -> float | None:
    """CPU seconds all cores have spent not idle since boot (None without /proc/stat)."""
    try:
        first = _PROC_STAT.read_text(encoding="ascii").splitlines()[0].split()
    except OSError:
        return None
    # cpu user nice system idle iowait irq softirq steal ...: time stolen by the host is not ours.
    jiffies = [int(v) for v in first[1:9]]
    busy = sum(jiffies) - jiffies[3] - jiffies[4] - jiffies[7]
    return busy / os.sysconf("SC_CLK_TCK")


class CpuWindow:
    """Samples (wall time, this process's CPU s, the machine's busy CPU s) until the block ends."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-window", daemon=True)

    def __enter__(self) -> CpuWindow:
        self._sample()
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        self.samples.append((time.time(), time.process_time(), machine_busy_s()))

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self._sample()

    def used(self, start: float, end: float) -> tuple[float, float | None]:
        """CPU seconds this process and the machine used between the wall times ``start`` and ``end``."""
        process = self._at(start, end, 1)
        machine = self._at(start, end, 2) if all(s[2] is not None for s in self.samples) else None
        return process or 0.0, machine

    def _at(self, start: float, end: float, column: int) -> float | None:
        if len(self.samples) < 2:
            return None
        return self._value(end, column) - self._value(start, column)

    def _value(self, when: float, column: int) -> float:
        times = [s[0] for s in self.samples]
        i = min(max(bisect.bisect_right(times, when), 1), len(times) - 1)
        before, after = self.samples[i - 1], self.samples[i]
        v0, v1 = before[column] or 0.0, after[column] or 0.0  # `used` leaves out a column with gaps
        t0, t1 = before[0], after[0]
        share = 0.0 if t1 <= t0 else min(max((when - t0) / (t1 - t0), 0.0), 1.0)
        return v0 + share * (v1 - v0)
