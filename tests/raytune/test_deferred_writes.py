"""Callbacks that only write a trial's events down take them after Tune has sent the trial's worker
its next call, and before the step's snapshot (`raytune/deferredwrites.py`)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
from ray import tune
from ray.tune.callback import CallbackList
from ray.tune.execution.tune_controller import TuneController
from ray.tune.logger import LoggerCallback

from tuning_service.core.outcomes import ENDED_AT
from tuning_service.raytune.deferredwrites import writes_after_dispatch, writes_only
from tuning_service.raytune.recorder import RecorderCallback
from tuning_service.raytune.tensorboard import TensorBoardLogger


class Writer(LoggerCallback):
    """A logger (writes only) that notes each event it is handed."""

    def __init__(self, seen: list[Any], name: str = "writer") -> None:
        self.seen, self.name = seen, name

    def log_trial_start(self, trial: Any) -> None:
        self.seen.append((self.name, "start", trial))

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        self.seen.append((self.name, "result", result["n"]))

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        self.seen.append((self.name, "end", trial))

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self.seen.append((self.name, "step end", iteration))


class Reader(tune.Callback):
    """A callback whose view the run reads (as the schedulers' state or the progress): not deferred."""

    def __init__(self, seen: list[Any]) -> None:
        self.seen = seen

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        self.seen.append(("reader", "result", result["n"]))


def _controller(seen: list[Any]) -> Any:
    """What `TuneController.checkpoint` uses of its controller: the manager that takes the snapshot."""
    manager = SimpleNamespace(sync_up_experiment_state=lambda **kw: seen.append(("snapshot",)))
    return SimpleNamespace(_checkpoint_manager=manager, save_to_dir=None)


def test_the_writers_are_tunes_loggers_and_the_store_recorder(tmp_path):
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    from tuning_service.raytune.callbacks import Halt, SnapshotKeeper, SyncBeforeRestore
    from tuning_service.raytune.schedulers import create_scheduler
    from tuning_service.raytune.snapshotpace import SnapshotPace

    recorder = RecorderCallback.__new__(RecorderCallback)  # its store is not needed to classify it
    for writer in (TensorBoardLogger(), JsonLoggerCallback(), CSVLoggerCallback(), recorder):
        assert writes_only(writer), writer
    # The run's own readers of events take them at Tune's call: the snapshot's keeper and pace,
    # the restarted trial's wait and the stop.
    for reader in (
        SnapshotKeeper(tmp_path),
        SnapshotPace(create_scheduler("fifo", max_t=1)),
        SyncBeforeRestore(),
        Halt(None),
    ):
        assert not writes_only(reader), reader


def test_writers_take_a_steps_events_in_order_just_before_its_snapshot():
    seen: list[Any] = []
    callbacks = CallbackList([Reader(seen), Writer(seen, "a"), Writer(seen, "b")])
    trial = object()
    with writes_after_dispatch():
        callbacks.on_trial_start(iteration=1, trials=[], trial=trial)
        callbacks.on_trial_result(iteration=1, trials=[], trial=trial, result={"n": 1})
        assert seen == [("reader", "result", 1)]  # the run's own view at once; nothing written yet
        TuneController.checkpoint(_controller(seen))
        assert seen[1:] == [
            ("a", "start", trial),
            ("b", "start", trial),
            ("a", "result", 1),
            ("b", "result", 1),
            ("snapshot",),
        ]
        seen.clear()
        # A trial's last result and its end in one step: each writer sees them in Tune's order.
        callbacks.on_trial_result(iteration=2, trials=[], trial=trial, result={"n": 2})
        callbacks.on_trial_complete(iteration=2, trials=[], trial=trial)
        callbacks.on_step_end(iteration=2, trials=[])
        assert seen == [
            ("reader", "result", 2),
            ("a", "result", 2),
            ("b", "result", 2),
            ("a", "end", trial),
            ("b", "end", trial),
            ("a", "step end", 2),
            ("b", "step end", 2),
        ]
    seen.clear()
    callbacks.on_trial_result(iteration=3, trials=[], trial=trial, result={"n": 3})  # Tune's own again
    assert seen == [("reader", "result", 3), ("a", "result", 3), ("b", "result", 3)]


def test_events_still_waiting_when_the_run_ends_are_written():
    seen: list[Any] = []
    callbacks = CallbackList([Writer(seen)])
    with writes_after_dispatch():
        callbacks.on_trial_result(iteration=1, trials=[], trial=object(), result={"n": 1})
        assert seen == []
    assert seen == [("writer", "result", 1)]


def test_the_run_ends_with_the_writes_when_tunes_end_comes_first():
    seen: list[Any] = []
    callbacks = CallbackList([Writer(seen)])
    with writes_after_dispatch():
        callbacks.on_trial_result(iteration=1, trials=[], trial=object(), result={"n": 1})
        callbacks.on_experiment_end(trials=[])
        assert seen == [("writer", "result", 1)]


class SlowWriter(LoggerCallback):
    """A logger that takes ``DELAY_S`` over each result and notes when it was done with it (long
    enough that a worker's next epoch, a call to an idle actor, is over well before, even on a
    busy machine)."""

    DELAY_S = 1.0

    def __init__(self) -> None:
        self.done_at: dict[int, float] = {}

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        time.sleep(self.DELAY_S)
        self.done_at[result["training_iteration"]] = time.time()


@pytest.mark.integration
def test_the_worker_trains_its_next_epoch_while_the_driver_writes_the_last_down(ray_local, tmp_path):
    from tuning_service.testing.noop import NoopTrainable

    writer = SlowWriter()
    epochs = 3
    tuner = tune.Tuner(
        NoopTrainable,
        run_config=tune.RunConfig(
            storage_path=str(tmp_path),
            stop={"training_iteration": epochs},
            callbacks=[writer],
            verbose=0,
        ),
    )
    with writes_after_dispatch():
        result = tuner.fit()[0]
    ended = {int(row["training_iteration"]): row[ENDED_AT] for _, row in result.metrics_dataframe.iterrows()}
    assert sorted(writer.done_at) == sorted(ended) == list(range(1, epochs + 1))
    # Each epoch after the first was over before the driver was done writing the one before down:
    # Tune sent the worker its call first. (Tune's own order sends it a whole DELAY_S later.)
    for epoch in range(2, epochs + 1):
        assert ended[epoch] < writer.done_at[epoch - 1], (epoch, ended, writer.done_at)
