"""The store on SQLite and PostgreSQL: schema from migrations, idempotent upserts, stale sweeps."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from storedbs import make_db_url
from storefakes import add_sweep

from tuning_service.core.errors import InputError
from tuning_service.store import INTERRUPTED, RUNNING, open_store, schema
from tuning_service.store.migrate import HEAD, head_revision


def _migrated(url: str) -> sa.engine.Engine:
    """An engine on the empty database at ``url``, brought to the newest revision by Alembic's migrations."""
    from tuning_service.store.engine import create_engine
    from tuning_service.store.migrate import migrate

    engine = create_engine(sa.engine.make_url(url))
    migrate(engine)
    return engine


def _structure(engine: sa.engine.Engine) -> dict[str, dict[str, object]]:
    """Every table's columns, keys and indexes as the database reports them."""
    inspector = sa.inspect(engine)
    return {
        name: {
            # In any order: a migration adds its columns last, the declared schema where they belong.
            "columns": sorted(
                (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(name)
            ),
            "primary key": inspector.get_pk_constraint(name)["constrained_columns"],
            "foreign keys": sorted(
                (
                    tuple(k["constrained_columns"]),
                    k["referred_table"],
                    tuple(k["referred_columns"]),
                    str(k["options"]),
                )
                for k in inspector.get_foreign_keys(name)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), i["unique"]) for i in inspector.get_indexes(name)
            ),
            "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(name)),
        }
        for name in sorted(inspector.get_table_names())
    }


