"""TensorBoardLogger: Tune's TensorBoard files, written at a fraction of the driver's cost.

Tune's own logger (`TBXLoggerCallback`) writes each of a result's numbers as an event of its
own, every event through tensorboardX's queue to its writer thread, and then flushes the file
and waits for that thread after every result. In a sweep of short trials that was a fifth
of the driver's step (`python -m benchmarks.overhead --trials 256` under py-spy; RESULTS.md). This
logger writes the same files, with the same tags (``ray/tune/<metric>``), steps and HParams,
but a result's numbers go as one event, and the writer's own thread flushes the file every
``FLUSH_S`` seconds and when the trial ends, so TensorBoard shows a running trial's epochs within
seconds, as it polls. Results that hold histograms, images or videos take Tune's path.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, cast

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

    def log_trial_start(self, trial: Trial) -> None:
        if trial in self._trial_writer:
            self._trial_writer[trial].close()
        trial.init_local_path()
        self._trial_writer[trial] = self._summary_writer_cls(trial.local_path, flush_secs=FLUSH_S)
        self._trial_result[trial] = {}

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        flat: dict[str, Any] = flatten_dict(
            {k: v for k, v in result.items() if k not in _LEFT_OUT}, delimiter="/"
        )
        scalars = {_TAG + k: v for k, v in flat.items() if _is_scalar(v)}
        if any(_has_values(v) for v in flat.values()):
            super().log_trial_result(iteration, trial, result)  # histograms, images, videos
            return
        if trial not in self._trial_writer:
            self.log_trial_start(trial)
        from tensorboardX.proto.summary_pb2 import Summary
        from tensorboardX.summary import scalar

        values = [scalar(tag, value).value[0] for tag, value in scalars.items()]
        step = result.get(TIMESTEPS_TOTAL) or result[TRAINING_ITERATION]
        self._trial_writer[trial].file_writer.add_summary(Summary(value=values), global_step=step)
        self._trial_result[trial] = scalars


def _is_scalar(value: Any) -> bool:
    """Whether Tune's logger would write ``value`` as a scalar (a number, NaN left out)."""
    return isinstance(value, _SCALARS) and not np.isnan(cast(float, value))


def _has_values(value: Any) -> bool:
    """Whether Tune's logger would write ``value`` as a histogram, image or video."""
    return (isinstance(value, list) and len(value) > 0) or (isinstance(value, np.ndarray) and value.size > 0)
