"""run_sweep(spec) -> SweepResult: resolve job, searcher, scheduler and trainable; run Ray Tune."""

from __future__ import annotations

import logging
import math
import os
import secrets
import shutil
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tuning_service.catalog import load_job, ship_user_modules
from tuning_service.errors import InputError, SweepError
from tuning_service.job import Job
from tuning_service.results import (
    COMPLETED,
    DIVERGED,
    ERRORED,
    STOPPED,
    SweepResult,
    TrialSummary,
    write_outputs,
)
from tuning_service.schedulers import validate_scheduler
from tuning_service.searchers import validate_searcher
from tuning_service.spec import SweepSpec
from tuning_service.store import Store, check_database, open_store
from tuning_service.store.recording import SweepRecording

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedSweep:
    """A spec checked against its job, searcher and scheduler: safe to start Ray for."""

    spec: SweepSpec
    job: Job
    max_epochs: int
    # A Ray Tune class trainable to use instead of KerasTrainable (engine benchmarks).
    trainable: Any = None


def prepare(spec: SweepSpec, job: Job | None = None) -> PreparedSweep:
    """Validate everything that can be checked before Ray starts (well under a second)."""
    spec.validate()
    job = job or load_job(spec.job)
    if spec.cv_folds is not None:
        job = replace(job, cv_folds=spec.cv_folds)
    validate_searcher(spec.searcher, job.space, spec.searcher_options)
    validate_scheduler(spec.scheduler, spec.scheduler_options)
    if spec.address in (None, "local"):
        from tuning_service.raysession import check_fits

        check_fits(spec.cpus_per_trial, spec.gpus_per_trial, os.cpu_count() or 1, math.inf, "this machine")
    check_database(spec.db, spec.storage)  # an unreachable server fails here, within seconds
    return PreparedSweep(spec, job, spec.max_epochs or job.max_epochs)


def new_sweep_id() -> str:
    """Sortable by start time, unique across machines."""
    return f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def run_sweep(
    spec: SweepSpec, *, job: Job | None = None, progress: Any = None, trainable: Any = None
) -> SweepResult:
    """Run one sweep to completion and write its best configuration.

    ``progress`` is an optional callable receiving a `progress.Snapshot` after every
    trial event. ``trainable`` replaces the Keras trainable (it gets the same setup
    arguments; see `tuning_service.testing.NoopTrainable`). Raises InputError for bad input (nothing written) and SweepError
    when the sweep ran but no trial produced a result.
    """
    prepared = replace(prepare(spec, job), trainable=trainable)
    job = prepared.job
    dataset = job.load_data(limit=spec.data_limit, data_dir=spec.data_dir, seed=spec.seed)
    store = open_store(spec.db, storage=spec.storage)
    try:
        return _run_recorded(prepared, dataset, store, progress)
    finally:
        store.close()


def _run_recorded(prepared: PreparedSweep, dataset: Any, store: Store, progress: Any) -> SweepResult:
    spec, job = prepared.spec, prepared.job
    sweep_id = new_sweep_id()
    sweep_dir = Path(spec.storage).expanduser().absolute() / job.name / sweep_id
    sweep_dir.mkdir(parents=True)
    log.info("sweep %s of job %s in %s", sweep_id, job.name, sweep_dir)

    from tuning_service.raysession import prepare_environment, ray_session

    prepare_environment(spec.address)
    started = time.monotonic()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    recording = SweepRecording(
        store, sweep_id, spec=spec, job=job, max_epochs=prepared.max_epochs, sweep_dir=sweep_dir
    )
    try:
        with ray_session(spec.address, sweep_dir) as where:
            recording.start(where)  # the sweep's RUNNING row exists before any trial starts
            results = _fit(prepared, dataset, sweep_dir, progress, recording.callback())
    except InputError as exc:
        # Refused before any trial ran (cluster unreachable, token, resources): leave no
        # sweep directory behind for input the user has to fix.
        recording.abort(exc)
        shutil.rmtree(sweep_dir, ignore_errors=True)
        raise
    except BaseException as exc:
        recording.abort(exc)
        raise
    summary = SweepResult(
        sweep_id=sweep_id,
        job=job.name,
        metric=job.metric,
        mode=job.mode,
        searcher=spec.searcher,
        scheduler=spec.scheduler,
        seed=spec.seed,
        sweep_dir=sweep_dir,
        # Trials still pending when a budget ended the sweep never ran: they are not trials.
        trials=[
            _summarize(r, job, prepared.max_epochs)
            for r in results
            if (r.metrics or {}).get("training_iteration") or r.error
        ],
        wall_time_s=time.monotonic() - started,
        max_epochs=prepared.max_epochs,
        space=job.space.to_dict(),
        started=started_at,
    )
    recording.finish(summary)
    write_outputs(summary)
    if summary.best is None:
        raise SweepError(
            f"sweep {sweep_id}: no trial finished with a valid {job.metric} "
            f"({', '.join(f'{n} {k}' for k, n in summary.counts().items() if n)}); see {sweep_dir}"
        )
    return summary


