"""run_sweep(spec) -> SweepResult: resolve job, searcher, scheduler and trainable; run Ray Tune."""

from __future__ import annotations

import logging
import math
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tuning_service.core.driverlock import DriverLock
from tuning_service.core.envvars import env_restored
from tuning_service.core.errors import InputError, NotRecordedError, SweepError
from tuning_service.core.job import Job, Mode
from tuning_service.core.lineage import write_lineage
from tuning_service.core.objectives import (
    COSTS,
    Constraint,
    Objective,
    check_constraints,
    check_objectives,
    parse_pick,
)
from tuning_service.core.outcomes import (
    DIVERGED_KEY,
    ENDED_AT,
    EPOCH,
    ERROR_KEY,
    REPLAYED_KEY,
    TRAIN_TIME,
    classify_error,
    trial_status,
)
from tuning_service.core.results import (
    BEST_CONFIG_JSON,
    TRIALS_DIR,
    SweepResult,
    TrialSummary,
    with_objectives,
    write_outputs,
)
from tuning_service.core.spec import DEFAULT_STORAGE, SweepSpec
from tuning_service.core.stall import stall_seconds
from tuning_service.core.timestamps import iso_utc
from tuning_service.data.catalog import load_job, ship_user_modules
from tuning_service.raytune.pendingtrials import (
    PENDING_ENV,
    concurrent_trials,
    raise_pending_cap,
    user_pending_cap,
)
from tuning_service.raytune.schedulers import validate_scheduler
from tuning_service.raytune.searchers import check_multi_objective, check_pairing, validate_searcher
from tuning_service.raytune.workerfork import ForkServer, forking_chosen
from tuning_service.raytune.workerkeep import keep_seconds
from tuning_service.store import StoreError, check_database

