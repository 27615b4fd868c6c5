"""A sweep's trials keep lean run metadata: no last-n windows, unindented JSON, what Tune restores."""

from __future__ import annotations

import json

import pytest
from ray.tune.experiment import Trial
from ray.tune.trainable.metadata import _TrainingRunMetadata

from tuning_service.raytune.trialmetadata import lean_run_metadata


def _trial(results: int) -> Trial:
    trial = Trial("KerasTrainable", config={"units": 8}, stub=True, trial_id="t1")
    for epoch in range(1, results + 1):
        trial.update_last_result(
            {"training_iteration": epoch, "val_accuracy": 0.5 + 0.1 * epoch, "loss": 1.0 / epoch}
        )
    return trial


def test_a_new_trial_keeps_no_windows_and_encodes_unindented():
    with lean_run_metadata():
        trial = _trial(3)
        encoded = trial.run_metadata.get_json_state()
    assert "\n" not in encoded
    state = json.loads(encoded)
    assert state["metric_n_steps"] == {
        "training_iteration": {},
        "val_accuracy": {},
        "loss": {},
    }  # no pickled windows
    assert state["metric_analysis"]["val_accuracy"] == pytest.approx(
        {"max": 0.8, "min": 0.6, "avg": 0.7, "last": 0.8}
    )
    restored = _TrainingRunMetadata.from_json_state(encoded)
    assert restored.metric_analysis == trial.metric_analysis
    assert restored.last_result == trial.last_result
    restored.update_metric("val_accuracy", 0.9, step=4)  # and it trains on after a resume
    assert restored.metric_analysis["val_accuracy"]["max"] == 0.9


def test_the_encoding_follows_the_metadata_as_it_changes():
    with lean_run_metadata():
        trial = _trial(1)
        first = trial.run_metadata.get_json_state()
        assert trial.run_metadata.get_json_state() is first  # cached until it changes, as Tune's
        trial.update_last_result({"training_iteration": 2, "val_accuracy": 0.9, "loss": 0.4})
        assert (
            json.loads(trial.run_metadata.get_json_state())["metric_analysis"]["val_accuracy"]["last"] == 0.9
        )


def test_a_trial_from_an_older_snapshot_keeps_its_windows():
    windowed = _trial(3).run_metadata.get_json_state()  # Tune's own, outside the sweep
    with lean_run_metadata():
        restored = _TrainingRunMetadata.from_json_state(windowed)
        restored.update_metric("val_accuracy", 0.2, step=4)
        assert restored.metric_analysis["val_accuracy"]["last-5-avg"] == pytest.approx(
            (0.6 + 0.7 + 0.8 + 0.2) / 4
        )
        again = _TrainingRunMetadata.from_json_state(restored.get_json_state())
    assert again.metric_analysis == restored.metric_analysis
    assert list(again.metric_n_steps["val_accuracy"]["5"]) == pytest.approx([0.6, 0.7, 0.8, 0.2])


def test_tunes_metadata_is_back_after_the_sweep():
    with lean_run_metadata():
        pass
    trial = _trial(2)
    assert trial.metric_analysis["loss"]["last-10-avg"] == pytest.approx(0.75)
    assert "\n" in trial.run_metadata.get_json_state()


def test_a_ray_whose_tune_keeps_metadata_elsewhere_gets_tunes_own(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray.tune.trainable.metadata", None)  # the import fails
    with lean_run_metadata():
        trial = _trial(2)
    assert trial.metric_analysis["loss"]["last-10-avg"] == pytest.approx(0.75)
