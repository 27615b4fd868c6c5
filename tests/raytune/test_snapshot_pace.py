"""The sweep's snapshot pace: Tune snapshots in every step that adds, starts, checkpoints or
ends a trial, and skips the steps that only took an epoch's result; once snapshots grow costly,
a start's, a checkpoint's or an end's waits a while, an added trial's never."""

from __future__ import annotations

import logging
import os
from collections import defaultdict

import pytest

from tuning_service.core.spec import SweepSpec
from tuning_service.raytune import snapshotpace
from tuning_service.raytune.schedulers import create_scheduler
from tuning_service.raytune.snapshotpace import FALLBACK_PERIOD_S, SnapshotPace
from tuning_service.sweeps import runner
from tuning_service.testing import tiny_job

JOB_FILE = "from tuning_service.testing import tiny_job\n\nJOB = tiny_job(max_epochs=9)\n"
# The steps whose change a resume needs (Tune's own call sites, observed by the test).
CHANGES = ("add_trial", "on_trial_start", "on_checkpoint", "on_trial_complete")


@pytest.mark.integration
def test_every_step_that_changes_a_trial_is_snapshotted_and_epoch_steps_are_not(
    ray_local, tmp_path, monkeypatch
):
    from ray.tune.execution.tune_controller import TuneController

    monkeypatch.delenv(runner.USER_SNAPSHOT_ENV, raising=False)
    monkeypatch.delenv(runner.SNAPSHOT_PERIOD_ENV, raising=False)
    monkeypatch.setattr(runner, "_TUNE_PERIOD_AT_START", None)
    # Observed at Tune's own call sites: the step of each snapshot and of each event.
    snapshots: list[int] = []
    events: dict[str, list[int]] = defaultdict(list)
    save_to_dir = TuneController.save_to_dir

    def saving(self):
        snapshots.append(self._iteration)
        save_to_dir(self)

    monkeypatch.setattr(TuneController, "save_to_dir", saving)
    add_trial = TuneController.add_trial

    def adding(self, trial):
        events["add_trial"].append(self._iteration)
        add_trial(self, trial)

    monkeypatch.setattr(TuneController, "add_trial", adding)
    monkeypatch.setattr(snapshotpace, "FALLBACK_PERIOD_S", 3600.0)  # only the pace's snapshots here
    # Every change snapshotted at once: spacing has a test of its own below.
    monkeypatch.setattr(snapshotpace, "SPACING", 0.0)

    # Observed as the pace's own hooks take them: the sweep hands callbacks that only write down
    # their events later in the step (`deferredwrites`), the pace at Tune's call.
    def observing(hook: str):
        real = getattr(SnapshotPace, hook)

        def observed(self, **info):
            events[hook].append(info["iteration"])
            real(self, **info)

        return observed

    for hook in ("on_trial_start", "on_checkpoint", "on_trial_complete", "on_trial_result"):
        monkeypatch.setattr(SnapshotPace, hook, observing(hook))

    (tmp_path / "tiny_job.py").write_text(JOB_FILE)
    spec = SweepSpec(
        job=f"{tmp_path / 'tiny_job.py'}:JOB",
        storage=str(tmp_path / "results"),
        num_samples=3,
        max_concurrent=1,
        scheduler="fifo",
        searcher="random",
        checkpoint_frequency=4,
    )
    result = runner.run_sweep(spec)

    assert [t.epochs for t in result.trials] == [9, 9, 9]
    # The period set for Tune is not left behind: a driver this process starts next would
    # take it for the user's choice (and snapshot every 10 s, without the pace).
    assert runner.SNAPSHOT_PERIOD_ENV not in os.environ
    assert len(events["on_trial_start"]) == len(events["add_trial"]) == 3
    assert len(events["on_trial_result"]) == 27 and len(events["on_checkpoint"]) == 9  # epochs 4, 8, 9
    for hook in CHANGES:
        missed = sorted(set(events[hook]) - set(snapshots))
        assert not missed, f"{hook} in steps {missed} with no snapshot (snapshots in {snapshots})"
    # The steps that only took an epoch's result (most of epochs 1-3 and 5-7) took no snapshot.
    quiet = set(events["on_trial_result"]) - {step for hook in CHANGES for step in events[hook]}
    assert len(quiet) >= 3 * 4 and not quiet & set(snapshots), (sorted(quiet), snapshots)