if TYPE_CHECKING:
    from tuning_service.raytune.recording import SweepRecording
    from tuning_service.store import Store
    from tuning_service.sweeps.resume import Resume

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedSweep:
    """A spec checked against its job, searcher and scheduler: safe to start Ray for."""

    spec: SweepSpec
    job: Job
    max_epochs: int
    # A Ray Tune class trainable to use instead of KerasTrainable (engine benchmarks).
    trainable: Any = None
    # Asked before every driver step: a reason to stop the sweep now, or None (see run_sweep).
    stop: Callable[[], str | None] | None = None
    # The sweep's objectives (the first is ``job.metric``; empty: the job's metric alone) and constraints.
    objectives: tuple[Objective, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    # A fork server started for the embedded Ray's workers before the data loads (`_workers_forked_early`).
    worker_forks: ForkServer | None = None


def prepare(spec: SweepSpec, job: Job | None = None) -> PreparedSweep:
    """Validate everything that can be checked before Ray starts (well under a second)."""
    spec.validate()
    job = job or load_job(spec.job)
    if spec.cv_folds is not None:
        job = replace(job, cv_folds=spec.cv_folds)
    validate_searcher(spec.searcher, job.space, spec.searcher_options)
    if (job.objectives and not spec.objectives) or (job.constraints and not spec.constraints):
        # The job's own objectives and limits where `run` names none, recorded with the sweep
        # (`resume` and `results` read them there).
        spec = spec.replace(
            objectives=spec.objectives or job.objectives, constraints=spec.constraints or job.constraints
        )
    objectives = check_objectives(spec.objectives, job.metric)
    constraints = check_constraints(spec.constraints)
    if objectives and (objectives[0].name, objectives[0].mode) != (job.metric, job.mode):
        # The first objective is the metric every leaderboard ranks the sweep's trials by.
        job = replace(
            job,
            metric=objectives[0].name,
            mode=cast(Mode, objectives[0].mode),
            worst=None,
            objectives=spec.objectives,
            constraints=spec.constraints,
        )
    check_multi_objective(spec.searcher, objectives)
    if spec.pick is not None:
        if len(objectives) < 2:
            raise InputError(
                f"--pick {spec.pick!r} chooses among a multi-objective sweep's Pareto front: "
                "give two or more --objective"
            )
        parse_pick(spec.pick, objectives)
    max_epochs = spec.max_epochs or job.max_epochs
    validate_scheduler(
        spec.scheduler_name,
        spec.scheduler_options,
        searcher=spec.searcher,
        space=job.space,
        max_t=max_epochs,
        checkpoint_frequency=spec.checkpoint_frequency,
        objectives=objectives,
    )
    check_pairing(spec.searcher, spec.scheduler_name)
    if spec.embedded:
        from tuning_service.raytune.raysession import check_fits

        check_fits(spec.cpus_per_trial, spec.gpus_per_trial, os.cpu_count() or 1, math.inf, "this machine")
    check_database(spec.db, spec.storage)  # an unreachable server fails here, within seconds
    _chosen_period()  # a bad TUNING_SERVICE_SNAPSHOT_S fails here, not in Tune
    forking_chosen()  # and a bad TUNING_SERVICE_WORKER_FORK
    keep_seconds()  # and TUNING_SERVICE_WORKERS_KEEP_S
    stall_seconds(embedded=spec.embedded)  # and TUNING_SERVICE_STALL_S
    user_pending_cap()  # and Tune's own TUNE_MAX_PENDING_TRIALS_PG
    if not spec.embedded:
        from tuning_service.raytune.raysession import connect_timeout

        connect_timeout()  # likewise TUNING_SERVICE_CONNECT_TIMEOUT_S
    return PreparedSweep(spec, job, max_epochs, objectives=objectives, constraints=constraints)


def new_sweep_id() -> str:
    """Sortable by start time, unique across machines."""
    return f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def run_sweep(
    spec: SweepSpec,
    *,
    job: Job | None = None,
    progress: Any = None,
    trainable: Any = None,
    stop: Callable[[], str | None] | None = None,
) -> SweepResult:
    """Run one sweep to completion and write its best configuration.

    ``progress`` is an optional callable receiving a `progress.Snapshot` after every
    trial event. ``trainable`` replaces the Keras trainable (it gets the same setup
    arguments; see `tuning_service.testing.NoopTrainable`). ``stop`` is asked before every
    driver step; a reason it returns ends the sweep (SweepStopped, recorded as interrupted).
    Raises InputError for bad input (nothing written) and SweepError when the sweep ran but
    no trial produced a result.
    """
    prepared = replace(prepare(spec, job), trainable=trainable, stop=stop)
    with _workers_forked_early(prepared) as prepared:
        from tuning_service.store import open_store  # SQLAlchemy: once the fork server has started

        dataset = _load_data(prepared.job, spec)
        store = open_store(spec.db, storage=spec.storage)
        try:
            return _run_recorded(prepared, dataset, store, progress)
        finally:
            store.close()


def resume_sweep(
    ref: str, *, db: str | None = None, storage: str = DEFAULT_STORAGE, progress: Any = None
) -> SweepResult:
    """Continue the sweep ``ref`` (an id or unique prefix) whose driver died or was stopped.

    Finished trials are kept, unfinished ones continue from their last checkpoint, and
    the searcher's and scheduler's state come back from Tune's snapshot; the sweep ends
    with the trials it was asked for. InputError when the sweep cannot be resumed.
    """
    from tuning_service.core.trusted import check_job_file, check_sweep_folder
    from tuning_service.raytune.snapshots import reinstate
    from tuning_service.store import open_store
    from tuning_service.sweeps.resume import check_no_live_driver, check_resumable, plan_resume, spec_of

    store = open_store(db, storage=storage, must_exist=True)
    try:
        row = store.find_sweep(ref)
        trials_dir = check_resumable(row)
        # The folder and job file come from a database row: nothing in them runs unless trusted.
        check_sweep_folder(row.sweep_id, trials_dir.parent, storage)
        check_job_file(row.job_ref)
        # Nothing in the folder is touched before the lock is ours and no driver may be alive.
        with DriverLock.acquire(trials_dir.parent, row.sweep_id):
            check_no_live_driver(store.find_sweep(row.sweep_id))
            reinstate(row.sweep_id, trials_dir)
            job = load_job(row.job_ref)
            prepared = prepare(spec_of(row, db=db), job)
            with _workers_forked_early(prepared) as prepared:
                resume = plan_resume(store, row, prepared.job)
                dataset = _load_data(prepared.job, prepared.spec)
                return _run_recorded(prepared, dataset, store, progress, resume)
    finally:
        store.close()


def _keras_slots(prepared: PreparedSweep) -> int:
    """Keras trials the sweep runs at once, at most (0 for another trainable, or GPU trials)."""
    from tuning_service.raytune.warmworkers import trial_slots

    if prepared.trainable is not None:
        return 0
    spec = prepared.spec
    return trial_slots(
        os.cpu_count() or 1, spec.cpus_per_trial, spec.gpus_per_trial, spec.num_samples, spec.max_concurrent
    )


@contextmanager
def _workers_forked_early(prepared: PreparedSweep) -> Iterator[PreparedSweep]:
    """``prepared`` with a fork server for its embedded Ray's workers (`raytune.workerfork`),
    started now, where its workers will be forked: the server's imports then run while the
    driver loads the data and opens the store, not only while Ray starts."""
    if (
        not prepared.spec.embedded
        or _keras_slots(prepared) == 0
        or not forking_chosen()
        or _ray_running()  # the sweep runs on the Ray this process runs already
    ):
        yield prepared
        return
    from tuning_service.raytune.raysession import prepare_environment
    from tuning_service.raytune.workerkeep import worker_fork_server

    prepare_environment(prepared.spec.address)  # what the server's imports read
    with worker_fork_server() as server:
        yield replace(prepared, worker_forks=server)


def _ray_running() -> bool:
    """Whether this process has started or joined a Ray already (without importing Ray)."""
    ray = sys.modules.get("ray")
    return ray is not None and bool(ray.is_initialized())


def _load_data(job: Job, spec: SweepSpec) -> Any:
    """The job's data, logged first: a slow load shows what the sweep is waiting for."""
    log.info("loading the data of job %s", job.name)
    return job.load_data(limit=spec.data_limit, data_dir=spec.data_dir, seed=spec.seed)


def _run_recorded(
    prepared: PreparedSweep, dataset: Any, store: Store, progress: Any, resume: Resume | None = None
) -> SweepResult:
    """A new sweep (``resume`` None: its folder is made and locked here), or a resumed one
    (whose folder `resume_sweep` has locked already)."""
    job = prepared.job
    if resume is not None:
        log.info(
            "resuming sweep %s of job %s in %s (%d trials finished)",
            resume.sweep_id,
            job.name,
            resume.sweep_dir,
            len(resume.finished),
        )
        return _drive(prepared, dataset, store, progress, resume.sweep_id, resume.sweep_dir, resume)
    sweep_id = prepared.spec.sweep_id or new_sweep_id()
    # os.path.expanduser leaves a ~user that does not exist as it is; Path.expanduser raises.
    sweep_dir = Path(os.path.expanduser(prepared.spec.storage)).absolute() / job.name / sweep_id
    if prepared.spec.sweep_id is not None and (sweep_dir.exists() or store.sweeps(ids=[sweep_id])):
        raise InputError(f"--sweep-id {sweep_id}: that sweep exists already; give an id no sweep has")
    sweep_dir.mkdir(parents=True)
    with DriverLock.acquire(sweep_dir, sweep_id):  # held while this process drives the sweep
        log.info("sweep %s of job %s in %s", sweep_id, job.name, sweep_dir)
        return _drive(prepared, dataset, store, progress, sweep_id, sweep_dir)


def _drive(
    prepared: PreparedSweep,
    dataset: Any,
    store: Store,
    progress: Any,
    sweep_id: str,
    sweep_dir: Path,
    resume: Resume | None = None,
) -> SweepResult:
    """Run Ray Tune for the sweep in ``sweep_dir``, record it, write its files."""
    from tuning_service.raytune.raysession import prepare_environment, ray_session
    from tuning_service.raytune.recording import SweepRecording

    spec, job = prepared.spec, prepared.job

    prepare_environment(spec.address)
    started = time.monotonic()
    started_at = resume.started_at if resume else iso_utc()
    recording = SweepRecording(
        store, sweep_id, spec=spec, job=job, max_epochs=prepared.max_epochs, sweep_dir=sweep_dir
    )
    try:
        with ray_session(
            spec.address, sweep_dir, trial_slots=_keras_slots(prepared), worker_forks=prepared.worker_forks
        ) as where:
            recording.start(where)  # the sweep's RUNNING row exists before any trial starts
            # Tune's period and pending-trials variables, set for this sweep, go back as they
            # were: they must not pass for the user's choice in a later sweep of this process, or
            # in a driver it starts (10 s there, without the pace, would forget trials).
            with env_restored(SNAPSHOT_PERIOD_ENV, PENDING_ENV):
                results = _fit(prepared, dataset, sweep_dir, progress, recording.callback(), resume)
    except InputError as exc:
        # Refused before any trial ran (cluster unreachable, token, resources): leave no
        # sweep directory behind for input the user has to fix.
        recording.abort(exc)
        if resume is None:
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
        scheduler=spec.scheduler_name,
        seed=spec.seed,
        sweep_dir=sweep_dir,
        # Trials still pending when a budget ended the sweep never ran: they are not trials.
        trials=[
            # A trial that had finished before a resume is read from the store: Tune's own
            # result files are buffered and lose their last lines when the driver is killed.
            (resume.summaries.get(_trial_id(r)) if resume else None)
            or _summarize(r, job, prepared.max_epochs)
            for r in results
            if (r.metrics or {}).get("training_iteration") or r.error
        ],
        wall_time_s=time.monotonic() - started + (resume.previous_s if resume else 0.0),
        max_epochs=prepared.max_epochs,
        space=job.space.to_dict(),
        started=started_at,
        ended=iso_utc(),
        objectives=[str(o) for o in prepared.objectives],
        constraints=[str(c) for c in prepared.constraints],
        pick=spec.pick,
    )
    summary = recording.with_dropped(summary)
    if len(prepared.objectives) > 1:
        summary = replace(summary, trials=[with_objectives(t, prepared.objectives) for t in summary.trials])
    _finish(recording, summary)
    if summary.best is None:
        raise SweepError(
            f"sweep {sweep_id}: no trial finished with a valid {job.metric} "
            f"({', '.join(f'{n} {k}' for k, n in summary.counts().items() if n)}); see {sweep_dir}"
        )
    return summary


