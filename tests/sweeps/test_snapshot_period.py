"""How often Tune snapshots a sweep: after every step for small sweeps, the user's choice when given."""

from __future__ import annotations

from tuning_service.sweeps import runner


def test_small_sweeps_snapshot_every_step_and_large_ones_at_tunes_pace(monkeypatch):
    monkeypatch.delenv(runner.USER_SNAPSHOT_ENV, raising=False)
    monkeypatch.setattr(runner, "_TUNE_PERIOD_AT_START", None)
    assert runner.snapshot_period(runner.SNAPSHOT_EVERY_STEP_UP_TO) == "0"
    assert runner.snapshot_period(runner.SNAPSHOT_EVERY_STEP_UP_TO + 1) == "auto"


def test_the_users_period_wins_ours_before_tunes(monkeypatch):
    monkeypatch.setattr(runner, "_TUNE_PERIOD_AT_START", "30")
    monkeypatch.delenv(runner.USER_SNAPSHOT_ENV, raising=False)
    assert runner.snapshot_period(12) == "30"
    monkeypatch.setenv(runner.USER_SNAPSHOT_ENV, "5")
    assert runner.snapshot_period(12) == runner.snapshot_period(5000) == "5"
