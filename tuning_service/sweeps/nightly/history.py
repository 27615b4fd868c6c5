"""Scheduled runs and sweep locks in the results database: who runs what, when, and how it went."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from tuning_service.core import processes
from tuning_service.store.engine import StoreError, dialect_insert, transaction
from tuning_service.store.scheduletables import (
    FAILED,
    FINISHED,
    INTERRUPTED,
    RUNNING,
    SKIPPED,
    schedule_locks,
    schedule_runs,
)
from tuning_service.store.schema import UTCDateTime, utcnow

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from tuning_service.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")
# Insert-or-lock rounds before start_run gives up on a lock that keeps being taken and released.
_LOCK_ATTEMPTS = 5


@dataclass(frozen=True)
class RunRow:
    """One scheduled run of a named sweep, as recorded."""

    run_id: int
    name: str
    job: str
    scheduled_for: datetime
    trigger: str
    status: str
    message: str | None
    sweep_id: str | None
    submission_id: str | None
    warm_start: int
    metric: str | None
    mode: str | None
    best_value: float | None
    change: dict[str, Any] | None
    host: str | None
    pid: int | None
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class LockRow:
    """Who holds a sweep's lock, and until when unless renewed."""

    name: str
    owner: str
    host: str
    pid: int
    run_id: int | None
    acquired_at: datetime
    expires_at: datetime
    process: dict[str, Any] | None = None  # processes.identity() of its scheduler


@dataclass(frozen=True)
class Started:
    """The lock is ours and the run is recorded as running."""

    run: RunRow
    lock: SweepLock
    took_over: LockRow | None  # a stale lock this run replaced


@dataclass(frozen=True)
class Skipped:
    """Another run held the lock; this one is recorded as skipped."""

    run: RunRow
    holder: LockRow


def _write(store: Store, what: str, work: Callable[[Connection], T]) -> T:
    # SQLite: BEGIN IMMEDIATE, so check-then-write is atomic.
    return transaction(store.engine, work, what=what)


def _read(store: Store, work: Callable[[Connection], T]) -> T:
    return transaction(store.engine, work, what="reading scheduled runs", readonly=True)


def is_stale(lock: LockRow, now: datetime) -> str | None:
    """Why ``lock`` no longer protects a live run, or None while it does.

    Expired: its scheduler stopped renewing it. Dead: it was taken on this machine (and pid
    namespace: not a container with the same host name) by a process that no longer exists
    (a killed scheduler), so nobody has to wait out the expiry.
    """
    if lock.expires_at <= now:
        return f"expired at {lock.expires_at:%Y-%m-%d %H:%M:%S} UTC"
    if processes.state(lock.host, lock.pid, lock.process) == processes.GONE:
        return f"its scheduler (pid {lock.pid}) is gone"
    return None


# -- reads -------------------------------------------------------------------------------------


def runs(store: Store, name: str | None = None, *, statuses: tuple[str, ...] | None = None) -> list[RunRow]:
    """Recorded runs, newest first (by scheduled time, then by start)."""
    r = schedule_runs
    query = sa.select(r).order_by(r.c.scheduled_for.desc(), r.c.run_id.desc())
    if name is not None:
        query = query.where(r.c.name == name)
    if statuses is not None:
        query = query.where(r.c.status.in_(statuses))
    return _read(store, lambda conn: [RunRow(**row._mapping) for row in conn.execute(query)])


def last_scheduled(store: Store, name: str) -> datetime | None:
    """The newest scheduled time any run of ``name`` answered (run, failed or skipped)."""
    r = schedule_runs
    query = sa.select(sa.func.max(r.c.scheduled_for)).where(r.c.name == name)
    value = _read(store, lambda conn: conn.execute(query).scalar())
    return UTCDateTime().process_result_value(value, None) if value else None


def lock_holder(store: Store, name: str) -> LockRow | None:
    query = sa.select(schedule_locks).where(schedule_locks.c.name == name)
    row = _read(store, lambda conn: conn.execute(query).first())
    return LockRow(**row._mapping) if row is not None else None


# -- writes ------------------------------------------------------------------------------------