def _finish(recording: SweepRecording, summary: SweepResult) -> None:
    """Write the sweep's files first, then record its end: a results database that is down
    at the end loses nothing (NotRecordedError), and a sweep whose files could not be written
    (a full disk) is recorded as failed, so that `resume` writes them once there is room."""
    sweep_id, where = summary.sweep_id, summary.sweep_dir
    try:
        write_outputs(summary)
        write_lineage(where, recording.exploits())
    except OSError as exc:
        problem = f"could not write its files in {where}: {exc.strerror or exc}"
        try:
            recording.finish(summary, failure=problem)
        except StoreError as store_exc:
            problem += f"; the results database could not record it either ({store_exc})"
        raise SweepError(
            f"sweep {sweep_id} {problem}; free some space, then `tuning-service resume {sweep_id}` writes them"
        ) from None
    try:
        recording.finish(summary)
    except StoreError as exc:
        best = (
            f"its best config is in {where / BEST_CONFIG_JSON}"
            if summary.best
            else f"its files are in {where}"
        )
        raise NotRecordedError(
            f"sweep {sweep_id} ran and {best}, but the results database could not record its end ({exc}); "
            f"once the database is back, `tuning-service resume {sweep_id}` records it",
            summary,
        ) from None


def _fit(
    prepared: PreparedSweep,
    dataset: Any,
    sweep_dir: Path,
    progress: Any,
    recorder: Any,
    resume: Resume | None,
) -> Any:
    import ray
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    from tuning_service.core.progress import Snapshot
    from tuning_service.raytune.callbacks import Halt, ProgressCallback, SnapshotKeeper, SyncBeforeRestore
    from tuning_service.raytune.raysession import (
        check_fits,
        node_capacity,
        skip_unsent_usage_tags,
    )
    from tuning_service.raytune.recorder import lineage_recorders
    from tuning_service.raytune.schedulers import checkpoint_frequency, checkpoints_kept, create_scheduler
    from tuning_service.raytune.schedulers.state import SchedulerState
    from tuning_service.raytune.searchers import create_searcher
    from tuning_service.raytune.snapshotpace import SnapshotPace
    from tuning_service.raytune.stallguard import StallGuard
    from tuning_service.raytune.tensorboard import tensorboard_loggers
    from tuning_service.raytune.trainable import KerasTrainable

    spec, job = prepared.spec, prepared.job
    ship_user_modules()
    skip_unsent_usage_tags()
    check_fits(spec.cpus_per_trial, spec.gpus_per_trial, *node_capacity(), "the Ray cluster")
    extra: dict[str, Any] = {"finished": resume.finished} if resume and resume.finished else {}
    if spec.objectives or spec.constraints:  # the model costs to measure, and their limits
        extra.update(objectives=spec.objectives, constraints=spec.constraints)
    trainable = tune.with_resources(
        tune.with_parameters(
            prepared.trainable or KerasTrainable,
            job=job,
            dataset=dataset,
            cpus=spec.cpus_per_trial,
            gpus=spec.gpus_per_trial,
            seed=spec.seed,
            **extra,
        ),
        {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial},
    )
    plan = create_searcher(
        spec.searcher,
        job.space,
        seed=spec.seed,
        points_to_evaluate=spec.points_to_evaluate,
        max_concurrent=spec.max_concurrent,
        objectives=prepared.objectives or (Objective(job.metric, job.mode),),
        constraints=prepared.constraints,
        **spec.searcher_options,
    )
    num_samples = plan.num_samples or spec.num_samples
    slots = concurrent_trials(
        ray.cluster_resources(), spec.cpus_per_trial, spec.gpus_per_trial, num_samples, spec.max_concurrent
    )
    raise_pending_cap(plan.search_alg, slots)  # every slot gets an actor (`pendingtrials`)
    snapshot = Snapshot(total=num_samples, metric=job.metric, mode=job.mode, max_epochs=prepared.max_epochs)

    def callbacks(scheduler: Any, watch: Any = None) -> list[Any]:
        # Tune reads the snapshot period when the run starts, after this.
        pace = keeps_pace(num_samples, scheduler)
        os.environ[SNAPSHOT_PERIOD_ENV] = snapshot_period(num_samples, paced=pace)
        # The order is part of Tune's snapshot (callback states are saved by position; the
        # pace, the sync's wait and the JSON logger, added last, have none). The pace follows
        # SnapshotKeeper: a snapshot's cost, which spaces the next, includes the keeper's archive.
        return [
            SchedulerState(scheduler, frozenset(resume.finished) if resume is not None else frozenset()),
            ProgressCallback(snapshot, progress, job.space.effective),
            recorder,
            *_extra_callbacks(spec, job, sweep_dir),
            SnapshotKeeper(
                sweep_dir, watch, checkpoints_kept=checkpoints_kept(spec.scheduler_name, CHECKPOINTS_KEPT)
            ),
            Halt(prepared.stop),
            *lineage_recorders(recorder, scheduler),
            *([SnapshotPace(scheduler)] if pace else []),
            SyncBeforeRestore(),
            # Each trial's result.json, from which the sweep's results read every trial's epochs.
            # Tune adds it, with its CSV and TensorBoard loggers, only while a user has not set
            # TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1 (which then turns off only those two).
            JsonLoggerCallback(),
            # In the place of Tune's TensorBoard logger (so Tune adds none), and as it does.
            *tensorboard_loggers(),
            StallGuard(stall_seconds(embedded=spec.embedded), sweep_dir.name),
        ]

    if resume is not None:
        from ray.tune.search import BasicVariantGenerator

        stop = _stopper(prepared, resume.epochs_done)
        # Grid and random generate their remaining trials from the param space, which Tune does
        # not pickle; Optuna and HyperOpt keep the space in their own (restored) state.
        generated = plan.search_alg is None or isinstance(plan.search_alg, BasicVariantGenerator)
        space = plan.param_space if generated else None
        return _restore(tune, sweep_dir, trainable, space, resume, callbacks, stop, snapshot)
    scheduler = create_scheduler(
        spec.scheduler_name,
        max_t=prepared.max_epochs,
        space=job.space,
        objectives=prepared.objectives,
        **spec.scheduler_options,
    )
    if len(prepared.objectives) > 1:
        log.info(
            "multi-objective sweep: %s; scheduler %s ranks them all%s",
            ", ".join(map(str, prepared.objectives)),
            spec.scheduler_name,
            " (MO-ASHA: non-dominated sorting, crowding distance)" if spec.scheduler_name == "asha" else "",
        )
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
            name=TRIALS_DIR,
            storage_path=str(sweep_dir),
            stop=_stopper(prepared),
            checkpoint_config=tune.CheckpointConfig(
                checkpoint_frequency=checkpoint_frequency(
                    spec.scheduler_name, spec.checkpoint_frequency, spec.scheduler_options
                ),
                # None: Tune keeps every checkpoint and never forces a snapshot for one;
                # SnapshotKeeper deletes the old ones once no snapshot can name them.
                num_to_keep=None,
            ),
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            callbacks=callbacks(scheduler),
            verbose=0,
        ),
    )
    return _run(tuner)


