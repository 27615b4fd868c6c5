"""Schedule locks under failure: a lost lock stops its run, a replayed start finds its own lock, a lock
released at the wrong instant is taken instead of raising."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tuning_service.core.errors import SweepStopped
from tuning_service.store import engine
from tuning_service.store.scheduletables import INTERRUPTED, RUNNING, schedule_locks, schedule_runs
from tuning_service.store.schema import utcnow
from tuning_service.sweeps.nightly import history
from tuning_service.sweeps.nightly.schedulefile import load_schedule
from tuning_service.sweeps.nightly.service import open_history, run_once

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def schedule(write_schedule, db_url):
    path = write_schedule(
        f"""
        sweeps:
          nightly:
            job: tuning_service.testing:tiny_job
            searcher: random
            scheduler: fifo
            num_samples: 60
            max_epochs: 8
            max_concurrent_trials: 1
            cron: '* * * * *'
            database: "{db_url}"
            lock_ttl_s: 0.6
            warm_start: 0
        """
    )
    return load_schedule(path)


def _take_over_when(started: threading.Event, sweep) -> history.Started:
    """Another scheduler: once the run holds the lock, wait out its expiry (as if its renewals had
    failed for a while), then take it over and start the same sweep."""
    assert started.wait(120), "the run never started"
    with open_history(sweep) as store:
        with store.engine.begin() as conn:
            conn.execute(sa.update(schedule_locks).values(expires_at=utcnow() - timedelta(seconds=1)))
        other = history.start_run(
            store, "nightly", job="tiny", scheduled_for=NOON, trigger="other", ttl_s=600
        )
    assert isinstance(other, history.Started) and other.took_over is not None
    return other


def _run_in_thread(schedule, execute):
    sweep = schedule.sweeps[0]
    out: dict = {}

    def target() -> None:
        with open_history(sweep) as store:
            out["report"] = run_once(store, sweep, NOON, execute=execute, trigger="test")

    thread = threading.Thread(target=target)
    thread.start()
    return thread, out


def test_a_run_that_loses_its_lock_is_told_to_stop_and_records_nothing_more(schedule):
    sweep = schedule.sweeps[0]
    started, asked = threading.Event(), []

    def long_sweep(sweep, spec, *, stop=None):  # a target honouring stop, as run_here does
        started.set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (why := stop()) is not None:
                asked.append(why)
                raise SweepStopped(why)
            time.sleep(0.05)
        raise AssertionError("never told to stop")

    thread, out = _run_in_thread(schedule, long_sweep)
    other = _take_over_when(started, sweep)
    thread.join(90)
    report = out["report"]
    assert report.status == INTERRUPTED and "lost the lock of nightly to" in report.message, report
    assert asked and f"pid {other.lock.row_values(utcnow())['pid']}" in asked[0]
    with open_history(sweep) as store:
        runs = {r.run_id: r for r in history.runs(store, "nightly")}
        assert runs[report.run_id].status == INTERRUPTED
        assert runs[other.run.run_id].status == RUNNING
        # The run that lost the lock did not release the new holder's.
        assert history.lock_holder(store, "nightly").owner == other.lock.owner
    assert not (sweep.export_dir / "latest_change.json").exists()


@pytest.mark.integration
def test_the_sweep_of_a_run_that_loses_its_lock_stops(ray_local, schedule):
    """The real local target: the sweep stops at its next step, recorded as interrupted, with why."""
    sweep = schedule.sweeps[0]
    with open_history(sweep) as store:
        watcher = store

        def a_trial_finished() -> bool:
            return any(
                t.status == "completed" for t in watcher.trials([s.sweep_id for s in watcher.sweeps()])
            )

        started = threading.Event()
        thread, out = _run_in_thread(schedule, None)
        deadline = time.monotonic() + 180
        while not a_trial_finished() and time.monotonic() < deadline:
            time.sleep(0.2)
        started.set()
        _take_over_when(started, sweep)
        thread.join(240)
        report = out["report"]
        assert report.status == INTERRUPTED and "lost the lock" in report.message, report
        (row,) = watcher.sweeps()
        assert row.status == INTERRUPTED and "lost the lock of nightly" in row.message, row
        assert len([t for t in watcher.trials([row.sweep_id]) if t.status == "completed"]) < 8


def test_start_run_replayed_after_its_commit_finds_its_own_lock(schedule, monkeypatch):
    """A retry after a lost commit acknowledgement runs the whole transaction again."""

    def twice(operation, *, what, **kwargs):  # the first attempt committed; its answer never came
        operation()
        return operation()

    with open_history(schedule.sweeps[0]) as store:
        monkeypatch.setattr(engine, "retrying", twice)  # every transaction, history's among them
        outcome = history.start_run(store, "nightly", job="tiny", scheduled_for=NOON, trigger="t", ttl_s=60)
        assert isinstance(outcome, history.Started), outcome
        (run,) = history.runs(store, "nightly")
        assert (run.status, run.run_id) == (RUNNING, outcome.run.run_id)
        assert history.lock_holder(store, "nightly").owner == outcome.lock.owner


def _pg_only(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite's BEGIN IMMEDIATE serializes the whole transaction")


class CommitLost:
    """A TCP proxy to the database that, once armed, forwards the next COMMIT and then cuts the
    connection before the server's answer comes back: the commit happened, the client never hears."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.armed = threading.Event()
        self.cut = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            lost = threading.Event()  # this connection's COMMIT was forwarded: drop its answer
            threading.Thread(target=self._pump, args=(client, server, lost), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, lost, False), daemon=True).start()

    def _pump(
        self, src: socket.socket, dst: socket.socket, lost: threading.Event, to_server: bool = True
    ) -> None:
        try:
            while data := src.recv(65536):
                if not to_server and lost.is_set():
                    return  # the answer to the COMMIT, and whatever follows, is lost
                cutting = to_server and self.armed.is_set() and b"COMMIT" in data
                if cutting:
                    self.armed.clear()
                    lost.set()
                    self.cut.set()
                dst.sendall(data)
                if cutting:
                    time.sleep(0.3)  # the server commits
                    return
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        self.listener.close()


