"""The only seam between Keras and Ray: build, fit one epoch per step, report, checkpoint."""

from __future__ import annotations

import json
import math
import os
import time
import zlib
from pathlib import Path
from typing import Any

import ray
from ray import tune

from tuning_service.job import Dataset, Job

# Keys every epoch's result carries besides the Keras logs.
EPOCH = "epoch"
TRAIN_TIME = "train_time_s"
DIVERGED = "diverged"
EARLY_STOPPED = "early_stopped"
ENDED_AT = "ended_at"
# Where the trial ran: Ray's node id and that node's address (Tune itself fills in only the address).
NODE_ID = "node_id"
NODE_IP = "node_ip"

_CHECKPOINT_MODEL = "model.keras"
_CHECKPOINT_STATE = "state.json"
_configured_pid: int | None = None


def configure_tensorflow(cpus: float, gpus: float) -> None:
    """Match TensorFlow's thread pools to the trial's CPUs and let GPU memory grow.

    Runs once per worker process, before the first op: TensorFlow refuses to
    change either setting after its runtime has started. Memory growth lets
    several trials share one GPU when each asks for a fraction of it; Ray
    already limits ``CUDA_VISIBLE_DEVICES`` to the trial's own GPU.
    """
    global _configured_pid
    if _configured_pid == os.getpid():
        return
    import tensorflow as tf

    threads = max(1, int(cpus))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
    except RuntimeError:  # runtime already initialised in this process
        pass
    if gpus > 0:
        for gpu in tf.config.list_physical_devices("GPU"):
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:
                pass
    else:
        # Ray no longer empties CUDA_VISIBLE_DEVICES for a trial that asked for no GPU
        # (ray-project/ray#54868): TensorFlow in every CPU trial would claim the GPUs' memory.
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:
            pass
    _configured_pid = os.getpid()


def trial_seed(sweep_seed: int, config: dict[str, Any]) -> int:
    """A seed that depends on the sweep's seed and the configuration, not on timing."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return (sweep_seed * 1_000_003 + zlib.crc32(blob)) % (2**31 - 1)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


class KerasTrainable(tune.Trainable):
    """Trains one configuration of a job, one epoch per Tune step.

    Tune calls `setup` once per actor (with the job and the dataset from the object
    store), `reset_config` when it reuses the actor for another trial, `step` for
    every epoch, and `save_checkpoint` / `load_checkpoint` when a scheduler pauses
    and resumes a trial or a failed trial restarts.
    """

    def setup(  # type: ignore[override]
        self,
        config: dict[str, Any],
        *,
        job: Job,
        dataset: Dataset,
        cpus: float = 1,
        gpus: float = 0,
        seed: int = 0,
    ) -> None:
        configure_tensorflow(cpus, gpus)
        self.job, self.dataset, self.sweep_seed = job, dataset, seed
        # An actor never moves, and a reused one keeps its node: look it up once.
        self.node = {
            NODE_ID: ray.get_runtime_context().get_node_id(),
            NODE_IP: ray.util.get_node_ip_address(),
        }
        self._start(config)

    def _start(self, config: dict[str, Any]) -> None:
        import keras

        keras.backend.clear_session()
        self.model_config = self.job.model_config(config)
        keras.utils.set_random_seed(trial_seed(self.sweep_seed, self.model_config))
        self.model = self.job.build_model(self.model_config, self.dataset.input_spec)
        self.batch_size = int(self.model_config.get("batch_size", self.job.batch_size))
        self.patience = self.model_config.get("patience")
        # `epochs` in a config caps this trial below the sweep's budget (a tunable, as in GridSearchCV).
        self.epoch_cap = int(self.model_config.get("epochs") or 0) or None
        self.epoch = 0
        self.train_time = 0.0
        self.best: float | None = None
        self.since_best = 0

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        self._start(new_config)
        return True

    def step(self) -> dict[str, Any]:
        import keras

        data = self.dataset
        started = time.perf_counter()
        history = self.model.fit(
            data.x_train,
            data.y_train,
            batch_size=self.batch_size,
            initial_epoch=self.epoch,
            epochs=self.epoch + 1,
            validation_data=(data.x_val, data.y_val),
            shuffle=True,
            verbose=0,
            # Stop inside the epoch as soon as the loss is NaN: the rest is wasted time.
            callbacks=[keras.callbacks.TerminateOnNaN()],
        )
        self.train_time += time.perf_counter() - started
        self.epoch += 1
        logs = {k: float(v[-1]) for k, v in history.history.items() if v}
        return self._result(logs)

    def _result(self, logs: dict[str, float]) -> dict[str, Any]:
        metric, mode = self.job.metric, self.job.mode
        if metric not in logs and all(_finite(v) for v in logs.values()):
            raise KeyError(f"job {self.job.name!r} reports no {metric!r}; the model logs {sorted(logs)}")
        diverged = not logs or not all(_finite(v) for v in logs.values())
        # Non-finite numbers break searchers (Optuna refuses NaN, HyperOpt records it as a
        # success, ASHA never stops it), so a diverged trial reports a finite worst value.
        result: dict[str, Any] = {k: (v if _finite(v) else None) for k, v in logs.items()}
        # Ray's own `timestamp` has one-second resolution; slot-usage plots need better.
        result.update(
            {EPOCH: self.epoch, TRAIN_TIME: self.train_time, DIVERGED: diverged, ENDED_AT: time.time()}
        )
        result.update(self.node)
        if diverged:
            result[metric] = self.job.worst_value
            result["done"] = True
            return result
        value = logs[metric]
        if self.best is None or (value > self.best if mode == "max" else value < self.best):
            self.best, self.since_best = value, 0
        else:
            self.since_best += 1
        if self.patience is not None and self.since_best >= int(self.patience):
            result[EARLY_STOPPED] = True
            result["done"] = True
        if self.epoch_cap is not None and self.epoch >= self.epoch_cap:
            result["done"] = True
        return result

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        self.model.save(Path(checkpoint_dir) / _CHECKPOINT_MODEL)
        state = {
            "epoch": self.epoch,
            "train_time": self.train_time,
            "best": self.best,
            "since_best": self.since_best,
        }
        (Path(checkpoint_dir) / _CHECKPOINT_STATE).write_text(json.dumps(state))

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        import keras

        # Weights and optimizer state: a paused trial continues exactly where it stopped.
        self.model = keras.saving.load_model(Path(checkpoint_dir) / _CHECKPOINT_MODEL)
        state = json.loads((Path(checkpoint_dir) / _CHECKPOINT_STATE).read_text())
        self.epoch, self.train_time = int(state["epoch"]), float(state["train_time"])
        self.best, self.since_best = state["best"], int(state["since_best"])