def test_migrations_build_exactly_the_declared_schema(db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from tuning_service.store import scheduletables  # noqa: F401 - the scheduler's tables join the metadata

    engine = _migrated(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn)
            assert context.get_current_revision() == head_revision() == HEAD
            assert compare_metadata(context, schema.metadata) == []
    finally:
        engine.dispose()


def test_a_new_database_is_built_as_the_migrations_build_one(db_url, tmp_path):
    """A new database is built from the declared schema, not migrated (`migrate.create_current`):
    it must come out as Alembic's migrations leave an empty one, every table of it, at the same revision."""
    from alembic.runtime.migration import MigrationContext

    (tmp_path / "migrated").mkdir()
    other = make_db_url("sqlite" if db_url.startswith("sqlite") else "postgresql", tmp_path / "migrated")
    engine = _migrated(next(other))
    try:
        with open_store(db_url) as built:
            assert _structure(built.engine) == _structure(engine)
            assert len(_structure(engine)) == 8  # the store's, the scheduler's, Alembic's version table
            with built.engine.connect() as conn:
                assert MigrationContext.configure(conn).get_current_revision() == HEAD
    finally:
        engine.dispose()
        other.close()


def test_reopening_is_a_no_op_and_keeps_the_data(db_url):
    with open_store(db_url) as first:
        add_sweep(first, "s1", trials={"t1": ("completed", [0.5])})
    with open_store(db_url) as again:
        assert [s.sweep_id for s in again.sweeps()] == ["s1"]


def test_epochs_are_upserts_and_the_trial_summary_follows_them(store):
    add_sweep(store, "s1", trials={"t1": ("running", [0.5, 0.7, 0.6])}, finish=None)
    for _ in range(2):  # a replay (retry, restore from checkpoint) changes nothing
        store.record_epoch("s1", "t1", 2, mode="max", value=0.7, metrics={"val_accuracy": 0.7})
    (trial,) = store.trials(["s1"])
    assert (trial.value, trial.best_epoch, trial.epochs) == (0.7, 2, 3)
    assert [e.epoch for e in store.epochs("s1")] == [1, 2, 3]
    # A restored trial re-running epoch 2 with another outcome: the newest report wins.
    store.record_epoch("s1", "t1", 2, mode="max", value=0.4, metrics={})
    (trial,) = store.trials(["s1"])
    assert (trial.value, trial.best_epoch) == (0.6, 3)
    assert trial.node_ip == "127.0.0.1" and trial.status == RUNNING


def test_a_write_that_leaves_out_a_trials_details_keeps_the_recorded_ones(store):
    add_sweep(store, "s1", trials={}, finish=None)
    config = {"units": 32}
    store.start_trial("s1", "t1", config)
    store.record_epoch(
        "s1",
        "t1",
        1,
        mode="max",
        value=0.5,
        config=config,
        node={"node_ip": "10.0.0.7", "node_id": "n7", "hostname": "w7"},
        train_time_s=0.25,
        duration_s=0.5,
    )
    store.record_checkpoint("s1", "t1", "ckpt/1")
    # Later writes without them (empty node values, no config) change none of them.
    store.record_epoch(
        "s1", "t1", 2, mode="max", value=0.4, config={}, node={"node_ip": "", "hostname": None}
    )
    store.finish_trial("s1", "t1", "completed", message="done")
    (trial,) = store.trials(["s1"])
    assert (trial.config, trial.node_ip, trial.node_id, trial.hostname) == (config, "10.0.0.7", "n7", "w7")
    assert (trial.train_time_s, trial.duration_s, trial.checkpoint) == (0.25, 0.5, "ckpt/1")
    assert (trial.status, trial.message, trial.value, trial.best_epoch, trial.epochs) == (
        "completed",
        "done",
        0.5,
        1,
        2,
    )
    # And writes that name them replace them.
    store.finish_trial("s1", "t1", "completed", config={"units": 64}, duration_s=0.75, checkpoint="ckpt/2")
    (trial,) = store.trials(["s1"])
    assert (trial.config, trial.duration_s, trial.checkpoint) == ({"units": 64}, 0.75, "ckpt/2")
    assert trial.ended_at is not None and trial.started_at is not None


def test_min_mode_and_diverged_epochs(store):
    add_sweep(store, "s1", metric="val_loss", mode="min", trials={"t1": ("diverged", [0.9, 0.3, None])})
    (trial,) = store.trials(["s1"])
    assert (trial.value, trial.best_epoch, trial.status) == (0.3, 2, "diverged")
    assert [e.diverged for e in store.epochs("s1")] == [False, False, True]
    assert store.epochs("s1")[2].value is None


def test_non_finite_numbers_are_stored_as_null(store):
    add_sweep(store, "s1", trials={"t1": ("running", [0.5])}, finish=None)
    store.record_epoch("s1", "t1", 2, mode="max", value=float("nan"), metrics={"loss": float("inf")})
    epoch = store.epochs("s1", "t1")[1]
    assert epoch.value is None and epoch.metrics == {"loss": None}


def test_top_trials_rank_across_sweeps_and_skip_unfinished_outcomes(store):
    add_sweep(store, "s1", trials={"a": ("completed", [0.6]), "b": ("errored", [0.99])})
    add_sweep(store, "s2", trials={"c": ("stopped early", [0.8]), "d": ("diverged", [0.95, None])})
    add_sweep(store, "s3", metric="val_loss", mode="min", trials={"e": ("completed", [0.1])})
    top = store.top_trials("digits", metric="val_accuracy", mode="max")
    assert [(t.sweep_id, t.trial_id) for t, _ in top] == [("s2", "c"), ("s1", "a")]


def test_find_sweep_by_prefix_and_clear_errors(store):
    add_sweep(store, "20250101-aaa")
    add_sweep(store, "20250101-abb")
    assert store.find_sweep("20250101-aa").sweep_id == "20250101-aaa"
    with pytest.raises(
        InputError,
        match=r"sweep '20250101-a' is ambiguous; it starts 2 sweep ids: 20250101-aaa, 20250101-abb",
    ):
        store.find_sweep("20250101-a")
    with pytest.raises(
        InputError, match=r"unknown sweep 'nope' in .*; recent sweeps: 20250101-abb, 20250101-aaa"
    ):
        store.find_sweep("nope")
    with pytest.raises(
        InputError, match=r"no sweep of job 'digit' in .*; recorded jobs: digits \(did you mean 'digits'\?\)"
    ):
        store.check_job("digit")


def test_a_sweep_whose_driver_died_is_marked_interrupted(store):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    add_sweep(store, "dead", trials={"t1": ("running", [0.5])}, finish=None)
    add_sweep(store, "alive", trials={"t1": ("running", [0.5])}, finish=None)
    add_sweep(store, "silent", trials={"t1": ("completed", [0.5])}, finish=None)
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(schema.sweeps).where(schema.sweeps.c.sweep_id == "dead").values(pid=int(dead.stdout))
        )
        old = schema.utcnow() - timedelta(hours=1)
        conn.execute(
            sa.update(schema.sweeps)
            .where(schema.sweeps.c.sweep_id == "silent")
            .values(host="elsewhere", heartbeat_at=old)
        )
    assert sorted(store.cleanup_stale()) == ["dead", "silent"]
    rows = {s.sweep_id: s for s in store.sweeps()}
    assert rows["alive"].status == RUNNING and rows["dead"].status == INTERRUPTED
    assert "driver process is gone" in rows["dead"].message and "no heartbeat" in rows["silent"].message
    assert [t.status for t in store.trials(["dead"])] == [INTERRUPTED]
    assert [t.status for t in store.trials(["silent"])] == ["completed"]
    assert store.cleanup_stale() == []


