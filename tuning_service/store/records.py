"""Store: idempotent writes and the queries behind results, export, compare and refit."""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from tuning_service.core import processes
from tuning_service.core.errors import InputError
from tuning_service.core.outcomes import dropped_message, outcome_message
from tuning_service.core.registry import did_you_mean
from tuning_service.core.results import DROPPED
from tuning_service.store import schema, statements
from tuning_service.store.engine import (
    DB_ENV,
    check_reachable,
    create_engine,
    dialect_insert,
    parse_url,
    redact,
    resolve_url,
    retrying,
    sqlite_path,
    transaction,
)
from tuning_service.store.schema import FAILED, FINISHED, INTERRUPTED, RUNNING, utcnow

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

    from tuning_service.core.results import SweepResult

T = TypeVar("T")
# A RUNNING sweep whose driver has not written for this long is taken as dead.
STALE_AFTER_S = 600.0
# Statuses of trials that finished with a usable metric (ranked on leaderboards).
RANKED = ("completed", "stopped early")
SWEEP_STATUSES = (RUNNING, FINISHED, FAILED, INTERRUPTED)


@dataclass(frozen=True)
class SweepRow:
    """One recorded sweep."""

    sweep_id: str
    job: str
    job_ref: str
    metric: str
    mode: str
    searcher: str
    scheduler: str
    seed: int
    num_samples: int | None
    max_epochs: int | None
    space: dict[str, Any]
    spec: dict[str, Any]
    cluster_address: str | None
    sweep_dir: str | None
    host: str | None
    pid: int | None
    driver: dict[str, Any] | None  # see processes.identity
    versions: dict[str, str]
    status: str
    message: str | None
    started_at: datetime
    ended_at: datetime | None
    heartbeat_at: datetime | None

    @property
    def wall_time_s(self) -> float | None:
        end = self.ended_at or (self.heartbeat_at if self.status != RUNNING else None)
        return (end - self.started_at).total_seconds() if end else None


@dataclass(frozen=True)
class TrialRow:
    """One trial of a sweep: its config, outcome and where it ran."""

    sweep_id: str
    trial_id: str
    config: dict[str, Any]
    status: str
    message: str | None
    value: float | None
    best_epoch: int | None
    epochs: int
    train_time_s: float | None
    duration_s: float | None
    node_ip: str | None
    node_id: str | None
    hostname: str | None
    checkpoint: str | None
    started_at: datetime | None
    ended_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class EpochRow:
    """One epoch's report: the sweep's metric and every number Keras logged."""

    sweep_id: str
    trial_id: str
    epoch: int
    value: float | None
    diverged: bool
    metrics: dict[str, Any]
    recorded_at: datetime


@dataclass(frozen=True)
class RefitRow:
    """A best config retrained on train + validation and scored on the test split."""

    sweep_id: str
    trial_id: str
    config: dict[str, Any]
    epochs: int
    train_rows: int
    test_rows: int
    test_metric: str
    test_value: float | None
    test_metrics: dict[str, Any]
    model_path: str
    duration_s: float
    versions: dict[str, str]
    created_at: datetime


@dataclass(frozen=True)
class ExploitRow:
    """A PBT exploit: trial ``trial_id`` replaced its state after epoch ``epoch`` by a copy of
    ``donor_id``'s checkpoint of epoch ``donor_epoch`` and trains on with ``changes``
    (``{param: {"old": ..., "donor": ..., "new": ...}}``)."""

    sweep_id: str
    number: int
    trial_id: str
    epoch: int
    value: float | None
    donor_id: str
    donor_epoch: int
    donor_value: float | None
    changes: dict[str, Any]
    recorded_at: datetime


