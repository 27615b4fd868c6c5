"""Learning-rate range test: grow the rate exponentially over one epoch and watch the loss."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tuning_service.core.errors import InputError
from tuning_service.core.job import Dataset, Job
from tuning_service.core.space import Choice, Fixed, Float, Int, Space
from tuning_service.training.fit import fit, fresh_model

log = logging.getLogger(__name__)

# Fewer batches than this make a coarse, noisy curve: the suggestion is then only a hint.
MIN_BATCHES = 30
# The loss is smoothed like a running average over roughly 1 / (1 - SMOOTHING) batches.
SMOOTHING = 0.9
# Past this multiple of the best smoothed loss the run has diverged: the rest is noise.
DIVERGED_FACTOR = 4.0


@dataclass(frozen=True)
class LrFindResult:
    """Per-batch learning rates and losses, and the rate the test suggests."""

    rates: list[float]
    losses: list[float]
    smoothed: list[float]
    suggested: float
    min_loss_rate: float
    config: dict[str, Any] = field(default_factory=dict)


def representative_config(space: Space) -> dict[str, Any]:
    """One concrete value per parameter: the middle of each range, the first of each choice.

    The range test needs one model to train; its learning rate is overridden anyway.
    """
    config: dict[str, Any] = {}
    for name, param in space.items():
        if isinstance(param, Choice):
            config[name] = param.values[0]
        elif isinstance(param, Fixed):
            config[name] = param.value
        elif isinstance(param, Int | Float):
            low, high = param.low, param.high
            middle = math.sqrt(low * high) if param.log else (low + high) / 2
            if isinstance(param, Int):
                step = param.step or 1
                middle = low + round((middle - low) / step) * step
            config[name] = middle
    return space.effective(config)


def suggest(rates: list[float], losses: list[float]) -> tuple[float, float, list[float]]:
    """(suggested rate, rate of the lowest smoothed loss, smoothed losses).

    Hands-On ML's rule: the loss bottoms out shortly before it shoots up; a good rate is
    about ten times lower than where it bottoms out.
    """
    smoothed: list[float] = []
    average = 0.0
    for i, loss in enumerate(losses):
        if not math.isfinite(loss):
            break
        average = SMOOTHING * average + (1 - SMOOTHING) * loss
        smoothed.append(average / (1 - SMOOTHING ** (i + 1)))  # bias-corrected, like Adam's moments
    if not smoothed:
        raise InputError("lr-find: the loss was not finite from the first batch; lower --min-lr")
    best = min(range(len(smoothed)), key=smoothed.__getitem__)
    return rates[best] / 10, rates[best], smoothed


def find_lr(
    job: Job,
    dataset: Dataset,
    *,
    min_lr: float = 1e-6,
    max_lr: float = 10.0,
    overrides: Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    seed: int = 0,
) -> LrFindResult:
    """Train one epoch from ``min_lr`` to ``max_lr`` (exponentially, per batch), recording the loss.

    The model is the job's, built from its defaults, a representative point of its
    space and ``overrides``; the learning-rate schedule is forced to constant so the
    callback owns the rate.
    """
    if not (0 < min_lr < max_lr) or not math.isfinite(max_lr):
        raise InputError(f"lr-find: need 0 < --min-lr < --max-lr, got min_lr={min_lr:g}, max_lr={max_lr:g}")

    config = {**representative_config(job.space), **dict(overrides or {})}
    # One batch per call into TensorFlow: the rate grows, and the loss is read, after every batch.
    model_config = {
        **job.model_config(config),
        "lr_schedule": "constant",
        "learning_rate": min_lr,
        "steps_per_execution": 1,
    }
    batch = int(batch_size or model_config.get("batch_size", job.batch_size))
    steps = max(1, math.ceil(len(dataset.x_train) / batch))
    if steps < MIN_BATCHES:
        log.warning(
            "lr-find: one epoch is only %d batches of %d rows; the curve will be coarse "
            "(use a smaller --batch-size or more data)",
            steps,
            batch,
        )
    factor = (max_lr / min_lr) ** (1 / max(1, steps - 1))
    model = fresh_model(job, model_config, dataset.input_spec, seed=seed)
    recorder = _exponential_rate(factor)
    fit(model, dataset.x_train, dataset.y_train, batch_size=batch, stop_on_nan=False, callbacks=[recorder])
    suggested, at_min, smoothed = suggest(recorder.rates, recorder.losses)
    return LrFindResult(recorder.rates, recorder.losses, smoothed, suggested, at_min, dict(model_config))


def _exponential_rate(factor: float) -> Any:
    """A callback that multiplies the rate by ``factor`` after every batch, recording each batch's loss.

    Keras reports the epoch's running mean in batch logs; the batch's own loss is
    recovered from two consecutive means (Hands-On ML's ExponentialLearningRate does
    the same). Training stops once the smoothed loss has clearly diverged.
    """
    import keras

    class ExponentialRate(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.rates: list[float] = []
            self.losses: list[float] = []
            self._sum, self._average, self._best = 0.0, 0.0, math.inf

        def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
            mean = float((logs or {}).get("loss", math.nan))
            loss, self._sum = mean * (batch + 1) - self._sum, mean * (batch + 1)
            rate = float(self.model.optimizer.learning_rate)
            self.rates.append(rate)
            self.losses.append(loss)
            self._average = SMOOTHING * self._average + (1 - SMOOTHING) * loss
            smoothed = self._average / (1 - SMOOTHING ** len(self.losses))
            self._best = min(self._best, smoothed)
            if not math.isfinite(loss) or smoothed > DIVERGED_FACTOR * self._best:
                self.model.stop_training = True  # diverged: later batches add nothing
            self.model.optimizer.learning_rate = rate * factor

    return ExponentialRate()
