"""SweepRecording: one sweep's life in the store, from its RUNNING row to its final status."""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuning_service.core.errors import SweepStopped
from tuning_service.core.outcomes import DIVERGED_KEY, dropped_message
from tuning_service.core.results import DROPPED, ERRORED, TrialSummary, versions
from tuning_service.core.timestamps import iso_utc
from tuning_service.store.engine import StoreError
from tuning_service.store.records import EpochRow, Store, SweepRow, TrialRow
from tuning_service.store.schema import FAILED, FINISHED, INTERRUPTED

if TYPE_CHECKING:
    from tuning_service.core.job import Job
    from tuning_service.core.results import SweepResult
    from tuning_service.core.spec import SweepSpec

log = logging.getLogger(__name__)


def job_ref(ref: str) -> str:
    """The job as `run` was given it, with a file path made absolute so refit finds it later."""
    path, sep, attr = ref.partition(":")
    if path.endswith(".py") and os.path.isfile(path):
        return str(Path(path).absolute()) + sep + attr
    return ref


class SweepRecording:
    """Called by the runner: `start` once Ray is up (before any trial), `callback` for Tune,
    `finish` with the final results, `abort` when the sweep raised.
    """

    def __init__(
        self, store: Store, sweep_id: str, *, spec: SweepSpec, job: Job, max_epochs: int, sweep_dir: Path
    ) -> None:
        self.store, self.sweep_id, self.spec, self.job = store, sweep_id, spec, job
        self.max_epochs, self.sweep_dir = max_epochs, sweep_dir
        self.done = False
        self._callback: Any = None

    def start(self, cluster_address: str) -> None:
        # A resumed sweep finds its own row stale: that is expected, not news.
        stale = [s for s in self.store.cleanup_stale() if s != self.sweep_id]
        if stale:
            log.warning(
                "marked %d sweep(s) whose driver is gone as interrupted: %s", len(stale), ", ".join(stale)
            )
        from tuning_service.core.settings import recorded

        self.store.create_sweep(
            self.sweep_id,
            job=self.job.name,
            job_ref=job_ref(self.spec.job),
            metric=self.job.metric,
            mode=self.job.mode,
            searcher=self.spec.searcher,
            scheduler=self.spec.scheduler_name,
            seed=self.spec.seed,
            num_samples=self.spec.num_samples,
            max_epochs=self.max_epochs,
            space=self.job.space.to_dict(),
            spec=recorded(self.spec),  # the database URL is secret: it may hold a password
            versions=versions(),
            cluster_address=_with_gcs_address(cluster_address),
            sweep_dir=str(self.sweep_dir),
        )

    def callback(self) -> Any:
        """The Tune callback recording trials and epochs as they happen (imports Ray)."""
        from tuning_service.raytune.recorder import RecorderCallback

        self._callback = RecorderCallback(
            self.store,
            self.sweep_id,
            metric=self.job.metric,
            mode=self.job.mode,
            max_epochs=self.max_epochs,
            effective=self.job.space.effective,
        )
        return self._callback

    def with_dropped(self, result: SweepResult) -> SweepResult:
        """``result`` plus, as dropped, the recorded trials Ray Tune's results do not hold,
        so the sweep's files list every trial the store keeps. A store that cannot be read
        adds none (the reconciliation marks them all the same once it can write)."""
        known = {t.trial_id for t in result.trials}
        try:
            rows = [t for t in self.store.trials([self.sweep_id]) if t.trial_id not in known]
            epochs = self.store.epochs(self.sweep_id) if rows else []
        except StoreError as exc:
            log.warning("sweep %s: could not read its recorded trials (%s)", self.sweep_id, exc)
            return result
        if not rows:
            return result
        by_trial: dict[str, list[EpochRow]] = {}
        for epoch in epochs:
            by_trial.setdefault(epoch.trial_id, []).append(epoch)
        dropped = []
        for row in rows:
            summary = recorded_trial(row, by_trial.get(row.trial_id, []), result.metric)
            dropped.append(replace(summary, status=DROPPED, error=dropped_message(summary.epochs)))
        log.warning(
            "sweep %s: %d recorded trial(s) are not in Ray Tune's results and are kept as dropped: %s",
            self.sweep_id,
            len(dropped),
            ", ".join(t.trial_id for t in dropped),
        )
        return replace(result, trials=[*result.trials, *dropped])

    def exploits(self) -> list[dict[str, Any]]:
        """The sweep's recorded PBT exploits as plain data (none for other schedulers, or when
        the store cannot be read: lineage.json is then left out, the database keeps them)."""
        if self.spec.scheduler_name != "pbt":
            return []
        from tuning_service.core.lineage import exploit_dict

        try:
            return [exploit_dict(row) for row in self.store.exploits(self.sweep_id)]
        except StoreError as exc:
            log.warning("sweep %s: could not read its lineage (%s)", self.sweep_id, exc)
            return []

    def finish(self, result: SweepResult, *, failure: str | None = None) -> None:
        """Reconcile every trial and epoch with Tune's final results, then close the sweep
        (as failed, with ``failure`` as its message, when the sweep's files could not be written)."""
        missed = getattr(self._callback, "missed", 0)
        if missed:
            log.warning("sweep %s: %d live writes were skipped; recording them now", self.sweep_id, missed)
        self.store.record_result(result)
        if failure is not None:
            self.store.finish_sweep(self.sweep_id, FAILED, failure)
        elif result.best is None:
            counts = ", ".join(f"{n} {k}" for k, n in result.counts().items() if n)
            self.store.finish_sweep(
                self.sweep_id, FAILED, f"no trial finished with a valid {result.metric} ({counts})"
            )
        else:
            self.store.finish_sweep(self.sweep_id, FINISHED)
        self.done = True

    def abort(self, exc: BaseException) -> None:
        """Record why the sweep stopped; never hides the original error."""
        if self.done:
            return
        status = INTERRUPTED if isinstance(exc, KeyboardInterrupt | SweepStopped) else FAILED
        text = str(exc).strip().splitlines()
        message = f"{type(exc).__name__}: {text[-1] if text else ''}".rstrip(": ")
        try:
            self.store.finish_sweep(self.sweep_id, status, message[:2000])
        except StoreError as store_exc:
            log.warning("sweep %s: could not record its end (%s)", self.sweep_id, store_exc)
        self.done = True


