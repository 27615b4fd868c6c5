"""The only seam between Keras and Ray: build, fit one epoch per step, report, checkpoint."""

from __future__ import annotations

import errno
import gc
import json
import math
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune

from tuning_service.core.job import Dataset, Job
from tuning_service.core.objectives import (
    COSTS,
    LATENCY_MS,
    PARAMS,
    check_constraints,
    parse_objective,
    violations,
)
from tuning_service.core.outcomes import DIVERGED_KEY as DIVERGED
from tuning_service.core.outcomes import EARLY_STOPPED_KEY as EARLY_STOPPED
from tuning_service.core.outcomes import (
    ENDED_AT,
    EPOCH,
    ERROR_KEY,
    INFEASIBLE_KEY,
    REPLAYED_KEY,
    TRAIN_TIME,
    describe_exception,
)
from tuning_service.training.fit import trial_seed
from tuning_service.training.kerasstate import clear_session, configure_tensorflow
from tuning_service.training.modelcost import count_params, inference_latency_ms
from tuning_service.training.pipeline import Split, epoch_order
from tuning_service.training.trialmodel import KerasModel, TrialModel, trial_models

# Where the trial ran: Ray's node id and that node's address (Tune itself fills in only the address).
NODE_ID = "node_id"
NODE_IP = "node_ip"

_CHECKPOINT_MODEL = "model"  # + the model's own suffix: .npz (shared graph) or .keras
_CHECKPOINT_STATE = "state.json"
# Trials an actor runs between full garbage collections (see `_start`).
GC_EVERY_TRIALS = 10
_trials_since_gc = 0


def _checkpoint_name(fold: int, model: TrialModel) -> str:
    return (_CHECKPOINT_MODEL if fold == 0 else f"{_CHECKPOINT_MODEL}_fold{fold}") + model.suffix


def fold_splits(dataset: Dataset, cv_folds: int | None, seed: int) -> list[tuple[Any, Any, Any, Any]]:
    """(x_fit, y_fit, x_val, y_val) per model: the job's own split, or k folds of train+validation.

    Folds are stratified for classification and the same for every trial of a sweep,
    so trials are compared on the same data. The test split is never touched.
    """
    if not cv_folds:
        return [(dataset.x_train, dataset.y_train, dataset.x_val, dataset.y_val)]
    import numpy as np
    from sklearn.model_selection import KFold, StratifiedKFold

    x = np.concatenate([dataset.x_train, dataset.x_val])
    y = np.concatenate([dataset.y_train, dataset.y_val])
    kind = KFold if dataset.task == "regression" else StratifiedKFold
    splitter = kind(n_splits=cv_folds, shuffle=True, random_state=seed)
    return [(x[fit], y[fit], x[val], y[val]) for fit, val in splitter.split(x, y)]


def tensor_folds(dataset: Dataset, cv_folds: int | None, seed: int) -> list[tuple[Split, Split]]:
    """`fold_splits` as (fit, validation) tensors: made once per worker, used by every trial."""
    return [
        (Split.from_arrays(x_fit, y_fit), Split.from_arrays(x_val, y_val))
        for x_fit, y_fit, x_val, y_val in fold_splits(dataset, cv_folds, seed)
    ]


@dataclass(frozen=True)
class TrialBuild:
    """A configuration made ready to train: what the job's model sees, its seed, its models."""

    model_config: dict[str, Any]
    seed: int
    batch_size: int
    models: list[TrialModel]  # one per fold


def build_trial(
    job: Job,
    config: dict[str, Any],
    input_spec: Any,
    folds: list[tuple[Split, Split]],
    *,
    sweep_seed: int,
    threads: int,
) -> TrialBuild:
    """The models of ``config`` on ``folds``, seeded by the sweep's seed and the configuration (so a
    configuration starts from the same weights in any sweep with that seed)."""
    model_config = job.model_config(config)
    seed = trial_seed(sweep_seed, model_config)
    models = trial_models(
        job, model_config, input_spec, [fit for fit, _ in folds], seed=seed, threads=threads
    )
    return TrialBuild(model_config, seed, int(model_config.get("batch_size", job.batch_size)), models)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


