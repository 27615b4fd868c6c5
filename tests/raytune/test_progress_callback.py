"""The live progress view's counts, fed made-up Tune trial events (no Ray, no training)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tuning_service.core.progress import Snapshot
from tuning_service.raytune.callbacks import ProgressCallback


@dataclass
class FakeTrial:
    trial_id: str
    status: str = "PENDING"
    config: dict = field(default_factory=dict)


class AllTrials(list):
    """The sweep's every trial, as Tune passes it: an event must not walk it (thousands of trials)."""

    def __iter__(self):
        raise AssertionError("a progress event walked every trial of the sweep")


def test_running_counts_follow_starts_pauses_and_ends_without_walking_every_trial():
    snapshot = Snapshot(total=4, metric="val_accuracy", mode="max", max_epochs=3)
    seen: list[int] = []
    callback = ProgressCallback(snapshot, lambda s: seen.append(s.running), lambda c: c)
    trials = AllTrials(FakeTrial(f"t{i}") for i in range(4))
    a, b, c = trials[0], trials[1], trials[2]

    def start(trial):
        callback.on_trial_start(0, trials, trial)  # before Tune marks it RUNNING
        trial.status = "RUNNING"

    start(a)
    start(b)
    callback.on_trial_result(0, trials, a, {"val_accuracy": 0.5, "training_iteration": 1})
    assert seen == [1, 2, 2] and snapshot.best == 0.5
    b.status = "PAUSED"  # Hyperband pauses b; c takes its slot
    start(c)
    assert seen[-1] == 2
    callback.on_trial_result(0, trials, a, {"val_accuracy": 0.7, "training_iteration": 3})
    callback.on_trial_complete(0, trials, a)  # Tune calls this while a is still RUNNING
    assert seen[-1] == 1 and snapshot.epochs == 2
    start(b)  # b resumes
    assert seen[-1] == 2
    c.status = "ERROR"
    callback.on_trial_error(0, trials, c)
    assert seen[-1] == 1 and snapshot.errored == 1


def test_the_callbacks_saved_state_does_not_grow_with_ended_trials():
    """Tune pickles the callback into every snapshot: ended trials must not pile up in it."""
    import pickle

    def state_after(n: int) -> int:
        snapshot = Snapshot(total=n, metric="val_accuracy", mode="max", max_epochs=1)
        callback = ProgressCallback(snapshot, None, dict)  # as Tune pickles it: a module-level function
        trials = AllTrials()
        for i in range(n):
            trial = FakeTrial(f"t{i}", config={"units": i % 7})
            callback.on_trial_start(0, trials, trial)
            trial.status = "RUNNING"
            callback.on_trial_result(0, trials, trial, {"val_accuracy": i / n, "training_iteration": 1})
            callback.on_trial_complete(0, trials, trial)
            trial.status = "TERMINATED"
        return len(pickle.dumps(callback))

    assert state_after(500) < state_after(10) + 200