def recorded_trial(trial: TrialRow, epochs: list[EpochRow], metric: str) -> TrialSummary:
    """A trial as `run_sweep` would have summarised it, from its recorded rows (``epochs`` in order)."""
    history = [
        {**e.metrics, "training_iteration": e.epoch, DIVERGED_KEY: e.diverged, metric: e.metrics.get(metric)}
        for e in epochs
    ]
    return TrialSummary(
        trial_id=trial.trial_id,
        config=dict(trial.config),
        status=trial.status,
        value=trial.value,
        best_epoch=trial.best_epoch,
        epochs=int(trial.epochs or 0),
        train_time_s=float(trial.train_time_s or 0.0),
        error=trial.message if trial.status == ERRORED else None,
        history=history,
    )


def recorded_result(store: Store, row: SweepRow) -> SweepResult:
    """A sweep as `run_sweep` returned it, read back from the results database.

    What a submitted or scheduled sweep's caller reads its result from: the sweep ran on a
    cluster, but recorded every trial and epoch in a database both sides reach.
    """
    from tuning_service.core.objectives import parsed
    from tuning_service.core.results import with_objectives

    by_trial: dict[str, list[EpochRow]] = {}
    for epoch in store.epochs(row.sweep_id):
        by_trial.setdefault(epoch.trial_id, []).append(epoch)
    trials = [
        recorded_trial(t, by_trial.get(t.trial_id, []), row.metric) for t in store.trials([row.sweep_id])
    ]
    spec = row.spec or {}
    objectives = [str(o) for o in spec.get("objectives") or ()]
    if len(objectives) > 1:
        chosen = parsed(objectives)
        trials = [with_objectives(t, chosen) for t in trials]
    return replace(
        sweep_result(row, trials),
        objectives=objectives,
        constraints=[str(c) for c in spec.get("constraints") or ()],
        pick=spec.get("pick"),
    )


def sweep_result(row: SweepRow, trials: list[TrialSummary]) -> SweepResult:
    """The recorded sweep ``row`` with ``trials`` as a SweepResult (a report's input)."""
    from tuning_service.core.results import SweepResult

    return SweepResult(
        sweep_id=row.sweep_id,
        job=row.job,
        metric=row.metric,
        mode=row.mode,
        searcher=row.searcher,
        scheduler=row.scheduler,
        seed=row.seed,
        sweep_dir=Path(row.sweep_dir or "."),
        trials=trials,
        wall_time_s=row.wall_time_s or 0.0,
        max_epochs=row.max_epochs or max((t.epochs for t in trials), default=1),
        space=dict(row.space or {}),
        started=iso_utc(row.started_at),
        ended=iso_utc(row.ended_at) if row.ended_at is not None else "",
    )


def _with_gcs_address(where: str) -> str:
    """``embedded local Ray`` says little a week later; add the address Ray actually used."""
    try:
        import ray

        gcs = ray.get_runtime_context().gcs_address if ray.is_initialized() else None
    except Exception:  # noqa: BLE001 - the address is a nicety, never a reason to fail a sweep
        gcs = None
    return f"{where} ({gcs})" if gcs and gcs not in where else where
