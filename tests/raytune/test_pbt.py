"""PBT without Ray running: what it may perturb, that perturbed configs stay in the space, its
checkpoint settings, and that its state survives Tune's snapshot (made-up trials, no training)."""

from __future__ import annotations

import random

import pytest

from tuning_service.core.errors import InputError
from tuning_service.core.space import Choice, Fixed, Float, Int, Space
from tuning_service.raytune.schedulers import (
    checkpoint_frequency,
    checkpoints_kept,
    create_scheduler,
    validate_scheduler,
)

SPACE = Space(
    {
        "learning_rate": Float(1e-4, 1e-1, log=True),
        "units": Int(16, 256, log=True),
        "dropout": Float(0.0, 0.5),
        "batch_size": Choice((16, 32, 64)),
        "momentum": Float(0.0, 0.9, step=0.1),
        "optimizer": Fixed("adam"),
        "my_own_knob": Int(1, 9),
    }
)


def test_by_default_it_perturbs_what_can_change_mid_training():
    pbt = create_scheduler("pbt", max_t=9, space=SPACE)
    assert pbt.mutate == ("learning_rate", "dropout", "batch_size", "momentum")
    assert sorted(pbt._hyperparam_mutations) == sorted(pbt.mutate)
    assert pbt._hyperparam_mutations["batch_size"] == [16, 32, 64]  # a choice moves to a neighbour
    assert pbt._time_attr == "training_iteration"


def test_options_pass_through_unchanged():
    pbt = create_scheduler(
        "pbt",
        max_t=9,
        space=SPACE,
        perturbation_interval=2,
        quantile_fraction=0.5,
        resample_probability=0.0,
        burn_in_period=1,
        synch=True,
        mutate="learning_rate, my_own_knob",  # a job's own builder's setting may be named
    )
    assert (pbt._perturbation_interval, pbt._quantile_fraction, pbt._resample_probability) == (2, 0.5, 0.0)
    assert (pbt._burn_in_period, pbt._synch) == (1, True)
    assert pbt.mutate == ("learning_rate", "my_own_knob")


@pytest.mark.parametrize(
    ("options", "space", "message"),
    [
        (
            {"mutate": ["optimizer"]},
            SPACE,
            r"cannot perturb 'optimizer': another optimizer keeps other state",
        ),
        (
            {"mutate": "units_2"},
            Space({"units_2": Int(8, 64)}),
            r"cannot perturb 'units_2': it changes the model's layers",
        ),
        ({"mutate": "x"}, Space({"x": Fixed(3)}), r"cannot perturb 'x': it is fixed at 3"),
        (
            {},
            Space({"units": Int(8, 64), "activation": Choice(("relu", "tanh"))}),
            r"scheduler 'pbt': the space has no hyperparameter that can change mid-training \(its parameters: "
            r"units, activation; PBT perturbs learning_rate, batch_size, .*\); add one of these to the space, "
            r"or name one with --scheduler-option mutate=NAME",
        ),
        (
            {"perturbation_interval": 9},
            SPACE,
            r"perturbation_interval 9 must be shorter than the epoch budget \(9",
        ),
    ],
)
def test_what_pbt_cannot_do_is_refused_before_ray_starts(options, space, message):
    with pytest.raises(InputError, match=message):
        validate_scheduler("pbt", options, searcher="random", space=space, max_t=9)


def test_a_model_based_searcher_is_refused():
    for searcher in ("optuna", "hyperopt"):
        with pytest.raises(InputError, match=f"works with searcher grid or random .*, not '{searcher}'"):
            validate_scheduler("pbt", {}, searcher=searcher, space=SPACE, max_t=9)
    validate_scheduler("pbt", {}, searcher="grid", space=SPACE, max_t=9)


def test_it_checkpoints_every_interval_and_keeps_more_checkpoints():
    assert checkpoint_frequency("pbt", None, {"perturbation_interval": 2}) == 2
    assert checkpoint_frequency("pbt", None, {}) == 3
    assert checkpoint_frequency("pbt", 1, {"perturbation_interval": 2}) == 1
    assert checkpoints_kept("pbt", 2) == 4 and checkpoints_kept("asha", 2) == 2


class _Trial:
    def __init__(self, trial_id, config):
        self.trial_id, self.config = trial_id, config


def test_perturbed_configs_stay_inside_the_space():
    space = Space(
        {
            "learning_rate": Float(1e-3, 1e-1, log=True),
            "dropout": Float(0.0, 0.5),
            "momentum": Float(0.0, 0.9, step=0.1),
            "patience": Int(2, 5),
        }
    )
    pbt = create_scheduler("pbt", max_t=9, space=space, mutate="learning_rate,dropout,momentum,patience")
    random.seed(0)
    edges = [
        {"learning_rate": 0.1, "dropout": 0.5, "momentum": 0.9, "patience": 5},
        {"learning_rate": 1e-3, "dropout": 0.0, "momentum": 0.0, "patience": 2},
    ]
    for n in range(300):
        donor = edges[n % 2]
        new, _ = pbt._get_new_config(_Trial("a", {}), _Trial("b", dict(donor)))
        assert all(space[k].contains(v) for k, v in new.items()), new
        # 0 means no dropout layer: the copied weights fit only a model with the donor's layers.
        assert (new["dropout"] == 0) == (donor["dropout"] == 0)
        assert isinstance(new["patience"], int)
        assert round(new["momentum"] * 10, 9) == round(new["momentum"] * 10)