def test_recreating_a_sweep_is_an_upsert(store):
    add_sweep(store, "s1", trials={"t1": ("completed", [0.5])})
    add_sweep(store, "s1", finish=None)
    (row,) = store.sweeps()
    assert row.status == RUNNING and row.ended_at is None
    assert len(store.trials(["s1"])) == 1


def test_reading_never_creates_a_database(tmp_path):
    path = tmp_path / "nothing.db"
    with pytest.raises(
        InputError, match=r"no results database at '.*nothing.db'; run a sweep first, or pass --db URL"
    ):
        open_store(f"sqlite:///{path}", must_exist=True)
    assert not path.exists()


def test_the_default_database_is_in_the_results_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open_store(storage="results") as store:
        assert store.url.database == os.path.join(tmp_path, "results", "tuning.db")
    monkeypatch.setenv("TUNING_SERVICE_DB", f"sqlite:///{tmp_path / 'env.db'}")
    with open_store(storage="results") as store:
        assert store.url.database.endswith("env.db")


def test_the_default_database_stays_in_a_results_root_named_with_url_characters(tmp_path, monkeypatch):
    """Before: the root's path went into the URL as written, so ``a?b`` put the database in a
    file named ``a`` beside it (the rest read as a query) and ``%41`` in a folder ``A``."""
    monkeypatch.delenv("TUNING_SERVICE_DB", raising=False)
    storage = tmp_path / "a?b %41#c"
    with open_store(storage=str(storage)) as store:
        assert store.url.database == str(storage / "tuning.db")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a?b %41#c"]
    assert (storage / "tuning.db").is_file()


