"""Schedulers: the registry passes options through and refuses unknown ones (no Ray started).

Ray's own ASHA/Hyperband logic is Ray's to test; here we check our factories and
feed a scheduler made-up results to see it decide in epochs.
"""

from __future__ import annotations

import pytest

from tuning_service.core.errors import InputError
from tuning_service.raytune.schedulers import SCHEDULERS, create_scheduler, validate_scheduler


def test_options_pass_through_unchanged():
    asha = create_scheduler("asha", max_t=27, grace_period=3, reduction_factor=3)
    assert asha._max_t == 27 and asha._time_attr == "training_iteration"
    assert [r[0] for r in asha._brackets[0]._rungs] == [27, 9, 3]
    hyperband = create_scheduler("hyperband", max_t=9, reduction_factor=3)
    assert hyperband._max_t_attr == 9
    bohb = create_scheduler("bohb", max_t=9, reduction_factor=3, stop_last_trials=False)
    assert type(bohb).__name__ == "HyperBandForBOHB" and bohb._max_t_attr == 9 and not bohb._stop_last_trials
    median = create_scheduler("median", max_t=5, grace_period=2, min_samples_required=4)
    assert median._grace_period == 2 and median._min_samples_required == 4


def test_grace_period_never_exceeds_the_budget():
    asha = create_scheduler("asha", max_t=2, grace_period=5)
    assert asha._brackets[0]._rungs[-1][0] <= 2


def test_every_registered_scheduler_builds():
    from tuning_service.core.space import Float, Space

    space = Space({"learning_rate": Float(1e-4, 1e-1, log=True)})
    assert set(SCHEDULERS.names()) == {"fifo", "asha", "hyperband", "median", "pbt", "bohb"}
    for name in SCHEDULERS.names():
        assert create_scheduler(name, max_t=3, space=space) is not None


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        (
            "ashaa",
            {},
            r"unknown scheduler 'ashaa'; choose one of: asha, bohb, fifo, hyperband, median, pbt \(did you mean 'asha'\?\)",
        ),
        (
            "asha",
            {"grace": 2},
            r"scheduler 'asha': unknown option 'grace' \(accepted: brackets, grace_period, reduction_factor\) \(did you mean 'grace_period'\?\)",
        ),
        ("fifo", {"max_t": 3}, r"scheduler 'fifo': unknown option 'max_t' \(accepted: none\)"),
    ],
)
def test_unknown_names_and_options_are_refused(name, options, message):
    with pytest.raises(InputError, match=message):
        validate_scheduler(name, options)


def test_asha_stops_the_worse_trial_at_its_first_rung_in_epochs():
    from ray.tune.experiment import Trial
    from ray.tune.schedulers import TrialScheduler

    asha = create_scheduler("asha", max_t=4, grace_period=1, reduction_factor=2)
    asha.set_search_properties("val_accuracy", "max")
    good, bad = Trial("t", config={}, stub=True), Trial("t", config={}, stub=True)
    for trial in (good, bad):
        asha.on_trial_add(None, trial)
    first = asha.on_trial_result(None, good, {"training_iteration": 1, "val_accuracy": 0.9})
    second = asha.on_trial_result(None, bad, {"training_iteration": 1, "val_accuracy": 0.1})
    assert (first, second) == (TrialScheduler.CONTINUE, TrialScheduler.STOP)


class _Controller:
    """What Tune hands a scheduler: every trial in the order it was added, and the live ones."""

    def __init__(self, trials):
        self.trials = trials

    def get_trials(self):
        return self.trials

    def get_live_trials(self):
        # A set, as Tune's: no order to rely on.
        return {t for t in self.trials if t.status not in ("TERMINATED", "ERROR")}


class _Trial:
    def __init__(self, trial_id, status):
        self.trial_id, self.status = trial_id, status

    def __repr__(self):
        return f"{self.trial_id}:{self.status}"


@pytest.mark.parametrize("name", ["fifo", "asha", "median"])
def test_the_next_trial_is_the_one_rays_scheduler_picks_among_live_trials_only(name):
    import random

    from ray.tune.schedulers import FIFOScheduler

    rng = random.Random(7)
    statuses = ["PENDING", "PAUSED", "RUNNING", "TERMINATED", "ERROR"]
    for _ in range(200):
        trials = [_Trial(f"t{i:03d}", rng.choice(statuses)) for i in range(rng.randrange(0, 40))]
        controller = _Controller(trials)
        ours = create_scheduler(name, max_t=9)
        ours.set_search_properties("acc", "max")  # as Tune does before adding trials
        for trial in trials:
            ours.on_trial_add(controller, trial)
        for trial in rng.sample(trials, k=len(trials) // 3):  # some end: they leave the order
            if trial.status in ("TERMINATED", "ERROR"):
                ours.on_trial_remove(controller, trial)
        assert ours.choose_trial_to_run(controller) is FIFOScheduler().choose_trial_to_run(controller)


def test_choosing_the_next_trial_does_not_walk_ended_trials():
    class Walked(list):
        def __iter__(self):
            raise AssertionError("walked every trial of the sweep")

    live = _Trial("t2", "PENDING")
    controller = _Controller([_Trial("t0", "TERMINATED"), _Trial("t1", "TERMINATED"), live])
    asha = create_scheduler("asha", max_t=9)
    asha.set_search_properties("acc", "max")
    for trial in controller.trials:
        asha.on_trial_add(controller, trial)
    controller.get_trials = lambda: Walked(controller.trials)
    assert asha.choose_trial_to_run(controller) is live
