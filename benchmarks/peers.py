"""The tools users would pick instead, run on the same data, builder and budget.

Keras Tuner's Hyperband, an Optuna study with a Hyperband pruner (in-process, or run by
two processes sharing one storage, the parallel setup), and scikit-learn's GridSearchCV
over a scikeras wrapper. They are installed by the ``bench`` extra only; a missing one is
named with the command that installs it.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.problems import Problem
from benchmarks.reporting import ToolRun
from tuning_service.core.errors import InputError
from tuning_service.job import Dataset
from tuning_service.space import Choice, Fixed, Float, Int, Param

log = logging.getLogger(__name__)

# Distribution name for each importable peer, for the install hint.
_DISTRIBUTIONS = {"keras_tuner": "keras-tuner", "scikeras": "scikeras", "optuna": "optuna"}


def require(module: str) -> Any:
    """Import an optional peer, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        dist = _DISTRIBUTIONS.get(module.split(".")[0], module)
        raise InputError(
            f"the benchmark needs {dist!r}, which is not installed; install the bench extra: "
            f"pip install -e '.[bench]'"
        ) from None


@dataclass(frozen=True)
class Context:
    """What every tool gets: the problem, its epoch budget, a seed and a scratch directory."""

    problem: Problem
    budget: int  # epochs all trials together may train
    seed: int
    workdir: Path
    timeline: Path | None = None  # where our sweeps write Ray's timeline (benchmarks.timeline)

    def load(self) -> Dataset:
        """The problem's splits; the same seed gives every tool the same rows."""
        return self.problem.job.load_data(limit=self.problem.data_limit, seed=self.seed)


def model_metric(problem: Problem) -> str:
    """The compiled Keras metric behind the job's validation metric (val_accuracy -> accuracy)."""
    return problem.job.metric.removeprefix("val_")


def batch_size(problem: Problem, config: Mapping[str, Any]) -> int:
    return int(config.get("batch_size", problem.job.batch_size))


# --- Keras Tuner ---------------------------------------------------------------------


def _kt_param(hp: Any, name: str, param: Param) -> Any:
    """One of our parameters as a Keras Tuner hyperparameter (same bounds, same sampling)."""
    if isinstance(param, Fixed):
        return hp.Fixed(name, param.value)
    if isinstance(param, Choice):
        return hp.Choice(name, list(param.values))
    if isinstance(param, Int):
        sampling = "log" if param.log else "linear"
        return hp.Int(
            name, param.low, param.high, step=None if param.log else (param.step or 1), sampling=sampling
        )
    if isinstance(param, Float):
        return hp.Float(
            name, param.low, param.high, step=param.step, sampling="log" if param.log else "linear"
        )
    raise InputError(f"parameter {name!r}: no Keras Tuner form for {type(param).__name__}")


