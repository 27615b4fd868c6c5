"""StallGuard (`raytune.stallguard`) and its setting (`core.stall`): a sweep in which no trial has
run for the wait is stopped with one line; a long epoch or a trial's events keep it going."""

from __future__ import annotations

import os
import pickle

import pytest
from ray.tune.experiment import Trial

from tuning_service.core.envvars import env_restored
from tuning_service.core.errors import InputError, SweepStopped
from tuning_service.core.stall import DEFAULT_STALL_S, STALL_ENV, stall_seconds
from tuning_service.raytune.stallguard import StallGuard


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _trials(*statuses: str) -> list[Trial]:
    trials = []
    for i, status in enumerate(statuses):
        trial = Trial("noop", config={}, trial_id=f"t{i}", stub=True)
        trial.set_status(status)
        trials.append(trial)
    return trials


def test_a_sweep_in_which_no_trial_runs_for_the_wait_is_stopped_with_how_to_resume_it():
    clock = _Clock()
    guard = StallGuard(60, "SWEEP", clock)
    trials = _trials(Trial.PENDING, Trial.PAUSED, Trial.PAUSED, Trial.TERMINATED)
    guard.on_step_begin(0, trials)  # the wait starts with the first step
    clock.now += 59.9
    guard.on_step_begin(1, trials)
    clock.now += 0.1
    with pytest.raises(SweepStopped) as stopped:
        guard.on_step_begin(2, trials)
    message = str(stopped.value)
    assert "no trial has run for 60 s (trials waiting: 2 paused, 1 pending)" in message
    assert "`tuning-service resume SWEEP`" in message and STALL_ENV in message
    assert len(message.splitlines()) == 1


def test_a_trials_events_and_a_long_epoch_keep_the_sweep_going():
    clock = _Clock()
    guard = StallGuard(60, "SWEEP", clock)
    waiting = _trials(Trial.PENDING)
    guard.on_step_begin(0, waiting)
    # A result (or a start, an end) within the wait starts it again.
    for hook in (guard.on_trial_start, guard.on_trial_result, guard.on_trial_complete, guard.on_trial_error):
        clock.now += 50
        hook(0, waiting, waiting[0], result={})
        clock.now += 50
        guard.on_step_begin(1, waiting)
    # An epoch longer than the wait: its trial reports nothing, but is RUNNING all the while.
    running = _trials(Trial.RUNNING, Trial.PENDING)
    clock.now += 500
    guard.on_step_begin(2, running)
    clock.now += 59
    guard.on_step_begin(3, waiting)  # 59 s since the running trial was seen
    clock.now += 1
    with pytest.raises(SweepStopped):
        guard.on_step_begin(4, waiting)


def test_a_wait_of_0_never_stops_a_sweep_and_a_resumed_sweeps_wait_starts_anew():
    clock = _Clock()
    off = StallGuard(0, "SWEEP", clock)
    off.on_step_begin(0, _trials(Trial.PENDING))
    clock.now += 10**6
    off.on_step_begin(1, _trials(Trial.PENDING))
    guard = StallGuard(60, "SWEEP", clock)
    guard.on_step_begin(0, [])
    restored = pickle.loads(pickle.dumps(guard))  # as Tune keeps callbacks in its snapshot
    clock.now += 10**6
    restored.on_step_begin(0, _trials(Trial.PENDING))  # the first step of the resumed run


def test_the_wait_is_600_s_on_the_embedded_ray_off_on_a_cluster_and_set_by_the_environment():
    with env_restored(STALL_ENV):
        assert stall_seconds(embedded=True) == DEFAULT_STALL_S == 600
        assert stall_seconds(embedded=False) == 0
        os.environ[STALL_ENV] = "90"
        assert stall_seconds(embedded=True) == stall_seconds(embedded=False) == 90
        os.environ[STALL_ENV] = "0"
        assert stall_seconds(embedded=True) == 0
        for bad in ("-1", "abc", "inf"):
            os.environ[STALL_ENV] = bad
            with pytest.raises(InputError, match=f"{STALL_ENV} must be a number of seconds >= 0"):
                stall_seconds(embedded=True)
