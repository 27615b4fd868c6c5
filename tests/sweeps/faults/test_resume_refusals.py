"""`resume` refuses, in one line and exit code 2, what it cannot or must not continue."""

from __future__ import annotations

import pytest

from tuning_service.cli import main
from tuning_service.store import open_store
from tuning_service.sweeps.resume import check_no_live_driver


def _record(storage, sweep_id, status, sweep_dir):
    with open_store(None, storage=storage) as store:
        store.create_sweep(
            sweep_id, job="digits", job_ref="digits", metric="val_accuracy", mode="max", searcher="random",
            scheduler="fifo", seed=0, space={}, spec={"job": "digits"}, versions={}, sweep_dir=str(sweep_dir),
        )  # fmt: skip
        if status != "running":
            store.finish_sweep(sweep_id, status)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (
            "finished",
            "sweep 20260101-000000-aaaaaa finished already; `tuning-service results 20260101-000000-aaaaaa`",
        ),
        ("interrupted", "sweep 20260101-000000-aaaaaa cannot be resumed: its folder"),
    ],
)
def test_resume_refuses(status, message, tmp_path, capsys):
    storage = tmp_path / "results"
    _record(storage, "20260101-000000-aaaaaa", status, tmp_path / "gone")
    code = main(["resume", "20260101-000000-aaaaaa", "--storage", str(storage)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "gone").exists()


def test_resume_of_an_unknown_sweep_names_the_recorded_ones(tmp_path, capsys):
    storage = tmp_path / "results"
    _record(storage, "20260101-000000-aaaaaa", "interrupted", tmp_path / "gone")
    assert main(["resume", "20991231", "--storage", str(storage)]) == 2
    err = capsys.readouterr().err
    assert "unknown sweep '20991231'" in err and "20260101-000000-aaaaaa" in err


def test_run_with_an_interrupted_sweeps_id_points_at_resume(tmp_path, capsys):
    storage = tmp_path / "results"
    _record(storage, "20260101-000000-aaaaaa", "interrupted", tmp_path / "gone")
    assert main(["run", "20260101-000000-aaaaaa", "--storage", str(storage)]) == 2
    err = capsys.readouterr().err
    assert "is interrupted; continue it with `tuning-service resume 20260101-000000-aaaaaa`" in err


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (None, "it stopped before Ray Tune saved its first snapshot"),
        (b"", "its Ray Tune snapshot"),
        (b'{"trial_data": [', "is damaged"),
    ],
)
def test_resume_refuses_a_sweep_without_a_readable_snapshot(state, message, tmp_path, capsys):
    storage = tmp_path / "results"
    sweep_dir = storage / "digits" / "20260101-000000-aaaaaa"
    (sweep_dir / "trials").mkdir(parents=True)
    (sweep_dir / "trials" / "tuner.pkl").write_bytes(b"tuner")
    if state is not None:
        (sweep_dir / "trials" / "experiment_state-2026-01-01_00-00-00.json").write_bytes(state)
    _record(storage, "20260101-000000-aaaaaa", "interrupted", sweep_dir)
    code = main(["resume", "20260101-000000-aaaaaa", "--storage", str(storage)])
    err = capsys.readouterr().err
    assert code == 2 and "sweep 20260101-000000-aaaaaa cannot be resumed" in err and message in err, err
    assert err.count("\n") == 1, err


def _snapshot_folder(tmp_path):
    """A sweep folder a resume could start from (so only the live-driver checks stop it)."""
    sweep_dir = tmp_path / "results" / "digits" / "20260101-000000-aaaaaa"
    (sweep_dir / "trials").mkdir(parents=True)
    (sweep_dir / "trials" / "tuner.pkl").write_bytes(b"tuner")
    (sweep_dir / "trials" / "experiment_state-2026-01-01_00-00-00.json").write_text("{}")
    return sweep_dir


def _driven_by(storage, **values):
    import sqlalchemy as sa

    from tuning_service.store import schema

    with open_store(None, storage=storage) as store, store.engine.begin() as conn:
        conn.execute(sa.update(schema.sweeps).values(**values))


def _resume(storage, capsys):
    code = main(["resume", "20260101-000000-aaaaaa", "--storage", str(storage)])
    return code, capsys.readouterr().err


def test_resume_refuses_a_live_driver_of_this_machine_whatever_its_lock(tmp_path, capsys):
    """The database's view alone: a running sweep whose driver process is alive here."""
    import subprocess
    import sys

    from tuning_service.core.processes import start_ticks

    storage, sweep_dir = tmp_path / "results", _snapshot_folder(tmp_path)
    _record(storage, "20260101-000000-aaaaaa", "running", sweep_dir)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with open_store(None, storage=storage) as store:
            driver = store.sweeps()[0].driver
        _driven_by(storage, pid=other.pid, driver={**driver, "start": start_ticks(other.pid)})
        code, err = _resume(storage, capsys)
    finally:
        other.kill()
        other.wait()
    assert code == 2 and err.count("\n") == 1, err
    assert f"sweep 20260101-000000-aaaaaa is still being driven by pid {other.pid} on " in err
    assert not (sweep_dir / "trials" / "superseded-snapshot").exists()


def test_resume_refuses_a_driver_elsewhere_while_its_heartbeat_is_fresh(tmp_path, capsys):
    """Another node (or a container with our host name): alive until 10 minutes without a heartbeat."""
    from datetime import timedelta

    from tuning_service.store.schema import utcnow

    storage, sweep_dir = tmp_path / "results", _snapshot_folder(tmp_path)
    _record(storage, "20260101-000000-aaaaaa", "running", sweep_dir)
    elsewhere = {
        "boot": "another-machine",
        "pidns": "pid:[1]",
        "start": 1,
        "since": "2026-01-01T00:00:00+00:00",
    }
    _driven_by(
        storage, host="node-2", pid=4242, driver=elsewhere, heartbeat_at=utcnow() - timedelta(seconds=40)
    )
    code, err = _resume(storage, capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert (
        "sweep 20260101-000000-aaaaaa may still be driven by pid 4242 on node-2 since 2026-01-01T00:00:00+00:00: "
        "its last heartbeat was 40 s ago; stop that driver, or if it is gone, resume after "
    ) in err
    # Ten minutes of silence: the driver is taken as gone.
    _driven_by(storage, heartbeat_at=utcnow() - timedelta(minutes=11))
    with open_store(None, storage=storage) as store:
        check_no_live_driver(store.find_sweep("20260101-000000-aaaaaa"))