def _run(tuner: Any) -> Any:
    """Run the sweep, its trainable registered by now (see `trainableclass`), its trials'
    run metadata lean (see `trialmetadata`), its staging folder copied a changed file at a
    time (see `stagingsync`), its events written down after the worker's next call is sent
    (see `deferredwrites`), a reused actor's reset and first call sent together (see
    `pipelinedreset`), what the driver held before it out of the collector's passes (see
    `heapfreeze`), and its trials' results left as rows, not read into tables at its end (see
    `resultrows`)."""
    from tuning_service.core.heapfreeze import frozen_heap
    from tuning_service.raytune.deferredwrites import writes_after_dispatch
    from tuning_service.raytune.pipelinedreset import resets_pipelined
    from tuning_service.raytune.resultrows import tables_unread
    from tuning_service.raytune.stagingsync import changed_files_synced
    from tuning_service.raytune.trainableclass import trainables_looked_up_once
    from tuning_service.raytune.trialmetadata import lean_run_metadata

    with (
        trainables_looked_up_once(),
        lean_run_metadata(),
        changed_files_synced(),
        writes_after_dispatch(),
        resets_pipelined(),
        frozen_heap(),
        tables_unread(),
    ):
        return tuner.fit()


def _restore(
    tune: Any,
    sweep_dir: Path,
    trainable: Any,
    param_space: dict[str, Any] | None,
    resume: Resume,
    callbacks: Any,
    stop: Any,
    snapshot: Any,
) -> Any:
    """Tuner.restore with this run's callbacks and stopper in place of the pickled ones.

    Tune unpickles the interrupted run's config, whose callbacks lost their live view
    and database connection; the scheduler and searcher are the unpickled ones (their
    state comes from the snapshot). Tune offers no public way to swap callbacks on
    restore, hence the private ``_local_tuner``: tests/sweeps/faults/test_resume.py fails if a
    Ray upgrade moves it. The param space is not in Tune's pickle: the grid and random
    searchers need it again to generate the trials still to come.
    """
    from tuning_service.raytune.snapshots import RestoreWatch

    tuner = tune.Tuner.restore(
        str(sweep_dir / TRIALS_DIR),
        trainable=trainable,
        param_space=param_space,
        resume_unfinished=True,
        resume_errored=False,
    )
    internal = tuner._local_tuner
    run_config = internal.get_run_config()
    run_config.stop = stop
    for status, count in resume.counts.items():
        snapshot.count(status, count)
    snapshot.epochs = resume.epochs_done
    if resume.best is not None:
        snapshot.offer(*resume.best)
    # Tune starts the sweep afresh when it cannot read the snapshot; the watch stops it.
    with RestoreWatch() as watch:
        run_config.callbacks = callbacks(internal._tune_config.scheduler, watch)
        return _run(tuner)


