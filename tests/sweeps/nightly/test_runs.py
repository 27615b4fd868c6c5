"""Scheduled runs without Ray: locks, skipped and failed runs, catch-up, warm start, what changed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tuning_service.cli import main
from tuning_service.core.errors import SweepError
from tuning_service.core.processes import identity
from tuning_service.store.scheduletables import (
    FAILED,
    FINISHED,
    INTERRUPTED,
    RUNNING,
    SKIPPED,
    schedule_locks,
)
from tuning_service.store.schema import utcnow
from tuning_service.sweeps.nightly import history
from tuning_service.sweeps.nightly.schedulefile import TARGETS, load_schedule
from tuning_service.sweeps.nightly.service import open_history, run_due
from tuning_service.sweeps.nightly.targets import RunOutcome

TINY = "tuning_service.testing:tiny_job"
NOON = datetime(2026, 11, 23, 12, 0, 30, tzinfo=UTC)  # every-minute sweeps are due for 12:00:00


class FakeSweeps:
    """Stands in for a target: records a made-up sweep per call, with the given trial values."""

    def __init__(self, *runs: dict[str, float] | Exception) -> None:
        self.runs = list(runs)
        self.specs: list = []

    def __call__(self, sweep, spec, *, stop=None) -> RunOutcome:
        self.specs.append(spec)
        planned = self.runs.pop(0)
        if isinstance(planned, Exception):
            raise planned
        sweep_id = f"sweep-{len(self.specs)}"
        with open_history(sweep) as store:
            store.create_sweep(
                sweep_id,
                job=sweep.job_name,
                job_ref=spec.job,
                metric="val_accuracy",
                mode="max",
                searcher=spec.searcher,
                scheduler=spec.scheduler,
                seed=0,
                space={},
                spec={"points_to_evaluate": list(spec.points_to_evaluate)},
                versions={},
            )
            for n, (units, value) in enumerate(planned.items()):
                trial_id = f"{sweep_id}-t{n}"
                config = {"units": int(units), "learning_rate": 0.01}
                store.start_trial(sweep_id, trial_id, config)
                store.record_epoch(sweep_id, trial_id, 1, mode="max", value=value, metrics={})
                store.finish_trial(sweep_id, trial_id, "completed")
            store.finish_sweep(sweep_id, "finished")
        units, value = max(planned.items(), key=lambda kv: kv[1])
        return RunOutcome(
            sweep_id, "val_accuracy", "max", value, {"units": int(units), "learning_rate": 0.01}
        )


@pytest.fixture
def schedule(write_schedule, db_url, tmp_path):
    path = write_schedule(
        f"""
        sweeps:
          nightly:
            job: {TINY}
            cron: '* * * * *'
            database: "{db_url}"
            lock_ttl_s: 60
            warm_start: 2
        """
    )
    return load_schedule(path)


def _runs(schedule) -> list[history.RunRow]:
    with open_history(schedule.sweeps[0]) as store:
        return list(reversed(history.runs(store, "nightly")))


def _minute(n: int) -> datetime:
    return NOON.replace(second=0) + timedelta(minutes=n)


def test_a_held_lock_skips_the_due_run_then_it_runs_after_release(schedule):
    sweep = schedule.sweeps[0]
    fake = FakeSweeps({"16": 0.5})
    with open_history(sweep) as store:  # another scheduler is running this sweep
        other = history.start_run(
            store, "nightly", job="tiny", scheduled_for=_minute(-1), trigger="elsewhere", ttl_s=60
        )
    (report,) = run_due(schedule, now=NOON, execute=fake)
    assert report.status == SKIPPED and "still holds the lock" in report.message
    assert fake.specs == []
    assert run_due(schedule, now=NOON, execute=fake) == []  # 12:00 is answered: skipped
    with open_history(sweep) as store:
        history.finish_run(store, other.run.run_id, FINISHED)
        other.lock.release()
    (report,) = run_due(schedule, now=NOON + timedelta(minutes=1), execute=fake)
    assert report.status == FINISHED and len(fake.specs) == 1
    assert [(r.status, r.scheduled_for) for r in _runs(schedule)] == [
        (FINISHED, _minute(-1)),
        (SKIPPED, _minute(0)),
        (FINISHED, _minute(1)),
    ]
    with open_history(sweep) as store:
        assert history.lock_holder(store, "nightly") is None


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize(
    ("holder", "runs"),
    [
        ({"host": socket.gethostname(), "pid": "dead", "expires_in": 3600}, True),  # killed here
        ({"host": "elsewhere", "pid": 4242, "expires_in": -1}, True),  # expired
        ({"host": "elsewhere", "pid": 4242, "expires_in": 3600}, False),  # alive elsewhere
        # A container with our host name: its pid means nothing here, its lock holds until it expires.
        ({"host": socket.gethostname(), "pid": "dead", "expires_in": 3600, "pidns": "pid:[1]"}, False),
    ],
)
def test_stale_locks_of_killed_schedulers_are_taken_over(schedule, holder, runs):
    sweep = schedule.sweeps[0]
    with open_history(sweep) as store:
        crashed = history.start_run(
            store, "nightly", job="tiny", scheduled_for=_minute(-1), trigger="crashed", ttl_s=60
        )
        pid = _dead_pid() if holder["pid"] == "dead" else holder["pid"]
        with store.engine.begin() as conn:
            conn.execute(
                sa.update(schedule_locks).values(
                    owner=f"{holder['host']}:{pid}:x",
                    host=holder["host"],
                    pid=pid,
                    # Without a pid namespace: judged by host and pid, as locks taken before it.
                    process={**identity(), "pidns": holder["pidns"]} if "pidns" in holder else None,
                    expires_at=utcnow() + timedelta(seconds=holder["expires_in"]),
                )
            )
    (report,) = run_due(schedule, now=NOON, execute=FakeSweeps({"16": 0.5}))
    first, second = _runs(schedule)
    if runs:
        assert report.status == FINISHED
        assert first.status == INTERRUPTED and "its lock went stale" in first.message
    else:
        assert report.status == SKIPPED and second.status == SKIPPED
        assert first.status == RUNNING and crashed.run.run_id == first.run_id


def test_runs_missed_while_down_are_coalesced_into_one(schedule):
    fake = FakeSweeps({"16": 0.5}, {"16": 0.5})
    assert [r.status for r in run_due(schedule, now=NOON, execute=fake)] == [FINISHED]
    later = NOON + timedelta(minutes=10)
    assert [r.scheduled_for for r in run_due(schedule, now=later, execute=fake)] == [_minute(10)]
    assert run_due(schedule, now=later + timedelta(seconds=15), execute=fake) == []
    assert len(fake.specs) == 2


def test_a_failed_run_is_recorded_and_later_runs_go_on(schedule):
    fake = FakeSweeps(SweepError("sweep x: no trial finished with a valid val_accuracy"), {"16": 0.5})
    (failed,) = run_due(schedule, now=NOON, execute=fake)
    assert (
        failed.status == FAILED and failed.message == "sweep x: no trial finished with a valid val_accuracy"
    )
    (later,) = run_due(schedule, now=NOON + timedelta(minutes=1), execute=fake)
    assert later.status == FINISHED
    assert [r.status for r in _runs(schedule)] == [FAILED, FINISHED]
    with open_history(schedule.sweeps[0]) as store:
        assert history.lock_holder(store, "nightly") is None


def test_warm_start_from_earlier_runs_and_what_changed(schedule):
    sweep = schedule.sweeps[0]
    fake = FakeSweeps({"8": 0.5, "16": 0.7}, {"16": 0.7, "32": 0.8}, {"32": 0.6}, {"64": 0.6})
    reports = [run_due(schedule, now=NOON + timedelta(minutes=n), execute=fake)[0] for n in range(4)]
    # Each run first evaluates the best distinct configs of the earlier runs (warm_start: 2).
    assert [list(s.points_to_evaluate) for s in fake.specs] == [
        [],
        [{"units": 16, "learning_rate": 0.01}, {"units": 8, "learning_rate": 0.01}],
        [{"units": 32, "learning_rate": 0.01}, {"units": 16, "learning_rate": 0.01}],
        [{"units": 32, "learning_rate": 0.01}, {"units": 16, "learning_rate": 0.01}],
    ]
    changes = [r.change for r in reports]
    assert [c["change"] for c in changes] == ["first run", "improved", "regressed", "unchanged"]
    assert [c["all_time_best"] and c["all_time_best"]["change"] for c in changes] == [
        None,
        "improved",
        "regressed",
        "regressed",
    ]
    last = changes[-1]
    assert last["previous"]["value"] == 0.6 and last["all_time_best"]["value"] == 0.8
    assert last["all_time_best"]["delta"] == pytest.approx(-0.2)
    assert reports[1].line() == (
        "nightly: val_accuracy 0.8000: improved vs previous run 0.7000 (+0.1000); "
        "improved vs all-time best 0.7000 (+0.1000)"
    )
    stored = _runs(schedule)
    assert [r.warm_start for r in stored] == [0, 2, 2, 2]
    assert stored[-1].change == last and stored[-1].best_value == 0.6
    files = {p.name: p for p in reports[-1].files}
    assert json.loads(files["latest_change.json"].read_text()) == last
    assert files["latest_change.md"].read_text().startswith("# nightly: unchanged")
    exported = json.loads(files["best_config.json"].read_text())
    assert exported["configs"][0]["config"] == {"units": 32, "learning_rate": 0.01}
    assert files["best_config.json"].parent == sweep.export_dir


def test_run_due_and_list_from_the_command_line(schedule, monkeypatch, capsys):
    path = str(schedule.path)
    monkeypatch.setitem(TARGETS._targets, "local", FakeSweeps({"16": 0.5}, SweepError("boom")))
    assert main(["schedule", "run-due", path]) == 0
    assert capsys.readouterr().out == "nightly: val_accuracy 0.5000: first run\n"
    assert main(["schedule", "run-due", path]) == 0  # the same minute: nothing due
    assert "nothing due" in capsys.readouterr().err
    assert main(["schedule", "list", path, "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["last_run"]["status"] == FINISHED and len(row["next"]) == 3
    with open_history(schedule.sweeps[0]) as store, store.engine.begin() as conn:
        # Pretend the last run was an hour ago, so the next call is due.
        conn.execute(sa.update(history.schedule_runs).values(scheduled_for=utcnow() - timedelta(hours=1)))
    assert main(["schedule", "run-due", path]) == 1
    out, err = capsys.readouterr()
    assert "nightly: failed: boom" in out and "error: 1 scheduled run(s) failed: nightly" in err
    assert os.environ.get("TUNING_SERVICE_DB") is None


def test_a_running_lock_is_renewed_until_released(schedule):
    with open_history(schedule.sweeps[0]) as store:
        started = history.start_run(store, "nightly", job="tiny", scheduled_for=NOON, trigger="t", ttl_s=0.3)
        first = history.lock_holder(store, "nightly").expires_at
        with started.lock.kept_alive():
            time.sleep(0.5)
            assert history.lock_holder(store, "nightly").expires_at > first
        assert history.lock_holder(store, "nightly") is None