def test_a_sweeps_checks_of_the_default_database_load_no_sqlalchemy(tmp_path):
    """A sweep checks its input, the database among it, before its worker fork server starts:
    SQLAlchemy's import (0.2 s) would hold the server back, so the default SQLite file is
    checked without it; SQLAlchemy loads when the store opens."""
    script = (
        "import sys\n"
        "from tuning_service.core.spec import SweepSpec\n"
        "from tuning_service.sweeps.runner import prepare\n"
        f"prepare(SweepSpec(job='digits', storage={str(tmp_path / 'results')!r}))\n"
        "print('sqlalchemy' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TUNING_SERVICE_DB"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split() == ["False"], done.stderr
    assert not (tmp_path / "results").exists()


def test_outcome_messages_say_why_a_trial_ended():
    from tuning_service.core.outcomes import outcome_message, trial_status

    cases = [
        ({"training_iteration": 3}, "completed", None),
        ({"training_iteration": 1, "diverged": True}, "diverged", "diverged at epoch 1"),
        ({"training_iteration": 2, "early_stopped": True}, "stopped early", "within the job's patience"),
        ({"training_iteration": 1}, "stopped early", "stopped at epoch 1 of 3 by the scheduler"),
    ]
    for last, status, message in cases:
        assert trial_status(last, 3) == status
        text = outcome_message(status, last, 3)
        assert text == message if message is None else message in text


def _result(sweep_id, trials, tmp_path):
    from tuning_service.core.results import SweepResult

    return SweepResult(
        sweep_id=sweep_id, job="digits", metric="val_accuracy", mode="max", searcher="random", scheduler="fifo",
        seed=0, sweep_dir=tmp_path, trials=trials, wall_time_s=1.0, max_epochs=3,
    )  # fmt: skip


def test_reconciliation_keeps_a_trial_tune_does_not_know_as_dropped(store, tmp_path):
    """A trial the store saw never vanishes: marked dropped with why, its epochs kept, never the best."""
    from tuning_service.core.results import TrialSummary
    from tuning_service.sweeps.aggregate import best_configs, rank_trials, summarize

    # b finished after the snapshot a resume started from (the best value of all); c never
    # reported an epoch before the sweep ended.
    add_sweep(
        store,
        "s1",
        trials={"a": ("completed", [0.5, 0.6, 0.7]), "b": ("completed", [0.9, 0.95])},
        finish=None,
    )
    store.start_trial("s1", "c", {"learning_rate": 0.01})
    (a,) = [t for t in store.trials(["s1"]) if t.trial_id == "a"]
    known = TrialSummary("a", a.config, "completed", 0.7, 3, 3, 1.0, history=[])
    for _ in range(2):  # a replayed reconciliation changes nothing
        store.record_result(_result("s1", [known], tmp_path))
    trials = {t.trial_id: t for t in store.trials(["s1"])}
    assert sorted(trials) == ["a", "b", "c"]
    assert (trials["a"].status, trials["b"].status, trials["c"].status) == ("completed", "dropped", "dropped")
    assert "its 2 recorded epochs are kept" in trials["b"].message
    assert "ended before this trial reported an epoch" in trials["c"].message
    assert [e.epoch for e in store.epochs("s1", "b")] == [1, 2] and trials["b"].value == 0.95
    # Every reader: never the best, listed last, counted apart from the trials the sweep ran.
    store.finish_sweep("s1", "finished")
    assert [t.trial_id for t, _ in store.top_trials("digits", metric="val_accuracy", mode="max")] == ["a"]
    assert best_configs(store, job="digits")[0]["trial_id"] == "a"
    assert [t.trial_id for t in rank_trials(list(trials.values()), "max")] == ["a", "b", "c"]
    (summary,) = summarize(store, store.sweeps())
    assert summary.best.trial_id == "a" and summary.trials == 1 and summary.counts["dropped"] == 2
    assert summary.tally == "1 (1 completed) + 2 dropped"


def test_reconciliation_drops_epochs_past_a_trials_last_one(store, tmp_path):
    """The trial restarted and stopped sooner than its first run, which the live recorder missed:
    rows past the epoch the results end at are from the run it did not continue."""
    from tuning_service.core.results import TrialSummary

    add_sweep(store, "s1", trials={"t1": ("running", [0.5, 0.9, 0.8]), "t2": ("running", [0.3])}, finish=None)
    config = {t.trial_id: t.config for t in store.trials(["s1"])}
    live_metrics = store.epochs("s1", "t2")[0].metrics
    t1 = TrialSummary("t1", config["t1"], "stopped early", 0.4, 1, 1, 1.0, history=[_epoch(1, 0.4)])
    t2 = TrialSummary(
        "t2", config["t2"], "completed", 0.3, 1, 2, 1.0, history=[_epoch(1, 0.3), _epoch(2, 0.2)]
    )
    for _ in range(2):  # a replayed reconciliation changes nothing
        store.record_result(_result("s1", [t1, t2], tmp_path))
    trials = {t.trial_id: t for t in store.trials(["s1"])}
    assert [(e.epoch, e.value) for e in store.epochs("s1", "t1")] == [(1, 0.4)]
    assert (trials["t1"].status, trials["t1"].epochs, trials["t1"].best_epoch, trials["t1"].value) == (
        "stopped early", 1, 1, 0.4
    )  # fmt: skip
    # Where the results agree with the live row, it stays, with every metric it recorded.
    rows = store.epochs("s1", "t2")
    assert [(e.epoch, e.value) for e in rows] == [(1, 0.3), (2, 0.2)] and rows[0].metrics == live_metrics


def _epoch(n: int, value: float) -> dict:
    return {"training_iteration": n, "val_accuracy": value}


def test_a_driver_alive_after_being_marked_interrupted_revives_its_sweep(store):
    """A database outage longer than the stale limit: the next sweep marks this one interrupted; the
    driver's next heartbeat, once the database is back, says it is running after all."""
    add_sweep(store, "s1", trials={"t1": ("running", [0.5]), "t2": ("completed", [0.6])}, finish=None)
    with store.engine.begin() as conn:
        old = schema.utcnow() - timedelta(hours=1)
        conn.execute(sa.update(schema.sweeps).values(heartbeat_at=old))
    assert store.cleanup_stale() == ["s1"]
    assert store.sweeps()[0].status == INTERRUPTED
    store.heartbeat("s1")
    (row,) = store.sweeps()
    assert (row.status, row.ended_at, row.message) == (RUNNING, None, None)
    assert {t.trial_id: t.status for t in store.trials(["s1"])} == {"t1": RUNNING, "t2": "completed"}


def test_a_driver_in_another_container_with_our_host_name_is_not_taken_for_dead(store):
    """Same host name, another pid namespace: its pid means nothing here, only its heartbeat counts."""
    add_sweep(store, "s1", finish=None)
    (row,) = store.sweeps()
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(schema.sweeps).values(pid=2**22 - 1, driver={**row.driver, "pidns": "pid:[123]"})
        )
    assert store.cleanup_stale() == [] and store.sweeps()[0].status == RUNNING