# Checkpoints kept per trial (its newest), by callbacks.SnapshotKeeper, not by Tune: Tune,
# given num_to_keep, forces a snapshot of every trial whenever a trial has saved that many
# since the last one, a cost that grows with the sweep (benchmarks/driver_scale.py).
CHECKPOINTS_KEPT = 2

# Ray Tune reads its experiment-snapshot period from this variable when a run starts.
# Users set ours (TUNING_SERVICE_SNAPSHOT_S); a value of Tune's own that this process
# had before its first sweep is honoured too.
SNAPSHOT_PERIOD_ENV = "TUNE_GLOBAL_CHECKPOINT_S"
USER_SNAPSHOT_ENV = "TUNING_SERVICE_SNAPSHOT_S"
_TUNE_PERIOD_AT_START = os.environ.get(SNAPSHOT_PERIOD_ENV)
# Up to this many trials a sweep is snapshotted in every driver step that needs it.
SNAPSHOT_EVERY_STEP_UP_TO = 300


def snapshot_period(num_samples: int, *, paced: bool = False) -> str:
    """Seconds between Tune's experiment snapshots, as Tune reads them ("auto": its own pace).

    Tune's default snapshots every 10 s or more, so a driver killed in between forgets
    the trials it started since: `resume` would run them again. Snapshotting in every step
    that started, checkpointed or ended a trial closes that gap (``paced``: `SnapshotPace`
    marks those steps, and the period is its fallback); a scheduler that cannot keep the
    pace snapshots after every step ("0"). The cost grows with the trials: each snapshot
    writes every trial and copies the trials folder out of Tune's staging directory. Above
    SNAPSHOT_EVERY_STEP_UP_TO trials Tune's own pace (at most 5 % of the driver's time)
    is kept, and a resume may repeat the last seconds (benchmarks/RESULTS.md, "What is left").
    """
    from tuning_service.raytune.snapshotpace import FALLBACK_PERIOD_S

    chosen = _chosen_period()
    if chosen is not None:
        return chosen
    if num_samples > SNAPSHOT_EVERY_STEP_UP_TO:
        return "auto"
    return f"{FALLBACK_PERIOD_S:g}" if paced else "0"