def test_the_pace_is_kept_by_the_schedulers_that_hand_tunes_controller_on(monkeypatch):
    monkeypatch.delenv(runner.USER_SNAPSHOT_ENV, raising=False)
    monkeypatch.setattr(runner, "_TUNE_PERIOD_AT_START", None)
    small = runner.SNAPSHOT_EVERY_STEP_UP_TO
    for name in ("fifo", "asha", "median"):
        assert runner.keeps_pace(small, create_scheduler(name, max_t=9))
        assert not runner.keeps_pace(small + 1, create_scheduler(name, max_t=9))
    # Hyperband pauses trials from checkpoints taken every epoch: each step changes a trial anyway.
    for name in ("hyperband", "pbt"):
        assert not runner.keeps_pace(small, create_scheduler(name, max_t=9, space=tiny_job().space))
    assert runner.snapshot_period(small, paced=True) == f"{FALLBACK_PERIOD_S:g}"
    monkeypatch.setenv(runner.USER_SNAPSHOT_ENV, "0")  # the user's period: no pace on top of it
    assert not runner.keeps_pace(small, create_scheduler("fifo", max_t=9))


class _Manager:
    """A checkpoint manager of a Ray that keeps its timing under other names."""

    _checkpoint_period = 10.0


class _Controller:
    def __init__(self, manager: object) -> None:
        self._checkpoint_manager = manager


def test_a_ray_without_the_timing_it_marks_snapshots_every_step_and_says_so(caplog):
    scheduler = create_scheduler("fifo", max_t=9)
    pace = SnapshotPace(scheduler)
    manager = _Manager()
    with caplog.at_level(logging.WARNING, logger="tuning_service.raytune.snapshotpace"):
        pace.attach(_Controller(manager))
        pace.attach(_Controller(manager))
        pace.attach(object())  # no checkpoint manager at all
    assert manager._checkpoint_period == 0.0
    assert [r.getMessage() for r in caplog.records] == [
        "this Ray Tune's snapshot timing is unknown: the sweep's snapshot pace is off"
    ]
    pace.due()  # marks nothing, raises nothing


@pytest.mark.integration
def test_an_end_waits_until_the_last_snapshot_is_nine_times_its_cost_old_an_add_never(ray_local, tmp_path):
    import time

    from ray.train._internal.storage import StorageContext
    from ray.tune.execution.experiment_state import _ExperimentCheckpointManager

    storage = StorageContext(storage_path=str(tmp_path), experiment_dir_name="trials")
    manager = _ExperimentCheckpointManager(storage=storage, checkpoint_period=FALLBACK_PERIOD_S)
    scheduler = create_scheduler("fifo", max_t=9)
    pace = SnapshotPace(scheduler)
    pace.attach(_Controller(manager))
    pace.attach(_Controller(manager))  # Tune hands the controller over at every step: timed once
    saved: list[float] = []

    def step(cost: float, hook: str | None) -> bool:
        """One driver step as Tune's: a trial event, the snapshot, the step's end."""
        before = len(saved)
        if hook == "on_trial_add":  # the scheduler's hook: the searcher drew a trial
            snapshotpace.snapshot_due(scheduler, _Controller(manager))
        elif hook is not None:
            getattr(pace, hook)(iteration=0, trials=[], trial=None, checkpoint=None)

        def save() -> None:  # Tune's save_to_dir, taking ``cost`` seconds
            os.makedirs(storage.experiment_driver_staging_path, exist_ok=True)
            saved.append(time.monotonic())
            time.sleep(cost)

        manager.sync_up_experiment_state(save_fn=save)
        pace.on_step_end(iteration=0, trials=[])
        return len(saved) > before

    step(0.001, "on_trial_add")  # the first also starts Tune's copy thread
    time.sleep(snapshotpace.SPACING * pace._cost)
    assert not step(0.001, None)  # no change, no snapshot
    # A start, a checkpoint or an end waits until the last snapshot (here 0.05 s) is nine times
    # its cost old, and the first step after that snapshots it, with or without a change of its own.
    assert step(0.05, "on_checkpoint")
    ended = time.monotonic()
    assert 0.05 <= pace._cost < 0.1  # Tune's save and the step's end
    for hook in ("on_trial_start", "on_checkpoint", "on_trial_complete", "on_trial_error"):
        assert not step(0.05, hook), hook
    time.sleep(max(0.0, ended + snapshotpace.SPACING * pace._cost - time.monotonic()))
    assert step(0.05, None)
    assert saved[-1] - saved[-2] >= snapshotpace.SPACING * 0.05
    assert not step(0.05, None)
    # A trial the searcher drew, or one restored or retried, never waits: a killed driver forgets
    # no trial the searcher drew.
    for hook in ("on_trial_add", "on_trial_restore", "on_trial_recover"):
        assert step(0.05, hook), hook
    assert step(0.001, "on_trial_add")
    # That snapshot was cheap: the next end waits nine times its cost, not the costly ones'.
    time.sleep(snapshotpace.SPACING * pace._cost)
    assert step(0.001, "on_trial_complete")
    manager._storage.syncer.wait()
