"""The real APScheduler scheduler, seconds apart, running two tiny sweeps on the session's shared Ray."""

from __future__ import annotations

import json
import time

import pytest

from tuning_service.store.scheduletables import FINISHED
from tuning_service.sweeps.nightly import history
from tuning_service.sweeps.nightly.schedulefile import load_schedule
from tuning_service.sweeps.nightly.scheduler import build_scheduler
from tuning_service.sweeps.nightly.service import open_history

pytestmark = pytest.mark.integration

TINY = "tuning_service.testing:tiny_job"
# Each sweep must run this often; the test gives up after TIMEOUT_S.
RUNS, TIMEOUT_S = 2, 240


def test_the_scheduler_runs_two_sweeps_repeatedly_warm_starting_each_run(ray_local, write_schedule, tmp_path):
    # Two CPUs per trial: the shared Ray has two, so trials run one after another, in the
    # order the searcher proposed them, and "the first trial" is the first one started.
    tiny = f"resources_per_trial: {{cpu: 2}}, job: {TINY}, scheduler: fifo, num_samples: 2, max_epochs: 1, cron: {{second: '*/2'}}"
    path = write_schedule(
        f"""
        sweeps:
          first: {{{tiny}, searcher: random}}
          second: {{{tiny}, searcher: optuna}}
        """
    )
    schedule = load_schedule(path)
    reports = []
    scheduler = build_scheduler(schedule, blocking=False, on_report=reports.append)
    scheduler.start()
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline and not all(
            len(_finished(schedule, s)) >= RUNS for s in schedule.names()
        ):
            time.sleep(0.5)
    finally:
        scheduler.shutdown(wait=True)
    assert all(len(_finished(schedule, s)) >= RUNS for s in schedule.names()), [r.line() for r in reports]

    with open_history(schedule.sweeps[0]) as store:
        for name in schedule.names():
            first, second = _finished(schedule, name)[:2]
            assert first.trigger == "catch-up" and second.scheduled_for > first.scheduled_for
            best = max(
                (t for t in store.trials([first.sweep_id]) if t.value is not None), key=lambda t: t.value
            )
            assert first.best_value == best.value
            # The second run's first trial is the first run's best config (warm start).
            trials = sorted(store.trials([second.sweep_id]), key=lambda t: (t.started_at, t.trial_id))
            assert trials[0].config == best.config, name
            assert second.warm_start >= 1 and len(trials) == 2
            assert second.change["previous"]["value"] == first.best_value
            change_file = schedule.sweeps[schedule.names().index(name)].export_dir / "latest_change.json"
            assert json.loads(change_file.read_text())["sweep"] == name
    assert {r.name for r in reports if r.status == FINISHED} == {"first", "second"}


def _finished(schedule, name: str) -> list[history.RunRow]:
    with open_history(schedule.sweeps[0]) as store:
        return list(reversed(history.runs(store, name, statuses=(FINISHED,))))