def _chosen_period() -> str | None:
    """The period the user set (ours, then Tune's own variable), checked; None when neither is set."""
    from tuning_service.core.envvars import parse_seconds

    for name, chosen in (
        (USER_SNAPSHOT_ENV, os.environ.get(USER_SNAPSHOT_ENV)),
        (SNAPSHOT_PERIOD_ENV, _TUNE_PERIOD_AT_START),
    ):
        if chosen and chosen.strip():
            period = parse_seconds(name, chosen, zero=True, words=("auto",))  # Tune would fail mid-sweep
            return period if isinstance(period, str) else f"{period:g}"
    return None


def keeps_pace(num_samples: int, scheduler: Any) -> bool:
    """Whether the sweep snapshots in the steps that need it (rather than after every step):
    a small sweep whose period the user left alone, with a scheduler that keeps the pace."""
    from tuning_service.raytune.snapshotpace import paced

    return paced(scheduler) and num_samples <= SNAPSHOT_EVERY_STEP_UP_TO and _chosen_period() is None


def _extra_callbacks(spec: SweepSpec, job: Job, sweep_dir: Path) -> list[Any]:
    """Optional integrations chosen on the command line (MLflow through Ray Tune's own callback)."""
    if spec.mlflow is None:
        return []
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    return [
        MLflowLoggerCallback(
            tracking_uri=spec.mlflow,
            experiment_name=f"tuning-service/{job.name}",
            tags={"sweep_id": sweep_dir.name, "searcher": spec.searcher, "scheduler": spec.scheduler_name},
        )
    ]