def keras_tuner_hyperband(ctx: Context) -> ToolRun:
    """Keras Tuner's Hyperband as the seed ran it: max_epochs and factor of the problem."""
    kt = require("keras_tuner")
    import keras

    problem, job = ctx.problem, ctx.problem.job
    t0, started = time.time(), time.perf_counter()
    data = ctx.load()
    keras.utils.set_random_seed(ctx.seed)
    epochs_seen: list[tuple[float, float, dict[str, Any], int]] = []
    current: dict[str, Any] = {}

    # Keras Tuner deep-copies callbacks per trial: the recorder writes to this closure.
    class Recorder(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            value = (logs or {}).get(job.metric)
            epochs_seen.append((time.time() - t0, _float(value), current["config"], epoch + 1))

    class HyperModel(kt.HyperModel):
        def build(self, hp: Any) -> Any:
            values = {name: _kt_param(hp, name, param) for name, param in job.space.items()}
            return job.build_model(job.model_config(values), data.input_spec)

        def fit(self, hp: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
            values = {name: hp.get(name) for name in job.space}
            current["config"] = job.model_config(values)
            return model.fit(*args, batch_size=batch_size(problem, current["config"]), **kwargs)

    tuner = kt.Hyperband(
        HyperModel(),
        objective=kt.Objective(job.metric, direction=job.mode),
        max_epochs=problem.max_epochs,
        factor=problem.factor,
        seed=ctx.seed,
        directory=str(ctx.workdir / "keras_tuner"),
        project_name=problem.name,
        overwrite=True,
    )
    tuner.search(
        data.x_train,
        data.y_train,
        validation_data=(data.x_val, data.y_val),
        callbacks=[Recorder()],
        verbose=0,
    )
    wall = time.perf_counter() - started
    return _from_epochs("keras-tuner hyperband", wall, len(tuner.oracle.trials), epochs_seen)


# --- Optuna, in process -------------------------------------------------------------------


def _optuna_param(trial: Any, name: str, param: Param) -> Any:
    if isinstance(param, Fixed):
        return param.value
    if isinstance(param, Choice):
        return trial.suggest_categorical(name, list(param.values))
    if isinstance(param, Int):
        step = 1 if param.log else (param.step or 1)
        return trial.suggest_int(name, param.low, param.high, step=step, log=param.log)
    if isinstance(param, Float):
        return trial.suggest_float(name, param.low, param.high, step=param.step, log=param.log)
    raise InputError(f"parameter {name!r}: no Optuna form for {type(param).__name__}")


def _optuna_sampler(optuna: Any, seed: int) -> Any:
    """TPE with Optuna's defaults (its constant liar keeps parallel workers apart)."""
    return optuna.samplers.TPESampler(seed=seed)


def _optuna_pruner(optuna: Any, problem: Problem) -> Any:
    return optuna.pruners.HyperbandPruner(
        min_resource=1, max_resource=problem.max_epochs, reduction_factor=problem.factor
    )


def _optuna_direction(problem: Problem) -> str:
    return "maximize" if problem.job.mode == "max" else "minimize"


def _optimize(
    ctx: Context,
    data: Dataset,
    study: Any,
    record: Callable[[Any, dict[str, Any], int, float], None],
    spent: Callable[[], bool],
) -> None:
    """Run ``study`` until ``spent()`` says the epoch budget is gone; ``record`` sees every epoch.

    ``record(trial, config, epochs trained, value)`` is called after the epoch is
    reported to the trial, so a budget counted from the study's storage includes it.
    """
    optuna = require("optuna")
    import keras

    problem, job = ctx.problem, ctx.problem.job

    # The way Optuna's Keras integration prunes: report every epoch, stop fit when told.
    class Pruning(keras.callbacks.Callback):
        def __init__(self, trial: Any, config: dict[str, Any]) -> None:
            super().__init__()
            self.trial, self.config, self.pruned = trial, config, False

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            value = _float((logs or {}).get(job.metric))
            self.trial.report(value if math.isfinite(value) else job.worst_value, epoch)
            record(self.trial, self.config, epoch + 1, value)
            if spent():
                study.stop()  # the budget is spent: this trial ends, no other starts
                self.model.stop_training = True
            elif self.trial.should_prune():
                self.pruned = True
                self.model.stop_training = True

    def objective(trial: Any) -> float:
        config = job.model_config({name: _optuna_param(trial, name, p) for name, p in job.space.items()})
        keras.backend.clear_session()
        model = job.build_model(config, data.input_spec)
        pruning = Pruning(trial, config)
        history = model.fit(
            data.x_train,
            data.y_train,
            batch_size=batch_size(problem, config),
            epochs=problem.max_epochs,
            validation_data=(data.x_val, data.y_val),
            callbacks=[pruning],
            verbose=0,
        )
        if pruning.pruned:
            raise optuna.TrialPruned()
        values = [v for v in history.history.get(job.metric, []) if math.isfinite(v)]
        return (max if job.mode == "max" else min)(values) if values else job.worst_value

    def stop_when_spent(study: Any, trial: Any) -> None:
        # Another process may have spent the budget while this one's trial was pruned.
        if spent():
            study.stop()

    study.optimize(objective, n_trials=None, gc_after_trial=False, callbacks=[stop_when_spent])


def optuna_hyperband(ctx: Context) -> ToolRun:
    """An in-process Optuna study (TPE) with a Hyperband pruner, stopped at the epoch budget."""
    optuna = require("optuna")
    import keras

    t0, started = time.time(), time.perf_counter()
    data = ctx.load()
    keras.utils.set_random_seed(ctx.seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction=_optuna_direction(ctx.problem),
        sampler=_optuna_sampler(optuna, ctx.seed),
        pruner=_optuna_pruner(optuna, ctx.problem),
    )
    epochs_seen: list[tuple[float, float, dict[str, Any], int]] = []

    def record(trial: Any, config: dict[str, Any], epochs: int, value: float) -> None:
        epochs_seen.append((time.time() - t0, value, config, epochs))

    _optimize(ctx, data, study, record, lambda: len(epochs_seen) >= ctx.budget)
    wall = time.perf_counter() - started
    return _from_epochs("optuna hyperband (in-process)", wall, len(study.trials), epochs_seen)


# --- Optuna, one study shared by two processes -----------------------------------------------

# Worker processes of the shared study: one per core of the machine the issue compares on,
# as many trials at once as our sweeps run there.
OPTUNA_WORKERS = 2


def _journal(optuna: Any, path: Path) -> Any:
    """Optuna's storage for several processes without a server: an append-only journal file.

    The open(O_EXCL) lock works on local disks of every OS and on NFSv3 or later.
    """
    journal = optuna.storages.journal
    return journal.JournalStorage(
        journal.JournalFileBackend(str(path), journal.JournalFileOpenLock(str(path)))
    )


def _reported_epochs(study: Any) -> int:
    """Epochs every process has reported to the study: each one is an intermediate value."""
    return sum(len(t.intermediate_values) for t in study.get_trials(deepcopy=False))


def _optuna_worker(ctx: Context, index: int, journal: Path, study_name: str, t0: float, start: Any) -> None:
    """One process of the shared study: 1 TensorFlow thread, its own seeds, its epochs to a file.

    Runs in a spawned process; ``start`` is a barrier both workers pass once the data
    is loaded and TensorFlow imported, so both train from the first trial on.
    """
    try:
        data = ctx.load()  # first: data that cannot load fails the worker before TensorFlow's import
        import tensorflow as tf

        # One thread per trial, as our sweeps give each trial 1 CPU.
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        optuna = require("optuna")
        import keras

        seed = ctx.seed * OPTUNA_WORKERS + index
        keras.utils.set_random_seed(seed)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(
            study_name=study_name,
            storage=_journal(optuna, journal),
            sampler=_optuna_sampler(optuna, seed),
            pruner=_optuna_pruner(optuna, ctx.problem),
        )
        start.wait()
    except BaseException:
        start.abort()  # the other worker must not wait for this one
        raise
    pid = os.getpid()
    with _records(journal, index).open("w", encoding="utf-8") as out:

        def record(trial: Any, config: dict[str, Any], epochs: int, value: float) -> None:
            row = {"t": time.time() - t0, "value": value, "config": config, "epochs": epochs}
            out.write(json.dumps(row | {"trial": trial.number, "pid": pid}) + "\n")
            out.flush()

        _optimize(ctx, data, study, record, lambda: _reported_epochs(study) >= ctx.budget)


def _records(journal: Path, index: int) -> Path:
    return journal.with_name(f"epochs-{index}.jsonl")


def _run_workers(ctx: Context, journal: Path, study_name: str, t0: float) -> None:
    """Start the workers and wait for all; if one fails, stop the others and say which."""
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked TensorFlow state
    start = spawn.Barrier(OPTUNA_WORKERS)
    workers = [
        spawn.Process(
            target=_optuna_worker,
            args=(ctx, i, journal, study_name, t0, start),
            name=f"optuna-worker-{i}",
        )
        for i in range(OPTUNA_WORKERS)
    ]
    for worker in workers:
        worker.start()
    try:
        running = list(workers)
        while running:
            multiprocessing.connection.wait([w.sentinel for w in running])
            running = [w for w in running if w.exitcode is None]
            if any(w.exitcode for w in workers):
                break
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
            worker.join()
    failed = [f"{w.name} (exit code {w.exitcode})" for w in workers if w.exitcode]
    if failed:
        raise RuntimeError(
            f"the shared Optuna study's workers failed: {', '.join(failed)}; their errors are on stderr above"
        )


def optuna_hyperband_2proc(ctx: Context) -> ToolRun:
    """The same Optuna study run by two processes sharing one journal file, one trial each at a time.

    What a user of an in-process tuner runs to use two cores. The wall time includes
    starting the processes and TensorFlow's import in them; each worker checks the
    study's reported epochs against the budget after every epoch and trial, so
    epochs in flight in the other process when the budget is reached still count.
    """
    optuna = require("optuna")

    t0, started = time.time(), time.perf_counter()
    folder = ctx.workdir / "optuna_2proc"
    if folder.exists():
        shutil.rmtree(folder)  # a kept workdir from an earlier run: start a new study
    folder.mkdir(parents=True)
    journal = folder / "journal.log"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=ctx.problem.name,
        storage=_journal(optuna, journal),
        direction=_optuna_direction(ctx.problem),
    )
    _run_workers(ctx, journal, study.study_name, t0)
    wall = time.perf_counter() - started

    rows = [
        json.loads(line)
        for i in range(OPTUNA_WORKERS)
        for line in _records(journal, i).read_text(encoding="utf-8").splitlines()
    ]
    rows.sort(key=lambda r: r["t"])
    per_pid = Counter(r["pid"] for r in rows)
    run = _from_epochs(
        f"optuna hyperband ({OPTUNA_WORKERS} processes)",
        wall,
        len({r["trial"] for r in rows}),
        [(r["t"], r["value"], r["config"], r["epochs"]) for r in rows],
    )
    run.notes.append(
        f"{OPTUNA_WORKERS} processes, 1 TensorFlow thread each, shared a JournalStorage file; epochs per "
        f"process {sorted(per_pid.values(), reverse=True)}; results in flight when the budget is reached "
        "still count"
    )
    run.extra.update(
        {
            "epochs_per_pid": {str(pid): n for pid, n in per_pid.items()},
            "storage_epochs": _reported_epochs(study),
        }
    )
    return run


# --- scikit-learn GridSearchCV over scikeras ----------------------------------------------


def gridsearchcv(ctx: Context) -> ToolRun:
    """GridSearchCV (cv folds of the training split) over the problem's grid, refit on train.

    Its validation accuracy is the refit best estimator's on the validation split;
    its progress events are each candidate's mean CV accuracy when its last fold ends.
    """
    wrappers = require("scikeras.wrappers")
    import keras
    from sklearn.model_selection import GridSearchCV

    problem, job = ctx.problem, ctx.problem.job
    t0, started = time.time(), time.perf_counter()
    data = ctx.load()
    keras.utils.set_random_seed(ctx.seed)
    defaults = dict(problem.grid_defaults)
    model_keys = [k for k in problem.grid if k not in ("epochs", "batch_size")]

    def build(**config: Any) -> Any:
        return job.build_model({**defaults, **config}, data.input_spec)

    # Sequential fits (n_jobs=1, the default) share this list in-process.
    scores: list[tuple[float, float]] = []

    def timed_accuracy(estimator: Any, x: Any, y: Any) -> float:
        score = float(estimator.score(x, y))
        scores.append((time.time() - t0, score))
        return score

    if data.task == "regression":
        raise InputError(f"problem {problem.name!r}: the GridSearchCV peer scores accuracy, not regression")
    first = {k: v[0] for k, v in problem.grid.items()}
    estimator = wrappers.KerasClassifier(
        model=build,
        batch_size=int(first.get("batch_size", defaults.get("batch_size", job.batch_size))),
        epochs=int(first["epochs"]),
        verbose=0,
        random_state=ctx.seed,
        **{f"model__{k}": first[k] for k in model_keys},
    )
    grid = {(k if k in ("epochs", "batch_size") else f"model__{k}"): list(v) for k, v in problem.grid.items()}
    search = GridSearchCV(estimator, grid, cv=problem.cv, scoring=timed_accuracy, refit=True)
    search.fit(data.x_train, data.y_train)
    val = float(search.best_estimator_.score(data.x_val, data.y_val))
    wall = time.perf_counter() - started

    best = {k.removeprefix("model__"): v for k, v in search.best_params_.items()}
    candidates = [
        {k.removeprefix("model__"): v for k, v in params.items()} for params in search.cv_results_["params"]
    ]
    events = [
        (scores[(i + 1) * problem.cv - 1][0], float(search.cv_results_["mean_test_score"][i]))
        for i in range(len(candidates))
        if (i + 1) * problem.cv <= len(scores)
    ]
    epochs = problem.cv * sum(int(c["epochs"]) for c in candidates) + int(best["epochs"])
    return ToolRun(
        tool=f"gridsearchcv + scikeras (cv={problem.cv})",
        wall_s=wall,
        epochs=epochs,
        trials=len(candidates),
        best_val=val,
        best_config={**job.defaults, **defaults, **best},
        refit_epochs=int(best["epochs"]),
        events=events,
        notes=[
            f"{len(candidates) * problem.cv} fits + 1 refit on train; progress and 'time to threshold' "
            f"use mean CV accuracy; best CV accuracy {search.best_score_:.4f}"
        ],
        extra={"best_cv_accuracy": float(search.best_score_)},
    )


# --- shared --------------------------------------------------------------------------------


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _from_epochs(
    tool: str, wall: float, trials: int, epochs_seen: list[tuple[float, float, dict[str, Any], int]]
) -> ToolRun:
    """A ToolRun from per-epoch records (seconds, value, config, epochs the model has trained)."""
    finite = [e for e in epochs_seen if math.isfinite(e[1])]
    best = max(finite, key=lambda e: e[1]) if finite else None
    return ToolRun(
        tool=tool,
        wall_s=wall,
        epochs=len(epochs_seen),
        trials=trials,
        best_val=best[1] if best else None,
        best_config=dict(best[2]) if best else None,
        refit_epochs=best[3] if best else None,
        events=[(t, v) for t, v, _, _ in finite],
    )


def refit_test_accuracy(
    problem: Problem, data: Dataset, config: Mapping[str, Any], epochs: int, seed: int
) -> float:
    """Train ``config`` on train + validation for ``epochs`` and score it on the test split."""
    import keras
    import numpy as np

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = problem.job.build_model(dict(config), data.input_spec)
    model.fit(
        np.concatenate([data.x_train, data.x_val]),
        np.concatenate([data.y_train, data.y_val]),
        batch_size=batch_size(problem, config),
        epochs=int(epochs),
        shuffle=True,
        verbose=0,
    )
    scores = model.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)
    return float(scores[model_metric(problem)])


# Peer name -> runner; `compare` runs them beside this service's searchers.
PEERS: dict[str, Callable[[Context], ToolRun]] = {
    "keras-tuner": keras_tuner_hyperband,
    "optuna-hyperband": optuna_hyperband,
    "optuna-hyperband-2proc": optuna_hyperband_2proc,
    "gridsearchcv": gridsearchcv,
}