def test_a_start_whose_commit_answer_is_lost_is_not_recorded_as_skipped(schedule, db_url):
    """PostgreSQL through a proxy that loses the answer to the COMMIT: the retry finds its own lock."""
    _pg_only(db_url)
    from tuning_service.store import open_store

    url = sa.engine.make_url(db_url)
    proxy = CommitLost(url.host, url.port)
    try:
        with open_store(
            url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        ) as store:
            proxy.armed.set()
            outcome = history.start_run(
                store, "nightly", job="tiny", scheduled_for=NOON, trigger="t", ttl_s=60
            )
            assert proxy.cut.is_set(), "the proxy never cut a commit"
            assert isinstance(outcome, history.Started), outcome
            (run,) = history.runs(store, "nightly")
            assert run.status == RUNNING and run.run_id == outcome.run.run_id
    finally:
        proxy.close()


def test_a_lock_released_between_insert_and_select_for_update_is_taken(schedule, db_url):
    """The holder releases its lock in the instant after our conflicting insert: take it, do not raise."""
    _pg_only(db_url)
    sweep = schedule.sweeps[0]
    with open_history(sweep) as holder_store, open_history(sweep) as store:
        holder = history.start_run(
            holder_store, "nightly", job="tiny", scheduled_for=NOON, trigger="a", ttl_s=60
        )
        released = []

        @sa.event.listens_for(store.engine, "before_cursor_execute")
        def release_first(conn, cursor, statement, parameters, context, executemany):
            if "FOR UPDATE" in statement and "schedule_locks" in statement and not released:
                history.finish_run(holder_store, holder.run.run_id, "finished")
                holder.lock.release()
                released.append(True)

        outcome = history.start_run(
            store, "nightly", job="tiny", scheduled_for=NOON + timedelta(minutes=1), trigger="b", ttl_s=60
        )
        assert released and isinstance(outcome, history.Started), outcome
        assert history.lock_holder(store, "nightly").owner == outcome.lock.owner
        with store.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(schedule_runs)).scalar() == 2