def _fit(prepared: PreparedSweep, dataset: Any, sweep_dir: Path, progress: Any, recorder: Any) -> Any:
    from ray import tune

    from tuning_service.callbacks import ProgressCallback
    from tuning_service.progress import Snapshot
    from tuning_service.raysession import check_fits, node_capacity
    from tuning_service.schedulers import create_scheduler
    from tuning_service.searchers import create_searcher
    from tuning_service.trainable import KerasTrainable

    spec, job = prepared.spec, prepared.job
    ship_user_modules()
    check_fits(spec.cpus_per_trial, spec.gpus_per_trial, *node_capacity(), "the Ray cluster")
    plan = create_searcher(
        spec.searcher,
        job.space,
        seed=spec.seed,
        points_to_evaluate=spec.points_to_evaluate,
        max_concurrent=spec.max_concurrent,
        **spec.searcher_options,
    )
    scheduler = create_scheduler(spec.scheduler, max_t=prepared.max_epochs, **spec.scheduler_options)
    num_samples = plan.num_samples or spec.num_samples
    trainable = tune.with_resources(
        tune.with_parameters(
            prepared.trainable or KerasTrainable,
            job=job,
            dataset=dataset,
            cpus=spec.cpus_per_trial,
            gpus=spec.gpus_per_trial,
            seed=spec.seed,
        ),
        {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial},
    )
    snapshot = Snapshot(total=num_samples, metric=job.metric, mode=job.mode, max_epochs=prepared.max_epochs)
    tuner = tune.Tuner(
        trainable,
        param_space=plan.param_space,
        tune_config=tune.TuneConfig(
            metric=job.metric,
            mode=job.mode,
            search_alg=plan.search_alg,
            scheduler=scheduler,
            num_samples=num_samples,
            time_budget_s=spec.time_budget_s,
            # One TensorFlow import per worker, not per trial.
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name="trials",
            storage_path=str(sweep_dir),
            stop=_stopper(prepared),
            checkpoint_config=tune.CheckpointConfig(
                checkpoint_frequency=spec.checkpoint_frequency, num_to_keep=1
            ),
            failure_config=tune.FailureConfig(max_failures=0),
            callbacks=[
                ProgressCallback(snapshot, progress, job.space.effective),
                recorder,
                *_extra_callbacks(spec, job, sweep_dir),
            ],
            verbose=0,
        ),
    )
    return tuner.fit()


def _extra_callbacks(spec: SweepSpec, job: Job, sweep_dir: Path) -> list[Any]:
    """Optional integrations chosen on the command line (MLflow through Ray Tune's own callback)."""
    if spec.mlflow is None:
        return []
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    return [
        MLflowLoggerCallback(
            tracking_uri=spec.mlflow,
            experiment_name=f"tuning-service/{job.name}",
            tags={"sweep_id": sweep_dir.name, "searcher": spec.searcher, "scheduler": spec.scheduler},
        )
    ]


def _epoch_cap(config: dict[str, Any], max_epochs: int) -> int:
    """A trial's own epoch budget: the sweep's, or less when its config sets ``epochs``."""
    return min(max_epochs, int(config.get("epochs") or max_epochs))


def _stopper(prepared: PreparedSweep) -> Any:
    """Every trial stops at the epoch budget; the sweep stops at its total epoch budget."""
    from ray.tune.stopper import CombinedStopper, MaximumIterationStopper

    from tuning_service.stoppers import EpochBudget

    per_trial = MaximumIterationStopper(prepared.max_epochs)
    if prepared.spec.epoch_budget is None:
        return per_trial
    return CombinedStopper(per_trial, EpochBudget(prepared.spec.epoch_budget))


def _summarize(result: Any, job: Job, max_epochs: int) -> TrialSummary:
    """One Tune result -> the trial as the leaderboard shows it."""
    from tuning_service.trainable import DIVERGED as DIVERGED_KEY
    from tuning_service.trainable import EARLY_STOPPED, TRAIN_TIME

    metrics = result.metrics or {}
    frame = result.metrics_dataframe
    history: list[dict[str, Any]] = []
    if frame is not None and not frame.empty:
        keep = [
            c
            for c in frame.columns
            if c
            in (
                "training_iteration",
                job.metric,
                "loss",
                "val_loss",
                DIVERGED_KEY,
                TRAIN_TIME,
                # Wall-clock end and length of each epoch: convergence and slot-usage plots.
                "timestamp",
                "ended_at",
                "time_this_iter_s",
            )
            or c.startswith("val_")
        ]
        history = frame[keep].to_dict("records")
    finite = [
        h
        for h in history
        if not h.get(DIVERGED_KEY) and h.get(job.metric) is not None and math.isfinite(h[job.metric])
    ]
    best = (max if job.mode == "max" else min)(finite, key=lambda h: h[job.metric]) if finite else None
    epochs = int(metrics.get("training_iteration", len(history)) or 0)
    if result.error is not None:
        status = ERRORED
    elif metrics.get(DIVERGED_KEY):
        status = DIVERGED
    elif epochs >= _epoch_cap(result.config or {}, max_epochs) and not metrics.get(EARLY_STOPPED):
        status = COMPLETED
    else:
        status = STOPPED
    return TrialSummary(
        trial_id=str(metrics.get("trial_id") or Path(result.path).name),
        config=job.space.effective(result.config or {}),
        status=status,
        value=float(best[job.metric]) if best else None,
        best_epoch=int(best["training_iteration"]) if best else None,
        epochs=epochs,
        train_time_s=float(metrics.get(TRAIN_TIME) or 0.0),
        error=_first_line(result.error) if result.error is not None else None,
        history=history,
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[-1] if text else type(error).__name__