def test_its_state_survives_tunes_snapshot_without_saves_in_flight():
    from ray.tune.experiment import Trial
    from ray.tune.schedulers.pbt import _FutureTrainingResult, _PBTTrialState

    from tuning_service.raytune.schedulers.state import SchedulerState

    pbt = create_scheduler("pbt", max_t=9, space=SPACE)
    pbt.set_search_properties("val_accuracy", "max")
    trials = [Trial("t", config={}, stub=True) for _ in range(2)]
    for trial in trials:
        pbt._trial_state[trial] = _PBTTrialState(trial)
        pbt._trial_state[trial].last_score = 0.5
    pbt._trial_state[trials[0]].last_checkpoint = _FutureTrainingResult.__new__(_FutureTrainingResult)
    pbt.exploits.append({"number": 1, "trial_id": trials[1].trial_id})
    pbt.exploit_count = 1
    state = SchedulerState(pbt).get_state()
    assert state is not None
    restored = create_scheduler("pbt", max_t=9, space=SPACE)
    keeper = SchedulerState(restored)
    keeper.set_state(state)
    keeper.on_step_begin(0, trials)
    assert (
        restored.exploits == [{"number": 1, "trial_id": trials[1].trial_id}] and restored.exploit_count == 1
    )
    assert {t.trial_id for t in restored._trial_state} == {t.trial_id for t in trials}
    assert all(s.last_checkpoint is None and s.last_score == 0.5 for s in restored._trial_state.values())


def _exploited(tmp_path, monkeypatch, decision=None):
    """A paused trial exploiting a donor that has a checkpoint, through Ray's own controller (built
    without Ray running): (controller, trial, its config before, the donor's checkpoint folder)."""
    from ray.train import Checkpoint
    from ray.train._internal.checkpoint_manager import _CheckpointManager
    from ray.train._internal.storage import StorageContext
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.experiment import Trial
    from ray.tune.schedulers.pbt import _PBTTrialState

    monkeypatch.setenv("TUNE_MAX_PENDING_TRIALS_PG", "2")  # else Tune asks Ray for the CPU count
    controller = TuneController(storage=StorageContext(str(tmp_path / "runs"), "sweep"))
    pbt = create_scheduler("pbt", max_t=9, space=SPACE, synch=True)
    pbt.set_search_properties("val_accuracy", "max")
    config = {"learning_rate": 0.01, "units": 32, "dropout": 0.1, "batch_size": 32, "momentum": 0.5}
    trial, donor = Trial("t", config=dict(config), stub=True), Trial("t", config=dict(config), stub=True)
    for t, score in ((trial, 0.2), (donor, 0.9)):
        t.create_placement_group_factory()  # what Tune does before a trial first runs
        t.run_metadata.checkpoint_manager = _CheckpointManager(None)
        controller.add_trial(t)
        controller._set_trial_status(t, Trial.PAUSED)
        pbt._trial_state[t] = _PBTTrialState(t)
        pbt._trial_state[t].last_score = score
        pbt._trial_state[t].last_result = {"training_iteration": 2, "val_accuracy": score}
    (tmp_path / "donor").mkdir()
    pbt._trial_state[donor].last_checkpoint = Checkpoint.from_directory(tmp_path / "donor")
    if decision is not None:
        controller._cached_trial_decisions[trial.trial_id] = decision
    trial.get_json_state()  # a snapshot before the exploit caches the trial's metadata
    pbt._exploit(controller, trial, donor)
    return controller, trial, config, tmp_path / "donor"


def test_an_exploit_reaches_the_next_snapshot_of_the_trial(tmp_path, monkeypatch):
    """Tune keeps each trial's run metadata as cached JSON, and Ray's PBT hands the donor's
    checkpoint to the trial's checkpoint manager behind that cache's back: a snapshot taken after
    the exploit would hold the new config with no checkpoint, and a resumed trial would train
    the new config from scratch."""
    from ray.tune.experiment import Trial
    from ray.tune.trainable.metadata import _TrainingRunMetadata

    _, trial, config, donor_dir = _exploited(tmp_path, monkeypatch)
    trial_json, metadata_json = trial.get_json_state()
    restored = Trial.from_json_state(trial_json, stub=True)
    restored.run_metadata = _TrainingRunMetadata.from_json_state(metadata_json)
    latest = restored.run_metadata.checkpoint_manager.latest_checkpoint_result
    assert restored.config == trial.config != config
    assert latest is not None and latest.checkpoint.path == str(donor_dir)
    assert latest.metrics["training_iteration"] == 2


def test_an_exploit_leaves_no_decision_for_the_trials_next_save(tmp_path, monkeypatch):
    """What Tune keeps when PBT exploits a trial whose own save is in flight: a STOP to carry out
    once that save lands (tune_controller._schedule_trial_stop). The save is cancelled, so Tune
    would carry it out at the trial's next save, ending the trial that has just restarted from
    the donor's checkpoint; the killed driver's snapshot in which this was found held one."""
    controller, trial, _, _ = _exploited(tmp_path, monkeypatch, decision="STOP")
    assert trial.trial_id not in controller._cached_trial_decisions
