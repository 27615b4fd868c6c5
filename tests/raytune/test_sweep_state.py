"""Scheduler state that Tune's snapshot would lose, and a per-trial epoch cap that survives retries."""

from __future__ import annotations

import pickle

from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from tuning_service.raytune.schedulers.state import SchedulerState
from tuning_service.raytune.stoppers import EpochBudget, EpochCap


class _Controller:
    """What ASHA asks of the controller: nothing here."""

    def get_live_trials(self):
        return []


def _trial(trial_id: str) -> Trial:
    return Trial("noop", config={}, trial_id=trial_id, stub=True)


def test_asha_rungs_survive_a_restore_with_new_trial_objects():
    asha = ASHAScheduler(metric="acc", mode="max", max_t=9, grace_period=1, reduction_factor=3)
    old = [_trial(f"t{i}") for i in range(3)]
    for i, trial in enumerate(old):
        asha.on_trial_add(_Controller(), trial)
        asha.on_trial_result(_Controller(), trial, {"training_iteration": 1, "acc": 0.1 * (i + 1)})
    saved = pickle.loads(pickle.dumps(SchedulerState(asha).get_state()))  # as Tune writes it to disk

    fresh = ASHAScheduler(metric="acc", mode="max", max_t=9, grace_period=1, reduction_factor=3)
    new = [_trial(f"t{i}") for i in range(3)]  # a restore makes new Trial objects, same ids
    for trial in new:
        fresh.on_trial_add(_Controller(), trial)
    state = SchedulerState(fresh)
    state.set_state(saved)
    state.on_step_begin(0, new)
    # The rung remembers 0.1..0.3: a new trial at 0.15 is below the top third and is stopped.
    late = _trial("t3")
    fresh.on_trial_add(_Controller(), late)
    decision = fresh.on_trial_result(_Controller(), late, {"training_iteration": 1, "acc": 0.15})
    assert decision == TrialScheduler.STOP
    # Without the restored state, the same trial would be the rung's first value and go on.
    blank = ASHAScheduler(metric="acc", mode="max", max_t=9, grace_period=1, reduction_factor=3)
    blank.on_trial_add(_Controller(), late)
    assert (
        blank.on_trial_result(_Controller(), late, {"training_iteration": 1, "acc": 0.15})
        == TrialScheduler.CONTINUE
    )


def test_epoch_cap_reads_the_epoch_not_the_number_of_results():
    cap = EpochCap(3)
    results = [1, 2, 2, 3]  # epoch 2 reported twice: the trial was retried from epoch 1's checkpoint
    assert [cap("t", {"training_iteration": e}) for e in results] == [False, False, False, True]


def test_epoch_budget_counts_epochs_spent_before_a_resume():
    budget = EpochBudget(5, spent=4)
    assert not budget.stop_all()
    budget("t", {"training_iteration": 1})
    assert budget.stop_all()


def test_hyperband_brackets_survive_a_restore():
    # Before: Hyperband's two lambdas made its state unpicklable, so a resumed Hyperband or
    # BOHB sweep forgot its brackets (and logged a warning at every snapshot).
    from tuning_service.raytune.schedulers import create_scheduler

    for name in ("hyperband", "bohb"):
        scheduler = create_scheduler(name, max_t=9)
        scheduler.set_search_properties("acc", "max")
        old = [_trial(f"t{i}") for i in range(4)]
        for trial in old:
            scheduler.on_trial_add(_Controller(), trial)
        saved = SchedulerState(scheduler).get_state()
        assert saved is not None, name
        fresh = create_scheduler(name, max_t=9)
        fresh.set_search_properties("acc", "max")
        state = SchedulerState(fresh)
        state.set_state(pickle.loads(pickle.dumps(saved)))
        new = [_trial(f"t{i}") for i in range(4)]
        state.on_step_begin(0, new)
        assert sorted(t.trial_id for t in fresh._trial_info) == ["t0", "t1", "t2", "t3"], name
        assert all(fresh._trial_info[t][0] is not None for t in new)
        assert fresh._get_n0(0) == scheduler._get_n0(0)  # the constructor's functions stay