def _stopper(prepared: PreparedSweep, spent: int = 0) -> Any:
    """Every trial stops at the epoch budget; the sweep stops at its total epoch budget
    (``spent``: epochs trained before a resume)."""
    from ray.tune.stopper import CombinedStopper

    from tuning_service.raytune.stoppers import EpochBudget, EpochCap

    per_trial = EpochCap(prepared.max_epochs)
    if prepared.spec.epoch_budget is None:
        return per_trial
    return CombinedStopper(per_trial, EpochBudget(prepared.spec.epoch_budget, spent=spent))


def _summarize(result: Any, job: Job, max_epochs: int) -> TrialSummary:
    """One Tune result -> the trial as the leaderboard shows it."""
    from tuning_service.raytune.resultrows import reported_rows

    metrics = result.metrics or {}
    rows = reported_rows(result)
    columns = dict.fromkeys(key for row in rows for key in row)  # in the order they first appear
    keep = [c for c in columns if c in (*_HISTORY_KEYS, job.metric) or c.startswith("val_")]
    history: list[dict[str, Any]] = []
    # A trial restored from a checkpoint, or restarted from scratch, reports an epoch again:
    # from there on only its latest run counts, whether it went as far as the earlier one or
    # not. A failed step trained nothing, and a replayed one repeats an epoch already there.
    for h in rows:
        if _present(h.get(ERROR_KEY)) or _present(h.get(REPLAYED_KEY)):
            continue
        epoch = int(h["training_iteration"])
        while history and int(history[-1]["training_iteration"]) >= epoch:
            history.pop()
        history.append({k: h.get(k, math.nan) for k in keep})  # a key a row lacks: NaN, as in a table
    finite = [
        h
        for h in history
        if not h.get(DIVERGED_KEY) and h.get(job.metric) is not None and math.isfinite(h[job.metric])
    ]
    best = (max if job.mode == "max" else min)(finite, key=lambda h: h[job.metric]) if finite else None
    error = classify_error(str(result.error)) if result.error is not None else metrics.get(ERROR_KEY)
    status = trial_status(metrics, max_epochs, result.config or {}, error=result.error is not None)
    if metrics.get(ERROR_KEY):
        epochs = int(metrics.get(EPOCH) or 0)  # the failing step trained nothing
    else:
        epochs = int(metrics.get("training_iteration", len(history)) or 0)
    return TrialSummary(
        trial_id=_trial_id(result),
        config=job.space.effective(result.config or {}),
        status=status,
        value=float(best[job.metric]) if best else None,
        best_epoch=int(best["training_iteration"]) if best else None,
        epochs=epochs,
        train_time_s=float(metrics.get(TRAIN_TIME) or 0.0),
        error=error,
        history=history,
    )


def _trial_id(result: Any) -> str:
    return str((result.metrics or {}).get("trial_id") or Path(result.path).name)


# The columns of a trial's per-epoch history kept in its summary (plus every `val_*`).
_HISTORY_KEYS = (
    "training_iteration",
    "loss",
    "val_loss",
    DIVERGED_KEY,
    TRAIN_TIME,
    # Model costs, where the sweep's objectives or constraints name them (see `objectives`).
    *COSTS,
    # Wall-clock end and length of each epoch: convergence and slot-usage plots.
    "timestamp",
    ENDED_AT,
    "time_this_iter_s",
)


def _present(value: Any) -> bool:
    """A value of a trial's reported row that holds something (absent keys read as NaN or None)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value is not False
