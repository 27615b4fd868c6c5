"""A trainable that trains nothing: drives the engine at full speed for tests and benchmarks."""

from __future__ import annotations

import math
import time
from typing import Any

from ray import tune

from tuning_service.raytune.trainable import DIVERGED, ENDED_AT, EPOCH, TRAIN_TIME


class NoopTrainable(tune.Trainable):
    """Reports a smooth made-up metric at once: the cost left is the engine's own.

    Accepts the same setup arguments as `KerasTrainable`, so `run_sweep` can swap it in.
    The metric rises with the epoch and peaks at ``learning_rate`` 1e-2 when present.
    """

    def setup(self, config: dict[str, Any], **_: Any) -> None:
        self._reset(config)

    def _reset(self, config: dict[str, Any]) -> None:
        lr = float(config.get("learning_rate", 1e-2))
        self.quality = 1.0 / (1.0 + abs(math.log10(lr) + 2.0))
        self.epoch = 0

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        self._reset(new_config)
        return True

    def step(self) -> dict[str, Any]:
        self.epoch += 1
        value = self.quality * (1.0 - 0.5**self.epoch)
        return {
            "val_accuracy": value,
            "loss": 1.0 - value,
            EPOCH: self.epoch,
            TRAIN_TIME: 0.0,
            DIVERGED: False,
            ENDED_AT: time.time(),
        }

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
        return {"epoch": self.epoch, "quality": self.quality}

    def load_checkpoint(self, checkpoint: dict[str, Any] | None) -> None:
        if checkpoint is None:
            return
        self.epoch, self.quality = int(checkpoint["epoch"]), float(checkpoint["quality"])