@dataclass
class Store:
    """A results database. Every write is one short transaction and an upsert on its natural key
    ((sweep), (sweep, trial), (sweep, trial, epoch)), retried on locks, deadlocks and lost
    connections, so replaying any write, from a retry or a resumed sweep, changes nothing.
    """

    url: URL
    engine: sa.engine.Engine = field(repr=False)

    @property
    def display_url(self) -> str:
        return redact(self.url)

    @property
    def full_url(self) -> str:
        """The URL with its password: what a callback needs to reopen the store elsewhere."""
        return self.url.render_as_string(hide_password=False)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------

    def _write(self, what: str, work: Callable[[Connection], T]) -> T:
        return transaction(self.engine, work, what=what)

    def _read(self, work: Callable[[Connection], T]) -> T:
        return transaction(self.engine, work, what="reading", readonly=True)

    def _upsert(self, what: str, table: sa.Table, values: Mapping[str, Any], key: tuple[str, ...]) -> None:
        """Insert ``values`` into ``table``, or replace the row with the same ``key`` columns."""

        def work(conn: Connection) -> None:
            stmt = dialect_insert(conn, table).values(dict(values))
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=list(key), set_={k: stmt.excluded[k] for k in values if k not in key}
                )
            )

        self._write(what, work)

    # -- writes ---------------------------------------------------------------------------

    def create_sweep(
        self,
        sweep_id: str,
        *,
        job: str,
        job_ref: str,
        metric: str,
        mode: str,
        searcher: str,
        scheduler: str,
        seed: int,
        space: Mapping[str, Any],
        spec: Mapping[str, Any],
        versions: Mapping[str, str],
        num_samples: int | None = None,
        max_epochs: int | None = None,
        cluster_address: str | None = None,
        sweep_dir: str | None = None,
        started_at: datetime | None = None,
    ) -> None:
        """Record a sweep as RUNNING before its first trial starts (again: marks it RUNNING anew)."""
        now = utcnow()
        values = {
            "sweep_id": sweep_id,
            "job": job,
            "job_ref": job_ref,
            "metric": metric,
            "mode": mode,
            "searcher": searcher,
            "scheduler": scheduler,
            "seed": seed,
            "num_samples": num_samples,
            "max_epochs": max_epochs,
            "space": dict(space),
            "spec": dict(spec),
            "cluster_address": cluster_address,
            "sweep_dir": sweep_dir,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "driver": processes.identity(),
            "versions": dict(versions),
            "status": RUNNING,
            "message": None,
            "started_at": started_at or now,
            "ended_at": None,
            "heartbeat_at": now,
        }

        def work(conn: Connection) -> None:
            stmt = dialect_insert(conn, schema.sweeps).values(values)
            keep = ("sweep_id", "started_at")
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["sweep_id"],
                    set_={k: stmt.excluded[k] for k in values if k not in keep},
                )
            )

        self._write(f"recording sweep {sweep_id}", work)

    def set_cluster_address(self, sweep_id: str, address: str) -> None:
        self._update_sweep(sweep_id, cluster_address=address)

    def heartbeat(self, sweep_id: str) -> None:
        """Say the driver is alive; `cleanup_stale` marks sweeps without one as interrupted.

        A sweep marked interrupted while its driver lived on (its heartbeats missed during a
        database outage) is running again, with its trials, as soon as a heartbeat gets through.
        """
        s, t = schema.sweeps, schema.trials
        now = utcnow()

        def work(conn: Connection) -> None:
            conn.execute(sa.update(s).where(s.c.sweep_id == sweep_id).values(heartbeat_at=now))
            revived = conn.execute(
                sa.update(s)
                .where(
                    s.c.sweep_id == sweep_id,
                    s.c.status == INTERRUPTED,
                    s.c.host == socket.gethostname(),
                    s.c.pid == os.getpid(),
                )
                .values(status=RUNNING, ended_at=None, message=None)
                .returning(s.c.sweep_id)
            ).first()
            if revived is not None:
                conn.execute(
                    sa.update(t)
                    .where(t.c.sweep_id == sweep_id, t.c.status == INTERRUPTED)
                    .values(status=RUNNING, updated_at=now)
                )

        self._write(f"recording a heartbeat of sweep {sweep_id}", work)

    def finish_sweep(self, sweep_id: str, status: str, message: str | None = None) -> None:
        if status not in SWEEP_STATUSES:
            raise ValueError(f"sweep status must be one of {SWEEP_STATUSES}, got {status!r}")
        now = utcnow()
        self._update_sweep(sweep_id, status=status, message=message, ended_at=now, heartbeat_at=now)

    def _update_sweep(self, sweep_id: str, **values: Any) -> None:
        def work(conn: Connection) -> None:
            conn.execute(
                sa.update(schema.sweeps).where(schema.sweeps.c.sweep_id == sweep_id).values(**values)
            )

        self._write(f"updating sweep {sweep_id}", work)

    def _hold_trial(self, conn: Connection, sweep_id: str, trial_id: str, config: Any, now: datetime) -> None:
        """Create the trial's row if absent and lock it until the transaction ends.

        On PostgreSQL (read committed) the lock is what keeps a trial's summary exact: a
        writer of the same trial waits here, and its later statements then see every epoch
        the other committed. DO NOTHING would not wait, and an UPDATE that waits later still
        computes its summary from a snapshot taken before the other writer committed.
        """
        conn.execute(
            statements.hold_trial(conn.dialect.name),
            statements.bound(sweep_id=sweep_id, trial_id=trial_id, config=dict(config or {}), updated_at=now),
        )

    def start_trial(
        self, sweep_id: str, trial_id: str, config: Mapping[str, Any], *, started_at: datetime | None = None
    ) -> None:
        """A trial was started (or restarted after a pause or a failure): it is RUNNING."""
        now = utcnow()
        params = statements.bound(
            sweep_id=sweep_id,
            trial_id=trial_id,
            config=dict(config),
            started_at=started_at or now,
            updated_at=now,
        )

        def work(conn: Connection) -> None:
            conn.execute(statements.start_trial(conn.dialect.name), params)

        self._write(f"recording trial {trial_id}", work)

    def record_epoch(
        self,
        sweep_id: str,
        trial_id: str,
        epoch: int,
        *,
        mode: str,
        value: float | None,
        diverged: bool = False,
        metrics: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        node: Mapping[str, str | None] | None = None,
        train_time_s: float | None = None,
        duration_s: float | None = None,
        restarted: bool = False,
    ) -> None:
        """Upsert one epoch and refresh its trial's best value, best epoch and epoch count.

        The trial's summary is recomputed from its epoch rows in the same transaction,
        so replaying an epoch (a trial restored from a checkpoint) leaves it exact.
        ``restarted``: the trial's first epoch since it (re)started, from a checkpoint or from
        scratch; rows after this epoch belong to a run it no longer continues and are deleted.
        """
        now = utcnow()
        if diverged or not _is_number(value):
            value = None
        extras: dict[str, Any] = {
            key: str(new)
            for key, new in (node or {}).items()
            if new and key in ("node_ip", "node_id", "hostname")
        }
        if train_time_s is not None:
            extras["train_time_s"] = float(train_time_s)
        if duration_s is not None:
            extras["duration_s"] = float(duration_s)
        if config:
            extras["config"] = dict(config)
        params = statements.bound(
            sweep_id=sweep_id,
            trial_id=trial_id,
            epoch=int(epoch),
            value=value,
            diverged=bool(diverged),
            metrics=dict(metrics or {}),
            recorded_at=now,
            updated_at=now,
            **extras,
        )

        def work(conn: Connection) -> None:
            self._hold_trial(conn, sweep_id, trial_id, config, now)
            if restarted:
                conn.execute(statements.drop_epochs_after(), params)
            conn.execute(statements.upsert_epoch(conn.dialect.name), params)
            conn.execute(statements.refresh_trial(mode, tuple(sorted(extras))), params)

        self._write(f"recording epoch {epoch} of trial {trial_id}", work)

    def record_checkpoint(self, sweep_id: str, trial_id: str, path: str) -> None:
        params = statements.bound(sweep_id=sweep_id, trial_id=trial_id, checkpoint=path, updated_at=utcnow())

        def work(conn: Connection) -> None:
            conn.execute(statements.set_checkpoint(), params)

        self._write(f"recording the checkpoint of trial {trial_id}", work)

    def finish_trial(
        self,
        sweep_id: str,
        trial_id: str,
        status: str,
        *,
        message: str | None = None,
        config: Mapping[str, Any] | None = None,
        duration_s: float | None = None,
        checkpoint: str | None = None,
    ) -> None:
        """Record a trial's outcome (completed, stopped early, diverged, errored)."""
        now = utcnow()
        extras: dict[str, Any] = {}
        if duration_s is not None:
            extras["duration_s"] = float(duration_s)
        if checkpoint:
            extras["checkpoint"] = checkpoint
        if config:
            extras["config"] = dict(config)
        params = statements.bound(
            sweep_id=sweep_id,
            trial_id=trial_id,
            status=status,
            message=message,
            ended_at=now,
            updated_at=now,
            **extras,
        )

        def work(conn: Connection) -> None:
            self._hold_trial(conn, sweep_id, trial_id, config, now)
            conn.execute(statements.finish_trial(tuple(sorted(extras))), params)

        self._write(f"recording the end of trial {trial_id}", work)

    def record_result(self, result: SweepResult, *, diverged_key: str = "diverged") -> None:
        """Reconcile with the sweep's final results: every trial's outcome, and any epoch the
        live recorder missed. Rows past a trial's last epoch are from a run it restarted from an
        earlier point and are deleted. A recorded trial the results do not hold is marked
        dropped, never deleted.
        """
        now = utcnow()
        t = schema.trials
        sweep_id = result.sweep_id

        def work(conn: Connection) -> None:
            for trial in result.trials:
                self._hold_trial(conn, sweep_id, trial.trial_id, trial.config, now)
                conn.execute(
                    statements.drop_epochs_after(),
                    statements.bound(sweep_id=sweep_id, trial_id=trial.trial_id, epoch=trial.epochs),
                )
                last = trial.history[-1] if trial.history else {}
                # The live recorder saw more (patience vs scheduler): keep its message if any.
                message = trial.error or sa.func.coalesce(
                    t.c.message, outcome_message(trial.status, last, result.max_epochs)
                )
                conn.execute(
                    sa.update(t)
                    .where(t.c.sweep_id == sweep_id, t.c.trial_id == trial.trial_id)
                    .values(
                        config=dict(trial.config),
                        status=trial.status,
                        message=message,
                        value=trial.value,
                        best_epoch=trial.best_epoch,
                        epochs=trial.epochs,
                        train_time_s=trial.train_time_s,
                        ended_at=sa.func.coalesce(t.c.ended_at, now),
                        updated_at=now,
                    )
                )
                rows = []
                for h in trial.history:
                    epoch = h.get("training_iteration")
                    if epoch is None:
                        continue
                    diverged = bool(h.get(diverged_key))
                    raw = h.get(result.metric)
                    metrics = {k: v for k, v in h.items() if k != "training_iteration" and _is_number(v)}
                    rows.append(
                        {
                            "sweep_id": sweep_id,
                            "trial_id": trial.trial_id,
                            "epoch": int(epoch),
                            "value": None if diverged or not _is_number(raw) else float(raw),  # type: ignore[arg-type]
                            "diverged": diverged,
                            "metrics": metrics,
                            "recorded_at": now,
                        }
                    )
                if rows:
                    conn.execute(_fill_epochs(conn), rows)
            # Trials the results leave out (no epoch reported, or started after the snapshot a
            # resume started from) were seen all the same: kept as dropped, with their epochs.
            known = [trial.trial_id for trial in result.trials]
            unknown = conn.execute(
                sa.select(t.c.trial_id, t.c.epochs).where(
                    t.c.sweep_id == sweep_id, t.c.trial_id.not_in(known), t.c.status != DROPPED
                )
            ).all()
            for trial_id, epochs in unknown:
                conn.execute(
                    sa.update(t)
                    .where(t.c.sweep_id == sweep_id, t.c.trial_id == trial_id)
                    .values(
                        status=DROPPED,
                        message=dropped_message(int(epochs or 0)),
                        ended_at=sa.func.coalesce(t.c.ended_at, now),
                        updated_at=now,
                    )
                )

        self._write(f"recording the results of sweep {sweep_id}", work)

    def record_refit(
        self,
        sweep_id: str,
        trial_id: str,
        *,
        config: Mapping[str, Any],
        epochs: int,
        train_rows: int,
        test_rows: int,
        test_metric: str,
        test_value: float | None,
        test_metrics: Mapping[str, Any],
        model_path: str,
        duration_s: float,
        versions: Mapping[str, str],
    ) -> None:
        values = {
            "sweep_id": sweep_id,
            "trial_id": trial_id,
            "config": dict(config),
            "epochs": epochs,
            "train_rows": train_rows,
            "test_rows": test_rows,
            "test_metric": test_metric,
            "test_value": test_value,
            "test_metrics": dict(test_metrics),
            "model_path": model_path,
            "duration_s": duration_s,
            "versions": dict(versions),
            "created_at": utcnow(),
        }

        self._upsert(
            f"recording the refit of sweep {sweep_id}", schema.refits, values, ("sweep_id", "trial_id")
        )

    def cleanup_stale(self, *, stale_after_s: float = STALE_AFTER_S) -> list[str]:
        """Mark RUNNING sweeps whose driver is gone as interrupted, with their running trials.

        Gone: a driver of this machine (and pid namespace) whose process no longer exists, or
        any driver that has not written a heartbeat for ``stale_after_s``.
        """
        s, t = schema.sweeps, schema.trials
        now = utcnow()

        def work(conn: Connection) -> list[str]:
            rows = conn.execute(
                sa.select(
                    s.c.sweep_id, s.c.host, s.c.pid, s.c.driver, s.c.heartbeat_at, s.c.started_at
                ).where(s.c.status == RUNNING)
            ).all()
            stale = []
            for row in rows:
                beat = row.heartbeat_at or row.started_at
                dead = processes.state(row.host, row.pid, row.driver) == processes.GONE
                if dead or now - beat > timedelta(seconds=stale_after_s):
                    stale.append((row.sweep_id, beat, dead))
            for sweep_id, beat, dead in stale:
                why = "its driver process is gone" if dead else "no heartbeat"
                conn.execute(
                    sa.update(s)
                    .where(s.c.sweep_id == sweep_id, s.c.status == RUNNING)
                    .values(
                        status=INTERRUPTED,
                        ended_at=beat,
                        message=f"driver stopped without finishing ({why}; last heard of {beat:%Y-%m-%d %H:%M:%S} UTC)",
                    )
                )
                conn.execute(
                    sa.update(t)
                    .where(t.c.sweep_id == sweep_id, t.c.status == RUNNING)
                    .values(status=INTERRUPTED, updated_at=now)
                )
            return [sweep_id for sweep_id, _, _ in stale]

        return self._write("cleaning up stale sweeps", work)

    # -- reads ----------------------------------------------------------------------------

    def sweeps(self, *, job: str | None = None, ids: Sequence[str] | None = None) -> list[SweepRow]:
        """Recorded sweeps, newest first."""
        s = schema.sweeps
        query = sa.select(s).order_by(s.c.started_at.desc(), s.c.sweep_id.desc())
        if job is not None:
            query = query.where(s.c.job == job)
        if ids is not None:
            query = query.where(s.c.sweep_id.in_(list(ids)))
        return self._read(lambda conn: [SweepRow(**r._mapping) for r in conn.execute(query)])

    def jobs(self) -> list[str]:
        s = schema.sweeps
        return self._read(
            lambda conn: list(conn.execute(sa.select(s.c.job).distinct().order_by(s.c.job)).scalars())
        )

    def find_sweep(self, ref: str) -> SweepRow:
        """A sweep by id or unique id prefix; InputError naming the recorded ones otherwise."""
        s = schema.sweeps

        def work(conn: Connection) -> list[SweepRow]:
            exact = conn.execute(sa.select(s).where(s.c.sweep_id == ref)).all()
            if exact:
                return [SweepRow(**exact[0]._mapping)]
            like = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            rows = conn.execute(
                sa.select(s).where(s.c.sweep_id.like(like, escape="\\")).order_by(s.c.sweep_id).limit(6)
            ).all()
            return [SweepRow(**r._mapping) for r in rows]

        found = self._read(work)
        if len(found) == 1:
            return found[0]
        if found:
            raise InputError(
                f"sweep {ref!r} is ambiguous; it starts {len(found)}{'+' if len(found) > 5 else ''} sweep ids: "
                f"{', '.join(r.sweep_id for r in found[:5])}"
            )
        recent = [r.sweep_id for r in self.sweeps()[:5]]
        known = f"; recent sweeps: {', '.join(recent)}" if recent else "; no sweep is recorded yet"
        raise InputError(f"unknown sweep {ref!r} in {self.display_url}{known}")

    def check_job(self, job: str) -> None:
        """InputError unless ``job`` has at least one recorded sweep."""
        jobs = self.jobs()
        if job not in jobs:
            known = f"recorded jobs: {', '.join(jobs)}" if jobs else "no sweep is recorded yet"
            raise InputError(
                f"no sweep of job {job!r} in {self.display_url}; {known}{did_you_mean(job, jobs)}"
            )

    def trials(self, sweep_ids: Iterable[str]) -> list[TrialRow]:
        t = schema.trials
        query = sa.select(t).where(t.c.sweep_id.in_(list(sweep_ids))).order_by(t.c.sweep_id, t.c.trial_id)
        return self._read(lambda conn: [TrialRow(**r._mapping) for r in conn.execute(query)])

    def epochs(self, sweep_id: str, trial_id: str | None = None) -> list[EpochRow]:
        e = schema.epochs
        query = sa.select(e).where(e.c.sweep_id == sweep_id).order_by(e.c.trial_id, e.c.epoch)
        if trial_id is not None:
            query = query.where(e.c.trial_id == trial_id)
        return self._read(lambda conn: [EpochRow(**r._mapping) for r in conn.execute(query)])

    def best_epoch_metrics(self, sweep_id: str) -> dict[str, dict[str, Any]]:
        """Each trial's metrics at its best epoch, joined by the database: one row per trial."""
        e, t = schema.epochs, schema.trials
        query = sa.select(e.c.trial_id, e.c.metrics).join(
            t,
            sa.and_(t.c.sweep_id == e.c.sweep_id, t.c.trial_id == e.c.trial_id, t.c.best_epoch == e.c.epoch),
        )
        query = query.where(e.c.sweep_id == sweep_id)
        return self._read(lambda conn: {r.trial_id: dict(r.metrics) for r in conn.execute(query)})

    def epoch_counts(self, sweep_ids: Iterable[str]) -> dict[str, int]:
        e = schema.epochs
        query = (
            sa.select(e.c.sweep_id, sa.func.count())
            .where(e.c.sweep_id.in_(list(sweep_ids)))
            .group_by(e.c.sweep_id)
        )
        return self._read(lambda conn: {r[0]: int(r[1]) for r in conn.execute(query)})

    def trial_counts(self, sweep_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        """Trials per sweep and status, counted by the database (no trial row is loaded)."""
        t = schema.trials
        query = (
            sa.select(t.c.sweep_id, t.c.status, sa.func.count())
            .where(t.c.sweep_id.in_(list(sweep_ids)))
            .group_by(t.c.sweep_id, t.c.status)
        )

        def work(conn: Connection) -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {}
            for sweep_id, status, count in conn.execute(query):
                out.setdefault(sweep_id, {})[status] = int(count)
            return out

        return self._read(work)

    def best_trials(self, sweep_ids: Iterable[str]) -> dict[str, TrialRow]:
        """Each sweep's best ranked trial by the sweep's own metric and mode (a tie: the lowest
        trial id), picked by the database: one row per sweep leaves it."""
        s, t = schema.sweeps, schema.trials
        signed = sa.case((s.c.mode == "max", -t.c.value), else_=t.c.value)
        place = sa.func.row_number().over(partition_by=t.c.sweep_id, order_by=(signed, t.c.trial_id))
        ranked = (
            sa.select(t, place.label("place"))
            .join(s, s.c.sweep_id == t.c.sweep_id)
            .where(t.c.sweep_id.in_(list(sweep_ids)), t.c.status.in_(RANKED), t.c.value.is_not(None))
            .subquery()
        )
        query = sa.select(*[ranked.c[c.name] for c in t.c]).where(ranked.c.place == 1)
        return self._read(lambda conn: {r.sweep_id: TrialRow(**r._mapping) for r in conn.execute(query)})

    def top_trials(
        self, job: str, *, metric: str, mode: str, limit: int | None = None, sweep_id: str | None = None
    ) -> list[tuple[TrialRow, SweepRow]]:
        """The best finished trials of ``job`` across its sweeps measured by ``metric``, best first."""
        s, t = schema.sweeps, schema.trials
        order = t.c.value.desc() if mode == "max" else t.c.value.asc()
        query = (
            sa.select(t, *[c.label(f"sweep__{c.name}") for c in s.c])
            .join(s, s.c.sweep_id == t.c.sweep_id)
            .where(s.c.job == job, s.c.metric == metric, s.c.mode == mode)
            .where(t.c.status.in_(RANKED), t.c.value.is_not(None))
            .order_by(order, t.c.ended_at.asc(), t.c.sweep_id, t.c.trial_id)
        )
        if sweep_id is not None:
            query = query.where(t.c.sweep_id == sweep_id)
        if limit is not None:
            query = query.limit(limit)

        def work(conn: Connection) -> list[tuple[TrialRow, SweepRow]]:
            out = []
            for row in conn.execute(query):
                m = row._mapping
                trial = TrialRow(**{c.name: m[c.name] for c in t.c})
                sweep = SweepRow(**{c.name: m[f"sweep__{c.name}"] for c in s.c})
                out.append((trial, sweep))
            return out

        return self._read(work)

    def refits(self, sweep_ids: Iterable[str]) -> list[RefitRow]:
        r = schema.refits
        query = sa.select(r).where(r.c.sweep_id.in_(list(sweep_ids))).order_by(r.c.created_at)
        return self._read(lambda conn: [RefitRow(**row._mapping) for row in conn.execute(query)])

    def record_exploit(self, sweep_id: str, exploit: Mapping[str, Any]) -> None:
        """Upsert exploit number ``exploit["number"]`` of the sweep (a resumed scheduler that
        renumbers from its snapshot replaces the exploits the interrupted driver made after it)."""
        fields = ("trial_id", "epoch", "value", "donor_id", "donor_epoch", "donor_value", "changes")
        values: dict[str, Any] = {
            "sweep_id": sweep_id,
            "number": int(exploit["number"]),
            **{k: exploit.get(k) for k in fields},
            "recorded_at": utcnow(),
        }
        for key in ("value", "donor_value"):
            values[key] = float(values[key]) if _is_number(values[key]) else None

        self._upsert(
            f"recording exploit {values['number']} of sweep {sweep_id}",
            schema.exploits,
            values,
            ("sweep_id", "number"),
        )

    def exploits(self, sweep_id: str) -> list[ExploitRow]:
        """A sweep's exploits in the order they happened (none unless it ran under PBT)."""
        x = schema.exploits
        query = sa.select(x).where(x.c.sweep_id == sweep_id).order_by(x.c.number)
        return self._read(lambda conn: [ExploitRow(**row._mapping) for row in conn.execute(query)])


def _fill_epochs(conn: Connection) -> Any:
    """Insert the epochs the live recorder missed; rewrite one it recorded only where the results
    disagree with it (a run the trial restarted from an earlier point, while recording failed).
    Where they agree the live row stays: it holds every metric, the results only some."""
    e = schema.epochs
    stmt = dialect_insert(conn, e)
    new = stmt.excluded
    disagree = sa.or_(
        e.c.diverged != new.diverged,
        e.c.value.is_(None) != new.value.is_(None),
        sa.func.abs(e.c.value - new.value) > 1e-9 * (1 + sa.func.abs(new.value)),
    )
    return stmt.on_conflict_do_update(
        index_elements=["sweep_id", "trial_id", "epoch"],
        set_={k: new[k] for k in ("value", "diverged", "metrics", "recorded_at")},
        where=disagree,
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def open_store(
    db: str | None = None, *, storage: str | os.PathLike[str] | None = None, must_exist: bool = False
) -> Store:
    """Open (and create or upgrade) the results database.

    ``db`` is a URL; without one, $TUNING_SERVICE_DB, then ``<storage>/tuning.db``.
    ``must_exist`` is for commands that only read: they never create a database, and
    report a missing one as bad input.
    """
    from tuning_service.core.spec import DEFAULT_STORAGE
    from tuning_service.store.migrate import stored_revision, upgrade

    url = parse_url(resolve_url(db, storage if storage is not None else DEFAULT_STORAGE))
    check_reachable(url, must_exist=must_exist)
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    try:
        if must_exist:
            if stored_revision(engine) is None:
                raise InputError(
                    f"database {redact(url)!r} holds no tuning-service results yet; run a sweep with "
                    f"--db (or {DB_ENV}) pointing at it"
                )
        retrying(lambda: upgrade(engine), what="upgrading the schema")
    except BaseException:
        engine.dispose()
        raise
    return Store(url, engine)
