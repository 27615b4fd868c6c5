"""Scheduler state that Tune's snapshot would lose, and a per-trial epoch cap that survives retries."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import pytest
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


def _ignore(trial_id: str) -> None:
    """The BOHB searcher's pause and unpause notes: nothing to note here."""


class _Tune:
    """What Hyperband asks of Tune's controller, done as Tune does it: a paused trial it stops
    leaves its bracket (`on_trial_remove`) and ends TERMINATED; ``marked`` holds the trials
    Tune would re-serialise in its next snapshot."""

    def __init__(self, scheduler, trials: list[Trial]) -> None:
        self.scheduler, self.trials = scheduler, trials
        self.stopped: list[str] = []
        self.marked: set[str] = set()
        self.paused_in_searcher: set[str] = set()  # BOHB's searcher's notes
        self.search_alg = SimpleNamespace(
            searcher=SimpleNamespace(
                on_pause=self.paused_in_searcher.add, on_unpause=self.paused_in_searcher.discard
            )
        )

    def get_trials(self) -> list[Trial]:
        return self.trials

    def get_live_trials(self) -> list[Trial]:
        return [t for t in self.trials if t.status != Trial.TERMINATED]

    def stop_trial(self, trial: Trial) -> None:
        if trial.status in (Trial.PENDING, Trial.PAUSED):
            self.scheduler.on_trial_remove(self, trial)
        self.stopped.append(trial.trial_id)
        trial.set_status(Trial.TERMINATED)

    def _mark_trial_to_checkpoint(self, trial: Trial) -> None:
        self.marked.add(trial.trial_id)

    def _set_trial_status(self, trial: Trial, status: str) -> None:
        trial.set_status(status)


def _hyperband(name: str):
    from tuning_service.raytune.schedulers import create_scheduler

    scheduler = create_scheduler(name, max_t=3)
    scheduler.set_search_properties("acc", "max")
    return scheduler


def _fill_until_a_bracket_halves_at_epoch_1(scheduler, tune: _Tune) -> list[Trial]:
    """Adds trials as Tune does until one bracket of three halves after epoch 1; its trials."""
    while True:
        trial = _trial(f"t{len(tune.trials)}")
        tune.trials.append(trial)
        scheduler.on_trial_add(tune, trial)
        bracket = scheduler._trial_info[trial][0]
        if bracket._cumul_r == 1 and bracket.filled():
            return [t for t in tune.trials if scheduler._trial_info[t][0] is bracket]


def _resumed(name: str, tune: _Tune, saved: dict, replayed: frozenset[str] = frozenset()):
    """The sweep resumed from ``saved``: Tune brings every unfinished trial back PENDING, as new
    Trial objects, and the snapshot's scheduler state is put back on the first step. The new
    scheduler, its controller, and the restored trials by id."""
    fresh = _hyperband(name)
    restored = [_trial(t.trial_id) for t in tune.trials]
    resumed = _Tune(fresh, restored)
    for trial in restored:
        fresh.on_trial_add(resumed, trial)
    state = SchedulerState(fresh, replayed=replayed)
    state.set_state(saved)
    state.on_step_begin(0, restored)
    return fresh, resumed, {t.trial_id: t for t in restored}


@pytest.mark.parametrize("name", ["hyperband", "bohb"])
def test_a_resumed_hyperband_stops_the_trials_it_had_stopped_before_the_kill(name):
    # The interrupted sweep: three trials reach epoch 1; the last one's result halves the
    # bracket, which keeps the best, stops the paused one and stops the reporting one.
    scheduler = _hyperband(name)
    tune = _Tune(scheduler, [])
    best, paused, reporting = _fill_until_a_bracket_halves_at_epoch_1(scheduler, tune)
    for trial, acc in ((best, 0.9), (paused, 0.5), (reporting, 0.1)):
        trial.set_status(Trial.RUNNING)
        decision = scheduler.on_trial_result(tune, trial, {"training_iteration": 1, "acc": acc})
        if decision == TrialScheduler.PAUSE:
            trial.set_status(Trial.PAUSED)
    assert decision == TrialScheduler.STOP and tune.stopped == [paused.trial_id]
    # The paused trial's new status must reach Tune's next snapshot, though it reports nothing more.
    assert paused.trial_id in tune.marked
    saved = pickle.loads(pickle.dumps(SchedulerState(scheduler).get_state()))

    # The snapshot Tune could have written then: the reporting trial still RUNNING (its stop
    # waits on its checkpoint's save) and, before the mark, the stopped trial still PAUSED.
    # Tune restores both as PENDING, with the rest of the sweep. The results store saw the
    # paused trial finish: it replays its recorded outcome when run.
    fresh, resumed, by_id = _resumed(name, tune, saved, replayed=frozenset({paused.trial_id}))

    chosen = fresh.choose_trial_to_run(resumed)
    assert resumed.stopped == [reporting.trial_id]
    assert chosen is not None and chosen.trial_id not in (paused.trial_id, reporting.trial_id)
    # The kept trial goes on from its epoch-1 checkpoint, in the bracket it was in.
    kept = by_id[best.trial_id]
    kept.set_status(Trial.RUNNING)
    assert (
        fresh.on_trial_result(resumed, kept, {"training_iteration": 2, "acc": 0.95})
        == TrialScheduler.CONTINUE
    )


@pytest.mark.parametrize("name", ["hyperband", "bohb"])
def test_a_resumed_hyperband_keeps_waiting_trials_paused_until_their_bracket_halves(name):
    # The interrupted sweep: two trials of a bracket of three reached epoch 1 and wait, paused,
    # for the third, which was still training its first epoch when the driver was killed.
    scheduler = _hyperband(name)
    tune = _Tune(scheduler, [])
    worse, best, late = _fill_until_a_bracket_halves_at_epoch_1(scheduler, tune)
    for trial, acc in ((worse, 0.1), (best, 0.9)):
        trial.set_status(Trial.RUNNING)
        assert (
            scheduler.on_trial_result(tune, trial, {"training_iteration": 1, "acc": acc})
            == TrialScheduler.PAUSE
        )
        trial.set_status(Trial.PAUSED)
    saved = pickle.loads(pickle.dumps(SchedulerState(scheduler).get_state()))

    # Tune brings every unfinished trial back PENDING, and starts every PENDING trial.
    fresh, resumed, by_id = _resumed(name, tune, saved)

    waiting = (by_id[worse.trial_id], by_id[best.trial_id])
    assert fresh.choose_trial_to_run(resumed) not in waiting
    assert [t.status for t in waiting] == [Trial.PAUSED, Trial.PAUSED]
    if name == "bohb":
        assert resumed.paused_in_searcher == {worse.trial_id, best.trial_id}
    # The third trial's epoch 1 halves the bracket as it would have before the kill: the worse
    # waiting trial stops, the best goes on, the third (the worst) stops.
    third = by_id[late.trial_id]
    third.set_status(Trial.RUNNING)
    decision = fresh.on_trial_result(resumed, third, {"training_iteration": 1, "acc": 0.05})
    assert decision == TrialScheduler.STOP and resumed.stopped == [worse.trial_id]
    assert by_id[best.trial_id] in fresh._trial_info[third][0].trials_to_unpause


def test_tune_still_has_the_controller_methods_the_hyperband_schedulers_use():
    # brackets.py reaches past Tune's scheduler wrapper to mark stopped trials and to pause
    # restored ones again; if Ray renames them this fails, not a resumed sweep.
    from ray.tune.execution.tune_controller import TuneController

    assert callable(TuneController._mark_trial_to_checkpoint)
    assert callable(TuneController._set_trial_status)
