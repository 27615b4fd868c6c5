"""The Tune recorder fed made-up trial events (no Ray running): rows appear as events happen."""

from __future__ import annotations

import logging
import pickle
from types import SimpleNamespace

import pytest
from storefakes import add_sweep

from tuning_service.store import RUNNING

pytest.importorskip("ray.tune")


def _trial(trial_id: str, error: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(
        trial_id=trial_id,
        config={"learning_rate": 0.01, "units": 8, "momentum": 0.9},
        last_result={},
        checkpoint=SimpleNamespace(path=f"/ckpt/{trial_id}"),
        get_error=lambda: f"Traceback (most recent call last):\n  ...\n{error}" if error else None,
    )


def _result(epoch: int, value: float, **extra) -> dict:
    return {
        "training_iteration": epoch,
        "val_accuracy": value,
        "loss": 1.0 / epoch,
        "time_total_s": 0.5 * epoch,
        "node_ip": "10.0.0.7",
        "hostname": "worker-1",
        "node_id": "abc123",
        "timestamp": 123,
        "done": False,
        **extra,
    }


def _effective(config: dict) -> dict:
    """Like Space.effective: drops a parameter whose condition is inactive."""
    return {k: v for k, v in config.items() if k != "momentum"}


@pytest.fixture
def recorder(store):
    from tuning_service.raytune.recorder import RecorderCallback

    add_sweep(store, "s1", finish=None)
    return RecorderCallback(
        store,
        "s1",
        metric="val_accuracy",
        mode="max",
        max_epochs=3,
        effective=_effective,
    )


def test_each_event_is_in_the_database_when_the_hook_returns(recorder, store):
    trial = _trial("t1")
    recorder.on_trial_start(0, [], trial)
    assert [(t.trial_id, t.status, t.config) for t in store.trials(["s1"])] == [
        ("t1", RUNNING, {"learning_rate": 0.01, "units": 8})
    ]
    recorder.on_trial_result(1, [], trial, _result(1, 0.5))
    recorder.on_checkpoint(1, [], trial, SimpleNamespace(path="/ckpt/t1/checkpoint_000000"))
    (row,) = store.trials(["s1"])
    assert (row.epochs, row.value, row.node_ip, row.node_id, row.hostname) == (
        1,
        0.5,
        "10.0.0.7",
        "abc123",
        "worker-1",
    )
    assert row.checkpoint == "/ckpt/t1/checkpoint_000000" and row.duration_s == 0.5
    (epoch,) = store.epochs("s1")
    assert epoch.metrics == {"val_accuracy": 0.5, "loss": 1.0}  # Tune's bookkeeping left out
    recorder.on_trial_result(2, [], trial, _result(2, 0.7))
    recorder.on_trial_result(3, [], trial, _result(3, 0.6))
    recorder.on_trial_complete(3, [], trial)
    (row,) = store.trials(["s1"])
    assert (row.status, row.value, row.best_epoch, row.epochs, row.message) == ("completed", 0.7, 2, 3, None)
    assert row.checkpoint == "/ckpt/t1" and row.ended_at is not None


def test_a_restarted_trial_forgets_the_epochs_of_the_run_it_no_longer_continues(recorder, store):
    """Ran 3 epochs, then (the driver died) started again from scratch: when its first new epoch
    comes, epochs 2 and 3 go; restored from a checkpoint at epoch 1 later, epoch 1 stays."""
    trial = _trial("t1")
    for n, v in ((1, 0.5), (2, 0.9), (3, 0.8)):
        recorder.on_trial_result(n, [], trial, _result(n, v, iterations_since_restore=n))
    recorder.on_trial_result(4, [], trial, _result(1, 0.4, iterations_since_restore=1))
    (row,) = store.trials(["s1"])
    assert [(e.epoch, e.value) for e in store.epochs("s1")] == [(1, 0.4)]
    assert (row.epochs, row.best_epoch, row.value) == (1, 1, 0.4)
    recorder.on_trial_result(5, [], trial, _result(2, 0.6, iterations_since_restore=1))
    assert [(e.epoch, e.value) for e in store.epochs("s1")] == [(1, 0.4), (2, 0.6)]


def test_diverged_stopped_and_errored_trials_are_recorded_with_why(recorder, store):
    diverged, stopped, failed = _trial("d"), _trial("s"), _trial("e", error="ValueError: units must be > 0")
    for trial in (diverged, stopped, failed):
        recorder.on_trial_start(0, [], trial)
    recorder.on_trial_result(1, [], diverged, _result(1, -1e9, diverged=True))
    recorder.on_trial_complete(1, [], diverged)
    recorder.on_trial_result(1, [], stopped, _result(1, 0.4))
    recorder.on_trial_complete(1, [], stopped)
    recorder.on_trial_error(1, [], failed)
    rows = {t.trial_id: t for t in store.trials(["s1"])}
    assert (
        rows["d"].status == "diverged"
        and rows["d"].value is None
        and "diverged at epoch 1" in rows["d"].message
    )
    assert rows["s"].status == "stopped early" and "by the scheduler" in rows["s"].message
    assert rows["e"].status == "errored" and rows["e"].message == "ValueError: units must be > 0"
    assert [e.diverged for e in store.epochs("s1", "d")] == [True]


def test_pickled_into_the_sweep_folder_it_keeps_no_database_url(recorder, store):
    blob = pickle.dumps(recorder)  # what Tune writes to trials/tuner.pkl
    assert recorder.url.encode() not in blob
    copy = pickle.loads(blob)
    assert copy._store is None and copy.url is None
    copy.on_trial_result(1, [], _trial("t9"), _result(1, 0.3))  # no connection: skipped, not raised
    assert copy.missed == 1 and store.epochs("s1") == []


def test_a_failing_database_does_not_stop_the_sweep(recorder, monkeypatch, caplog):
    from tuning_service.store import StoreError

    def broken(*args, **kwargs):
        raise StoreError("results database: recording failed: server closed the connection")

    caplog.set_level(logging.WARNING, logger="tuning_service.raytune.recorder")
    monkeypatch.setattr(recorder.store, "record_epoch", broken)
    recorder.on_trial_result(1, [], _trial("t1"), _result(1, 0.5))
    recorder.on_trial_result(2, [], _trial("t1"), _result(2, 0.5))  # skipped while backing off
    assert recorder.missed == 2
    assert "will reconcile at the end" in caplog.text