def start_run(
    store: Store,
    name: str,
    *,
    job: str,
    scheduled_for: datetime,
    trigger: str,
    ttl_s: float,
) -> Started | Skipped:
    """Take ``name``'s lock and record a running run, or record a skipped one; one transaction.

    A stale lock (see `is_stale`) is taken over, and the run it protected is marked
    interrupted.
    """
    lock = SweepLock(store, name, ttl_s)
    locks, r = schedule_locks, schedule_runs

    def work(conn: Connection) -> Started | Skipped:
        now = utcnow()
        values = lock.row_values(now)
        holder = _insert_or_hold(conn, values)
        took_over = None
        if holder is not None:
            if holder.owner == lock.owner and holder.run_id is not None:
                # This very call, replayed after its commit's acknowledgement was lost: the
                # lock and the run are ours already.
                return Started(_run(conn, holder.run_id), lock, None)
            why = is_stale(holder, now)
            if why is None:
                message = (
                    f"skipped: the run started {holder.acquired_at:%Y-%m-%d %H:%M:%S} UTC "
                    f"(run {holder.run_id}, {holder.host} pid {holder.pid}) still holds the lock"
                )
                run_id = _insert_run(
                    conn, name, job, scheduled_for, trigger, SKIPPED, now, message, ended=True
                )
                return Skipped(_run(conn, run_id), holder)
            conn.execute(
                sa.update(locks).where(locks.c.name == name, locks.c.owner == holder.owner).values(values)
            )
            took_over = holder
            if holder.run_id is not None:
                conn.execute(
                    sa.update(r)
                    .where(r.c.run_id == holder.run_id, r.c.status == RUNNING)
                    .values(
                        status=INTERRUPTED, ended_at=now, message=f"interrupted: its lock went stale ({why})"
                    )
                )
        run_id = _insert_run(conn, name, job, scheduled_for, trigger, RUNNING, now, None, ended=False)
        conn.execute(sa.update(locks).where(locks.c.name == name).values(run_id=run_id))
        return Started(_run(conn, run_id), lock, took_over)

    outcome = _write(store, f"starting a run of {name}", work)
    if isinstance(outcome, Started) and outcome.took_over is not None:
        holder = outcome.took_over
        log.warning(
            "%s: took over a stale lock of %s pid %d (run %s, %s)",
            name,
            holder.host,
            holder.pid,
            holder.run_id,
            is_stale(holder, utcnow()) or "expired",
        )
    return outcome


def _insert_or_hold(conn: Connection, values: dict[str, Any]) -> LockRow | None:
    """Insert the lock row (None: it is ours now) or lock the holder's row and return it.

    Between a conflicting insert and the SELECT ... FOR UPDATE the holder may release the
    lock (PostgreSQL reads each statement afresh): then the insert is tried again.
    """
    locks = schedule_locks
    for _ in range(_LOCK_ATTEMPTS):
        # RETURNING, not rowcount: drivers do not all count a row ON CONFLICT DO NOTHING skipped.
        inserted = conn.execute(
            dialect_insert(conn, locks)
            .values(values)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(locks.c.name)
        ).first()
        if inserted is not None:
            return None
        row = conn.execute(sa.select(locks).where(locks.c.name == values["name"]).with_for_update()).first()
        if row is not None:
            return LockRow(**row._mapping)
    raise StoreError(
        f"results database: the lock of {values['name']} changed hands {_LOCK_ATTEMPTS} times in a row; try again"
    )


def _insert_run(
    conn: Connection,
    name: str,
    job: str,
    scheduled_for: datetime,
    trigger: str,
    status: str,
    now: datetime,
    message: str | None,
    *,
    ended: bool,
) -> int:
    result = conn.execute(
        sa.insert(schedule_runs).values(
            name=name,
            job=job,
            scheduled_for=scheduled_for,
            trigger=trigger,
            status=status,
            message=message,
            warm_start=0,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=now,
            ended_at=now if ended else None,
        )
    )
    key = result.inserted_primary_key
    if key is None:
        raise StoreError(f"the database returned no id for the run of {name!r}")
    return int(key[0])


def _run(conn: Connection, run_id: int) -> RunRow:
    row = conn.execute(sa.select(schedule_runs).where(schedule_runs.c.run_id == run_id)).one()
    return RunRow(**row._mapping)


