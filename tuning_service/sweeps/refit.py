"""Refit: retrain a best config on train + validation for its best epoch count and score it on test."""

from __future__ import annotations

import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuning_service.core.errors import InputError
from tuning_service.core.job import Job
from tuning_service.core.results import versions
from tuning_service.store import Store, SweepRow, TrialRow
from tuning_service.sweeps.aggregate import status_counts

log = logging.getLogger(__name__)

MODEL_FILE = "best_model.keras"


@dataclass(frozen=True)
class RefitOutcome:
    """What a refit trained, how it scored on the held-out test split, and where the model is."""

    job: str
    sweep_id: str
    trial_id: str
    config: dict[str, Any]
    metric: str
    value: float | None  # the trial's validation value during the sweep
    epochs: int
    train_rows: int
    test_rows: int
    test_metric: str
    test_value: float | None
    test_metrics: dict[str, float]
    model_path: Path
    duration_s: float


def choose(store: Store, *, sweep: str | None = None, job: str | None = None) -> tuple[TrialRow, SweepRow]:
    """The trial to refit: the best of ``sweep``, or of ``job`` across its sweeps."""
    if (sweep is None) == (job is None):
        raise InputError("refit needs a SWEEP or --job JOB (one of them)")
    if sweep is not None:
        row = store.find_sweep(sweep)
        found = store.top_trials(row.job, metric=row.metric, mode=row.mode, limit=1, sweep_id=row.sweep_id)
        if not found:
            counts = status_counts(store.trials([row.sweep_id]))
            what = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no trials"
            raise InputError(f"sweep {row.sweep_id} has no completed trial to refit ({what})")
        return found[0]
    name = str(job)
    store.check_job(name)
    newest = store.sweeps(job=name)[0]
    found = store.top_trials(name, metric=newest.metric, mode=newest.mode, limit=1)
    if not found:
        raise InputError(f"job {name!r} has no completed trial to refit in any recorded sweep")
    return found[0]


def model_path_for(sweep: SweepRow, output: str | os.PathLike[str] | None) -> Path:
    """Where the model goes (next to the sweep by default); refused before any training."""
    if output is not None:
        path = Path(os.path.expanduser(output))
    elif sweep.sweep_dir:
        path = Path(sweep.sweep_dir) / MODEL_FILE
    else:
        raise InputError(f"sweep {sweep.sweep_id} has no recorded directory; give --output PATH.keras")
    if path.suffix != ".keras":
        raise InputError(f"--output must end in .keras (Keras' native format), got {str(path)!r}")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise InputError(
            f"cannot save the refit model to {str(path)!r}: directory {str(parent)!r} does not exist "
            "(refitting on another machine? give --output PATH.keras)"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot save the refit model to {str(path)!r}: permission denied")
    return path


def refit(
    store: Store,
    *,
    sweep: str | None = None,
    job: str | None = None,
    output: str | os.PathLike[str] | None = None,
    job_obj: Job | None = None,
    storage: str | os.PathLike[str] | None = None,
) -> RefitOutcome:
    """Retrain the chosen trial's config on train + validation for its best epoch count,
    evaluate on the test split, save the model atomically and record the test metrics.

    ``job_obj`` overrides loading the job from what the sweep recorded (tests, notebooks).
    ``storage`` is the results root: without ``output`` the model goes into the sweep's
    folder, which must be inside it (the folder comes from a database row).
    """
    from tuning_service.core.trusted import check_job_file, check_sweep_folder

    trial, row = choose(store, sweep=sweep, job=job)
    if output is None and storage is not None and row.sweep_dir:
        check_sweep_folder(row.sweep_id, row.sweep_dir, storage)
    path = model_path_for(row, output)
    if job_obj is None:
        from tuning_service.data.catalog import load_job

        check_job_file(row.job_ref)  # imported: its code runs here
        job_obj = load_job(row.job_ref)
    if job_obj.name != row.job:
        raise InputError(f"sweep {row.sweep_id} tuned job {row.job!r}, not {job_obj.name!r}")
    spec = row.spec or {}
    started = time.monotonic()
    data = job_obj.load_data(limit=spec.get("data_limit"), data_dir=spec.get("data_dir"), seed=row.seed)
    epochs = int(trial.best_epoch or trial.epochs)
    log.info("refit %s sweep %s trial %s for %d epochs", row.job, row.sweep_id, trial.trial_id, epochs)
    model, train_rows = _train(job_obj, trial.config, data, epochs, row.seed)
    scores = model.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)
    test_metrics = {f"test_{k}": float(v) for k, v in scores.items()}
    test_metric = "test_" + row.metric.removeprefix("val_")
    _save_atomic(model, path)
    duration = time.monotonic() - started
    store.record_refit(
        row.sweep_id,
        trial.trial_id,
        config=trial.config,
        epochs=epochs,
        train_rows=train_rows,
        test_rows=len(data.x_test),
        test_metric=test_metric,
        test_value=test_metrics.get(test_metric),
        test_metrics=test_metrics,
        model_path=str(path.absolute()),
        duration_s=duration,
        versions=versions(),
    )
    return RefitOutcome(
        job=row.job,
        sweep_id=row.sweep_id,
        trial_id=trial.trial_id,
        config=dict(trial.config),
        metric=row.metric,
        value=trial.value,
        epochs=epochs,
        train_rows=train_rows,
        test_rows=len(data.x_test),
        test_metric=test_metric,
        test_value=test_metrics.get(test_metric),
        test_metrics=test_metrics,
        model_path=path.absolute(),
        duration_s=duration,
    )


def _train(job: Job, config: dict[str, Any], data: Any, epochs: int, seed: int) -> tuple[Any, int]:
    import numpy as np

    from tuning_service.training.fit import fit, fresh_model, trial_seed

    model_config = job.model_config(config)
    # The trial's own seed: the same initial weights the sweep measured.
    model = fresh_model(job, model_config, data.input_spec, seed=trial_seed(seed, model_config))
    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    batch_size = int(model_config.get("batch_size", job.batch_size))
    fit(model, x, y, batch_size=batch_size, epochs=epochs, stop_on_nan=False)
    return model, len(x)


def _save_atomic(model: Any, path: Path) -> None:
    """Save to a temporary file beside ``path``, then rename: never a half-written model."""
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"cannot save the refit model to {str(path)!r}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
