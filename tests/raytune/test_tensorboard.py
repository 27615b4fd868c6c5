"""The sweep's TensorBoard logger writes what Tune's own logger writes, read back by TensorBoard."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ray.tune.logger.tensorboardx import TBXLoggerCallback
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tuning_service.raytune import tensorboard
from tuning_service.raytune.tensorboard import TensorBoardLogger, tensorboard_loggers


class _Trial:
    """What a logger reads of Tune's trial: its folder and its searched parameters."""

    def __init__(self, path: Path) -> None:
        self.local_path = str(path)
        self.evaluated_params = {"learning_rate": 0.01, "units": 32, "activation": "relu"}

    def init_local_path(self) -> None:
        Path(self.local_path).mkdir(parents=True, exist_ok=True)


def _result(epoch: int, **extra: Any) -> dict[str, Any]:
    # The keys of a real epoch's result.json (a digits trial), numbers varied by epoch.
    return {
        "loss": 1.0 / epoch,
        "accuracy": 0.5 + 0.1 * epoch,
        "val_loss": float("nan") if epoch == 2 else 0.4 / epoch,
        "val_accuracy": np.float32(0.8 + 0.01 * epoch),
        "epoch": epoch,
        "train_time_s": 0.02 * epoch,
        "diverged": False,
        "node_ip": "127.0.0.1",
        "done": epoch == 3,
        "training_iteration": epoch,
        "trial_id": "265d4554",
        "timestamp": 1796457575 + epoch,
        "time_this_iter_s": 0.04,
        "time_total_s": 0.04 * epoch,
        "pid": 10107,
        "config": {"learning_rate": 0.01, "units": 32},
        "time_since_restore": 0.04 * epoch,
        "iterations_since_restore": epoch,
        "nested": {"a": epoch, "b": "text"},
        **extra,
    }


def _read(folder: Path) -> tuple[dict[str, list[tuple[int, float]]], list[str], list[str]]:
    """Each scalar's (step, value) series, the HParams plugin's tags and the histogram tags in ``folder``."""
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    tags = events.Tags()
    scalars = {
        tag: [(e.step, pytest.approx(e.value, rel=1e-6)) for e in events.Scalars(tag)]
        for tag in tags["scalars"]
    }
    try:
        hparams = sorted(events.PluginTagToContent("hparams"))
    except KeyError:  # none written yet
        hparams = []
    return scalars, hparams, sorted(tags["histograms"])


def _log(logger: TBXLoggerCallback, folder: Path, results: list[dict[str, Any]]) -> None:
    trial = _Trial(folder)
    logger.log_trial_start(trial)  # type: ignore[arg-type]
    for result in results:
        logger.log_trial_result(result["training_iteration"], trial, result)  # type: ignore[arg-type]
    logger.log_trial_end(trial)  # type: ignore[arg-type]


def test_the_event_files_hold_what_tunes_logger_writes(tmp_path):
    tensorboard.load_tensorboard_writer()
    results = [_result(epoch) for epoch in (1, 2, 3)]
    _log(TBXLoggerCallback(), tmp_path / "tune", results)
    _log(TensorBoardLogger(), tmp_path / "ours", results)

    theirs, ours = _read(tmp_path / "tune"), _read(tmp_path / "ours")
    assert ours == theirs
    scalars, hparams, histograms = ours
    assert scalars["ray/tune/val_accuracy"] == [(1, pytest.approx(0.81)), (2, pytest.approx(0.82)), (3, 0.83)]
    assert [step for step, _ in scalars["ray/tune/val_loss"]] == [1, 3]  # NaN is left out
    assert "ray/tune/nested/a" in scalars and "ray/tune/pid" not in scalars
    assert "_hparams_/session_start_info" in hparams and histograms == []
    assert [p.name.split(".")[:3] for p in (tmp_path / "ours").iterdir()] == [["events", "out", "tfevents"]]


def test_a_list_a_trainable_reports_is_left_out_with_one_warning(tmp_path, caplog):
    tensorboard.load_tensorboard_writer()
    results = [_result(epoch, weights=[0.1, 0.2, epoch]) for epoch in (1, 2, 3)]
    _log(TBXLoggerCallback(), tmp_path / "tune", [_result(epoch) for epoch in (1, 2, 3)])
    with caplog.at_level("WARNING", logger=tensorboard.__name__):
        _log(TensorBoardLogger(), tmp_path / "ours", results)

    assert _read(tmp_path / "ours") == _read(tmp_path / "tune")  # the numbers, no histogram
    assert [r.getMessage() for r in caplog.records] == [
        "TensorBoard files hold numbers only: 'weights' is left out (it is in result.json)"
    ]


def test_a_running_trials_epochs_are_written_out_once_the_oldest_is_flush_s_old(tmp_path, monkeypatch):
    monkeypatch.setattr(tensorboard, "FLUSH_S", 0.2)
    tensorboard.load_tensorboard_writer()
    logger, trial = TensorBoardLogger(), _Trial(tmp_path)
    logger.log_trial_start(trial)  # type: ignore[arg-type]
    try:
        logger.log_trial_result(1, trial, _result(1))  # type: ignore[arg-type]
        logger.log_trial_result(2, trial, _result(2))  # type: ignore[arg-type]
        logger.on_step_end(2, [])
        assert _read(tmp_path)[0] == {}  # in the file's buffer, not written out yet
        time.sleep(0.25)
        logger.on_step_end(3, [])  # the driver's next step, the trial still training
        assert _read(tmp_path)[0]["ray/tune/accuracy"] == [(1, 0.6), (2, 0.7)]
    finally:
        logger.log_trial_end(trial)  # type: ignore[arg-type]


def test_tunes_switch_for_its_loggers_turns_this_one_off(monkeypatch):
    monkeypatch.setenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    assert tensorboard_loggers() == []
    monkeypatch.setenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "0")
    assert [type(c) for c in tensorboard_loggers()] == [TensorBoardLogger]


def test_a_trial_restarted_within_the_second_keeps_its_first_file(tmp_path):
    tensorboard.load_tensorboard_writer()
    logger = TensorBoardLogger()
    _log(logger, tmp_path, [_result(1), _result(2)])
    _log(logger, tmp_path, [_result(1)])  # the same trial's folder, started again at once

    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
    assert [step for step, _ in _read(tmp_path)[0]["ray/tune/loss"]] == [1, 2, 1]