def test_a_database_made_by_the_previous_version_upgrades_and_keeps_working(db_url):
    """Revision 0002 (before sweeps recorded their driver's identity) opens, upgrades, and its sweeps
    are judged by host and pid as before."""
    from alembic import command
    from alembic.config import Config

    from tuning_service.store.engine import create_engine, parse_url
    from tuning_service.store.migrate import MIGRATIONS

    engine = create_engine(parse_url(db_url))
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
        now = schema.utcnow()
        conn.execute(
            sa.text(
                "INSERT INTO sweeps (sweep_id, job, job_ref, metric, mode, searcher, scheduler, seed, space, spec,"
                " host, pid, versions, status, started_at, heartbeat_at) VALUES ('old', 'digits', 'digits',"
                " 'val_accuracy', 'max', 'random', 'fifo', 0, '{}', '{}', :host, 2147483646, '{}', 'running', :now, :now)"
            ),
            {"host": socket.gethostname(), "now": now.replace(tzinfo=None)},
        )
    engine.dispose()
    with open_store(db_url) as store:
        (row,) = store.sweeps()
        assert row.driver is None
        assert store.cleanup_stale() == ["old"]  # this host, and no process with that pid
        add_sweep(store, "new", trials={"t1": ("completed", [0.5])})
        assert store.find_sweep("new").driver["boot"]


def test_two_writers_of_one_trial_at_once_leave_its_summary_exact(db_url):
    """Writer A has added its epoch when writer B adds epoch 25 and updates the summary; A's summary
    update comes next, then B commits. On PostgreSQL, unless A holds the trial's row from its first
    statement, A waits only in that update, whose snapshot was taken before B committed: it would
    miss epoch 25. Holding the row, A goes first and B's statements see A's epoch instead."""
    import threading

    with open_store(db_url) as a, open_store(db_url) as b:
        add_sweep(a, "s1", trials={"t1": ("running", [0.5])}, finish=None)
        a_added, b_updated, done = threading.Event(), threading.Event(), []

        @sa.event.listens_for(a.engine, "after_cursor_execute")
        def a_pauses(conn, cursor, statement, parameters, context, executemany):
            if statement.lstrip().startswith("INSERT INTO epochs") and not a_added.is_set():
                a_added.set()
                b_updated.wait(1.0)  # B cannot get there while A holds the row

        @sa.event.listens_for(b.engine, "after_cursor_execute")
        def b_pauses(conn, cursor, statement, parameters, context, executemany):
            if statement.lstrip().startswith("UPDATE trials") and not b_updated.is_set():
                b_updated.set()
                time.sleep(0.5)  # A's summary update starts and waits for B meanwhile

        def write_b() -> None:
            a_added.wait(30)
            b.record_epoch("s1", "t1", 25, mode="max", value=0.9, metrics={})
            done.append(True)

        thread = threading.Thread(target=write_b)
        thread.start()
        a.record_epoch("s1", "t1", 24, mode="max", value=0.1, metrics={})
        thread.join(60)
        assert done
        (trial,) = a.trials(["s1"])
        assert (trial.value, trial.best_epoch, trial.epochs) == (0.9, 25, 25)