class KerasTrainable(tune.Trainable):
    """Trains one configuration of a job, one epoch per Tune step.

    Tune calls `setup` once per actor (with the job and the dataset from the object
    store), `reset_config` when it reuses the actor for another trial, `step` for
    every epoch, and `save_checkpoint` / `load_checkpoint` when a scheduler pauses
    and resumes a trial or a failed trial restarts.

    An exception raised by the model code (a bad configuration, out of memory) ends
    the trial with an ``error`` result instead of reaching Tune: Tune would retry any
    exception up to ``max_failures`` times, and retries are for dying workers only.
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
        finished: Mapping[str, Mapping[str, Any]] | None = None,
        objectives: tuple[str, ...] = (),
        constraints: tuple[str, ...] = (),
    ) -> None:
        # Only cheap work here; TensorFlow is imported by the first step (`_ready`). While an
        # actor is in setup, Tune hands its trial to any other actor that frees up and kills
        # this one: with trials shorter than a TensorFlow import, a slot's actor was killed
        # and started again for the whole sweep, and that slot never trained.
        self.job, self.dataset, self.sweep_seed = job, dataset, seed
        self.cpus, self.gpus = cpus, gpus
        # Resumed sweeps: trials that had finished (per the results store) before the
        # driver died, with their last result. Tune's snapshot may predate their end.
        self.finished = dict(finished or {})
        # An actor never moves, and a reused one keeps its node: look it up once.
        self.node = {
            NODE_ID: ray.get_runtime_context().get_node_id(),
            NODE_IP: ray.util.get_node_ip_address(),
        }
        self.folds: list[tuple[Split, Split]] = []  # made by the first `_ready`
        self.models: list[TrialModel] = []
        self.failure: str | None = None
        self.config_to_start: dict[str, Any] | None = config
        # Model costs to measure (those an objective or constraint names) and the limits on them.
        self.constraints = check_constraints(constraints)
        wanted = {parse_objective(o).name for o in objectives} | {c.name for c in self.constraints}
        self.measure = tuple(c for c in COSTS if c in wanted)
        self.costs: dict[str, float] = {}
        self.built_keras = False

    def _ready(self) -> None:
        """TensorFlow, the folds as tensors (the same for every trial of the sweep) and the trial's model."""
        if not self.folds:
            configure_tensorflow(self.cpus, self.gpus)
            self.folds = tensor_folds(self.dataset, self.job.cv_folds, self.sweep_seed)
            # TensorFlow, Keras and the data live as long as the worker: move them out of the
            # collector's reach, so its full passes scan only what trials have made since.
            gc.freeze()
        if self.config_to_start is not None:
            config, self.config_to_start = self.config_to_start, None
            self._start(config)

    def _start(self, config: dict[str, Any]) -> None:
        # Keras' global state (and TensorFlow's kernel cache) grows with every compiled model,
        # so it is reset after a trial that compiled one. A shared-graph model compiles
        # nothing, and a reset would cost its family's next call 40-80 ms of kernel setup.
        if self.built_keras or any(isinstance(model, KerasModel) for model in self.models):
            clear_session(free_memory=False)
        # Python's full garbage collection (a quarter of a short trial's time with
        # TensorFlow loaded) runs only now and then.
        global _trials_since_gc
        _trials_since_gc += 1
        if _trials_since_gc >= GC_EVERY_TRIALS:
            gc.collect()
            _trials_since_gc = 0
        self.failure = None
        self.epoch = 0
        self.train_time = 0.0
        self.models = []
        try:
            self._build(config)
        except Exception as exc:  # noqa: BLE001 - reported as this trial's outcome by `step`
            self.failure = describe_exception(exc)

    def _build(self, config: dict[str, Any]) -> None:
        # One model on the train/validation split, or one per fold for a cross-validated job.
        built = build_trial(
            self.job,
            config,
            self.dataset.input_spec,
            self.folds,
            sweep_seed=self.sweep_seed,
            # A GPU trial's CPU prepares the next batch while the GPU trains on this one.
            threads=max(1, int(self.cpus)) + (1 if self.gpus > 0 else 0),
        )
        self.model_config, self.seed, self.batch_size = built.model_config, built.seed, built.batch_size
        self.models = built.models
        self.patience = self.model_config.get("patience")
        # `epochs` in a config caps this trial below the sweep's budget (a tunable, as in GridSearchCV).
        self.epoch_cap = int(self.model_config.get("epochs") or 0) or None
        self.best: float | None = None
        self.since_best = 0
        self._measure_costs()

    def _measure_costs(self) -> None:
        """The model costs the sweep's objectives and constraints name, once per trial (they do
        not change as it trains), and the constraints they break."""
        self.costs, self.built_keras = {}, False
        if PARAMS in self.measure:
            self.costs[PARAMS] = float(count_params(self.models[0]))
        if LATENCY_MS in self.measure:
            model = self.job.build_model(self.model_config, self.dataset.input_spec)
            self.built_keras = True
            self.costs[LATENCY_MS] = inference_latency_ms(model, self.dataset.x_val)
        self.infeasible = violations(self.costs, self.constraints)

    # `reset_config` only stores the configuration (the next step builds it), so a reused actor's
    # first call can follow its reset without waiting for the answer (`pipelinedreset`).
    RESET_CANNOT_FAIL = True

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        self.config_to_start = new_config
        return True

    def step(self) -> dict[str, Any]:
        self._ready()
        if self.trial_id in self.finished:
            return self._replay(self.finished[self.trial_id])
        if self.failure is None:
            try:
                return self._train_epoch()
            except Exception as exc:  # noqa: BLE001 - see the class docstring
                self.failure = describe_exception(exc)
        return self._failed(self.failure)

    def _replay(self, last: Mapping[str, Any]) -> dict[str, Any]:
        """The recorded last result of a trial that had already finished: nothing is trained again."""
        keep = {k: v for k, v in last.items() if k not in ("done", "config", "should_checkpoint")}
        return {**keep, REPLAYED_KEY: True, "done": True}

    def _failed(self, message: str) -> dict[str, Any]:
        """The trial's last result when its code raised: a finite worst value, like a diverged trial."""
        return {
            self.job.metric: self.job.worst_value,
            ERROR_KEY: message,
            EPOCH: self.epoch,
            TRAIN_TIME: self.train_time,
            DIVERGED: False,
            ENDED_AT: time.time(),
            **self.node,
            "done": True,
        }

    def _train_epoch(self) -> dict[str, Any]:
        started = time.perf_counter()
        per_fold = []
        for i, (model, (fit, val)) in enumerate(zip(self.models, self.folds, strict=True)):
            # The epoch's row order depends on the trial's seed and the epoch only: a trial
            # continued from a checkpoint anywhere sees the epochs it would have seen.
            order = epoch_order(len(fit), self.seed + i, self.epoch)
            per_fold.append(model.fit_epoch(fit, val, batch_size=self.batch_size, order=order))
        self.train_time += time.perf_counter() - started
        self.epoch += 1
        # Cross-validation reports each metric's mean over the folds (NaN in any fold stays NaN).
        logs = {k: sum(f.get(k, math.nan) for f in per_fold) / len(per_fold) for k in per_fold[0]}
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
        result.update(self.costs)
        if self.infeasible:
            # A model that breaks a cost constraint stays infeasible however long it trains.
            result[INFEASIBLE_KEY] = "; ".join(self.infeasible)
            result["done"] = True
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

    def save(self, checkpoint_dir: str | None = None) -> Any:
        """Tune's save, leaving nothing half-written behind when the disk is full.

        The error itself still reaches Tune: the trial is retried from its previous
        checkpoint (the disk may have room by then, as older checkpoints are rotated
        out) and ends as "disk full" once its retries are spent.
        """
        if checkpoint_dir is not None:
            return super().save(checkpoint_dir)
        # Tune's own scratch directory is left behind when the save raises; ours is not.
        scratch = tempfile.mkdtemp(prefix="tuning-service-checkpoint-")
        try:
            return super().save(scratch)
        except OSError as exc:
            # The copy into the sweep's storage was never registered: remove what it wrote.
            partial = getattr(getattr(self, "_storage", None), "checkpoint_fs_path", None)
            if partial and Path(partial).is_dir():
                shutil.rmtree(partial, ignore_errors=True)
            if exc.errno == errno.ENOSPC or "No space left" in str(exc):
                where = partial or "the sweep's storage"
                raise OSError(
                    errno.ENOSPC,
                    f"No space left on device while saving the checkpoint of epoch {self.epoch} to {where}",
                ) from exc
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        self._ready()
        if not self.models:  # the trial failed before it had a model: nothing to keep
            return
        for i, model in enumerate(self.models):
            model.save(Path(checkpoint_dir) / _checkpoint_name(i, model))
        state = {
            "epoch": self.epoch,
            "train_time": self.train_time,
            "best": self.best,
            "since_best": self.since_best,
        }
        (Path(checkpoint_dir) / _CHECKPOINT_STATE).write_text(json.dumps(state))

    # Ray passes the checkpoint's directory when save_checkpoint returned None; its annotation says dict.
    def load_checkpoint(self, checkpoint_dir: str) -> None:  # type: ignore[override]
        self._ready()
        if self.trial_id in self.finished or self.failure is not None:
            return  # replayed, or failing anyway: the weights would never be used
        # Weights and optimizer state: a paused trial continues exactly where it stopped.
        for i, model in enumerate(self.models):
            model.load(Path(checkpoint_dir) / _checkpoint_name(i, model))
        state = json.loads((Path(checkpoint_dir) / _CHECKPOINT_STATE).read_text())
        self.epoch, self.train_time = int(state["epoch"]), float(state["train_time"])
        self.best, self.since_best = state["best"], int(state["since_best"])