def record_skipped(
    store: Store, name: str, *, job: str, scheduled_for: datetime, trigger: str, message: str
) -> RunRow:
    """A due time that did not run (its previous run was still going in this scheduler)."""

    def work(conn: Connection) -> RunRow:
        run_id = _insert_run(conn, name, job, scheduled_for, trigger, SKIPPED, utcnow(), message, ended=True)
        return _run(conn, run_id)

    return _write(store, f"recording a skipped run of {name}", work)


def update_run(store: Store, run_id: int, **values: Any) -> None:
    """Set columns of a run (warm-start count, sweep id) while it runs."""
    _write(
        store,
        f"updating run {run_id}",
        lambda conn: conn.execute(
            sa.update(schedule_runs).where(schedule_runs.c.run_id == run_id).values(**values)
        ),
    )


def finish_run(store: Store, run_id: int, status: str, **values: Any) -> RunRow:
    """Record how a run ended (finished, failed, interrupted) with its results."""
    if status not in (FINISHED, FAILED, INTERRUPTED):
        raise ValueError(f"a run ends finished, failed or interrupted, got {status!r}")

    def work(conn: Connection) -> RunRow:
        # Only a running run: one marked interrupted by a scheduler that took its stale lock over
        # keeps saying so.
        conn.execute(
            sa.update(schedule_runs)
            .where(schedule_runs.c.run_id == run_id, schedule_runs.c.status == RUNNING)
            .values(status=status, ended_at=utcnow(), **values)
        )
        return _run(conn, run_id)

    return _write(store, f"finishing run {run_id}", work)


class SweepLock:
    """One scheduler's hold on a named sweep: renewed while its run lives, expiring if it dies."""

    def __init__(self, store: Store, name: str, ttl_s: float) -> None:
        self.store, self.name, self.ttl_s = store, name, ttl_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._lost: str | None = None

    def row_values(self, now: datetime) -> dict[str, Any]:
        return {
            "name": self.name,
            "owner": self.owner,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "process": processes.identity(),
            "run_id": None,
            "acquired_at": now,
            "expires_at": now + timedelta(seconds=self.ttl_s),
        }

    def lost(self) -> str | None:
        """Why this lock is no longer ours (another scheduler took it over), or None while it is:
        the run it protects must stop, since that scheduler is starting the same sweep."""
        return self._lost

    def _note_lost(self) -> None:
        try:
            holder = lock_holder(self.store, self.name)
        except Exception:  # noqa: BLE001 - who took it is a detail; that it is gone is what counts
            holder = None
        to = f"{holder.host} pid {holder.pid} (run {holder.run_id})" if holder else "another scheduler"
        self._lost = f"lost the lock of {self.name} to {to}, which took it over as stale"

    def renew(self) -> bool:
        """Push the expiry back; False if the lock is no longer ours (taken over as stale)."""
        locks = schedule_locks

        def work(conn: Connection) -> bool:
            renewed = conn.execute(
                sa.update(locks)
                .where(locks.c.name == self.name, locks.c.owner == self.owner)
                .values(expires_at=utcnow() + timedelta(seconds=self.ttl_s))
                .returning(locks.c.name)
            ).first()
            return renewed is not None

        return _write(self.store, f"renewing the lock of {self.name}", work)

    def release(self) -> None:
        locks = schedule_locks
        _write(
            self.store,
            f"releasing the lock of {self.name}",
            lambda conn: conn.execute(
                sa.delete(locks).where(locks.c.name == self.name, locks.c.owner == self.owner)
            ),
        )

    @contextmanager
    def kept_alive(self) -> Iterator[None]:
        """Renew every third of the expiry time while the body runs, then release."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.ttl_s / 3):
                try:
                    if not self.renew():
                        self._note_lost()
                        log.warning("%s: %s; stopping this run", self.name, self._lost)
                        return
                except Exception as exc:  # noqa: BLE001 - a missed renewal is retried on the next beat
                    log.warning("%s: could not renew the lock: %s", self.name, exc)

        thread = threading.Thread(target=beat, name=f"lock-{self.name}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self.release()
