"""TensorBoardLogger: Tune's TensorBoard files, written at a fraction of the driver's cost.

Tune's own logger (`TBXLoggerCallback`) opens a tensorboardX writer per trial, with a
process queue and a thread of its own; it sends each of a result's numbers to that thread as
an event of its own, then flushes the file to disk and waits for the thread, after every
result. In a sweep of short trials that was a fifth of the driver's step (`python -m
benchmarks.overhead --trials 256` under py-spy; RESULTS.md). This logger writes the same
files (tensorboardX's name and format), with the same tags (``ray/tune/<metric>``), steps and
HParams, in the driver's thread: a result's numbers go as one event into the file's buffer,
which is written out once a trial's oldest unwritten event is ``FLUSH_S`` seconds old and when
the trial ends. So TensorBoard shows a running trial's epochs within seconds, as it polls.
Only numbers are written: a list or array a custom trainable reports (which Tune's logger would
draw as a histogram or image) stays in the trial's result.json, and a warning says so once.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import time
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import numpy as np
from ray.tune.logger.tensorboardx import VALID_SUMMARY_TYPES, TBXLoggerCallback
from ray.tune.result import TIMESTEPS_TOTAL, TRAINING_ITERATION
from ray.tune.utils import flatten_dict

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

log = logging.getLogger(__name__)

# Seconds between the writer's flushes; a trial's end flushes the rest.
FLUSH_S = 5.0
# Result keys Tune's logger leaves out as well (they would plot as lines of no use).
_LEFT_OUT = ("config", "pid", "timestamp", "time_total_s", TRAINING_ITERATION)
_SCALARS = tuple(VALID_SUMMARY_TYPES)
_TAG = "ray/tune/"


def tensorboard_loggers() -> list[TBXLoggerCallback]:
    """The sweep's TensorBoard logger, or none where tensorboardX is missing or a user turned
    Tune's loggers off (``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1``, which Tune honours for its own)."""
    if os.environ.get("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "0") == "1":
        return []
    load_tensorboard_writer()
    try:
        return [TensorBoardLogger()]
    except ImportError as exc:
        log.debug("no TensorBoard files: %s", exc)
        return []


def load_tensorboard_writer() -> None:
    """Load tensorboardX without PyTorch, which it imports (where installed: the gp searcher's
    extra) only to accept its tensors; the logger writes floats, and that import was most of
    its set-up in the driver (`tuning_service.core.leanimport`)."""
    from tuning_service.core.leanimport import lean_import

    try:
        lean_import("tensorboardX")
    except ImportError:
        pass


class TensorBoardLogger(TBXLoggerCallback):
    """Each trial's TensorBoard event file, as Tune's logger writes it, one event per result."""

    def __init__(self) -> None:
        super().__init__()
        self._not_numbers: set[str] = set()

    def log_trial_start(self, trial: Trial) -> None:
        if trial in self._trial_writer:
            self._trial_writer[trial].close()
        trial.init_local_path()
        self._trial_writer[trial] = _EventFile(str(trial.local_path))
        self._trial_result[trial] = {}

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        if trial not in self._trial_writer:
            self.log_trial_start(trial)
        from tensorboardX.proto.summary_pb2 import Summary
        from tensorboardX.summary import scalar

        flat: dict[str, Any] = flatten_dict(
            {k: v for k, v in result.items() if k not in _LEFT_OUT}, delimiter="/"
        )
        scalars = {_TAG + k: v for k, v in flat.items() if _is_scalar(v)}
        self._warn_once([k for k, v in flat.items() if _has_values(v)])
        step = result.get(TIMESTEPS_TOTAL) or result[TRAINING_ITERATION]
        summary = Summary(value=[scalar(tag, value).value[0] for tag, value in scalars.items()])
        self._trial_writer[trial].add_summary(summary, global_step=step)
        self._trial_result[trial] = scalars

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        # A trial between results: its last epochs are written out without waiting for its next.
        due = time.monotonic() - FLUSH_S
        for events in self._trial_writer.values():
            if events.unwritten_since is not None and events.unwritten_since <= due:
                events.flush()

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        for events in self._trial_writer.values():  # trials a stopped sweep left running
            events.flush()

    def _warn_once(self, keys: list[str]) -> None:
        for key in set(keys) - self._not_numbers:
            self._not_numbers.add(key)
            log.warning("TensorBoard files hold numbers only: %r is left out (it is in result.json)", key)


class _EventFile:
    """One trial's event file, written in the caller's thread: no queue, no writer thread.

    The file is tensorboardX's (its name, TFRecord framing and first event), but its buffer
    goes to the operating system without an ``fsync``: TensorBoard reads the file through the
    operating system, and the driver's step does not wait for the disk (tensorboardX syncs on
    every flush). Tune's logger reaches the file through ``file_writer.add_summary`` (its
    HParams at the trial's end) and ``close``, as on a tensorboardX ``SummaryWriter``.
    """

    def __init__(self, folder: str) -> None:
        from tensorboardX.proto.event_pb2 import Event

        os.makedirs(folder, exist_ok=True)
        self._file = _new_file(
            os.path.join(folder, f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}")
        )
        self.unwritten_since: float | None = None  # monotonic time of the oldest event not written out
        self.file_writer = self
        self._write(Event(wall_time=time.time(), file_version="brain.Event:2"))

    def add_summary(
        self, summary: Any, global_step: int | None = None, walltime: float | None = None
    ) -> None:
        from tensorboardX.proto.event_pb2 import Event

        event = Event(summary=summary, wall_time=time.time() if walltime is None else walltime)
        if global_step is not None:
            event.step = int(global_step)
        self._write(event)  # written out by the logger's `on_step_end`, which ends every step

    def _write(self, event: Any) -> None:
        from tensorboardX.record_writer import masked_crc32c

        data = event.SerializeToString()
        header = struct.pack("Q", len(data))
        self._file.write(
            header + struct.pack("I", masked_crc32c(header)) + data + struct.pack("I", masked_crc32c(data))
        )
        if self.unwritten_since is None:
            self.unwritten_since = time.monotonic()

    def flush(self) -> None:
        self._file.flush()
        self.unwritten_since = None

    def close(self) -> None:
        self._file.close()
        self.unwritten_since = None


def _new_file(path: str) -> BinaryIO:
    """``path`` opened for writing, or ``path.1``, ``path.2``...: a trial restarted within the
    second it started in keeps its first file (tensorboardX would truncate it)."""
    n = 0
    while True:
        try:
            return open(f"{path}.{n}" if n else path, "xb")
        except FileExistsError:
            n += 1


def _is_scalar(value: Any) -> bool:
    """Whether Tune's logger would write ``value`` as a scalar (a number, NaN left out)."""
    return isinstance(value, _SCALARS) and not np.isnan(cast(float, value))


def _has_values(value: Any) -> bool:
    """Whether Tune's logger would write ``value`` as a histogram, image or video."""
    return (isinstance(value, list) and len(value) > 0) or (isinstance(value, np.ndarray) and value.size > 0)
