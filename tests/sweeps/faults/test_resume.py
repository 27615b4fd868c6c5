"""A driver SIGKILLed partway through a sweep: `resume` ends it with exactly its N trials, for every searcher."""

from __future__ import annotations

import glob
import json
import pickle
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.sweeps.faults.conftest import JOB_FILE, cli, finished_trials, kill_group, wait_for
from tuning_service.store import open_store

# Real drivers, killed and resumed: one sweep per searcher, each on an embedded Ray.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

FINISHED = {"completed", "stopped early", "diverged", "errored"}


def _trial_record(trial, epochs):
    return (
        trial.status,
        trial.value,
        trial.epochs,
        json.dumps(trial.config, sort_keys=True),
        [(e.epoch, e.value, json.dumps(e.metrics, sort_keys=True)) for e in epochs],
    )


def _optuna_numbers(sweep_dir: Path) -> list[int]:
    """Trial numbers in the Optuna study of the sweep's last searcher snapshot."""
    newest = sorted(glob.glob(str(sweep_dir / "trials" / "searcher-state-*.pkl")))[-1]
    with open(newest, "rb") as f:
        state = pickle.load(f)
    return sorted(t.number for t in state["_ot_study"].trials)


# One searcher per way a searcher reaches Tune: Tune's own generator (grid, random), HyperOpt,
# BOHB, an Optuna sampler through `optuna.sampler_plan` and a multi-objective one through
# `multiobjective.objectives_plan`. The other samplers take the same way as the searcher named
# in SAME_WAY_AS, and that each one's own state comes back whole is
# tests/raytune/test_searchers.py's restored-searcher test, without Ray.
SEARCHERS = ("grid", "random", "optuna", "hyperopt", "bohb", "nsga2")
SAME_WAY_AS = {"cmaes": "optuna", "qmc": "optuna", "gp": "optuna", "motpe": "nsga2"}
# Trials per sweep, and how many have finished when its driver is killed: the grid runs its 12
# points; the others 6 trials (each trial costs the suite time, the kill and resume are the test).
TRIALS = {"grid": 12}
KILL_AT = {"grid": 5}
DEFAULT_TRIALS, DEFAULT_KILL_AT = 6, 2
# Where `run SWEEP_ID` is also tried on the interrupted sweep (it points at `resume`; what it
# reads is the sweep's row, the same for every searcher).
RUN_AGAIN = ("grid",)
# Searchers whose snapshot copy is cut short after the kill (the others are killed as they are).
CUT_COPY = ("grid",)
# Each with ASHA, but BOHB, which runs only with its own Hyperband (it pauses and resumes trials).
SCHEDULER = {"bohb": "bohb"}
# Searchers that keep an Optuna study in their snapshot.
OPTUNA_STUDIES = ("optuna", "nsga2")
# The multi-objective searchers run a multi-objective sweep (and MO-ASHA with it).
OBJECTIVES = ("--objective", "val_accuracy:max", "--objective", "params:min")
EXTRA = {"nsga2": OBJECTIVES}


@dataclass
class Crash:
    """One searcher's sweep: killed at about half, then resumed."""

    before: dict[str, tuple] = field(default_factory=dict)  # trials finished at the kill
    after: dict[str, tuple] = field(default_factory=dict)
    sweep: object = None
    run_again: tuple[int, str] = (0, "")  # `run SWEEP_ID`: exit code, stderr
    resumed: tuple[int, str] = (0, "")
    crashed_log: str = ""  # the killed driver's stderr
    error: str | None = None


def _crash_and_resume(searcher: str, job_file: str, root: Path) -> Crash:
    crash, storage = Crash(), root / "results"
    db = storage / "tuning.db"
    args = [
        "--searcher", searcher, "--scheduler", SCHEDULER.get(searcher, "asha"),
        "--num-samples", str(TRIALS.get(searcher, DEFAULT_TRIALS)),
        "--max-concurrent", "2", "--data-limit", "300", "--storage", str(storage), *EXTRA.get(searcher, ()),
    ]  # fmt: skip
    driver = cli("run", job_file, *args, cwd=root)
    try:
        kill_at = KILL_AT.get(searcher, DEFAULT_KILL_AT)
        # Asked often: two slots finish this job's short trials a few tenths of a second apart, and
        # a kill that comes after the last one has nothing left to resume.
        wait_for(
            lambda: finished_trials(db) >= kill_at,
            timeout=400,
            what=f"{kill_at} finished trials",
            proc=driver,
            every=0.02,
        )
    finally:
        kill_group(driver)
    with open_store(None, storage=storage) as store:
        (row,) = store.sweeps()
    if searcher in CUT_COPY:
        # What a driver killed while Tune copies its snapshot into trials/ leaves behind
        # (Tune copies in place): an empty experiment state. The kept archive stands in.
        for state in (Path(row.sweep_dir) / "trials").glob("experiment_state-*.json"):
            state.write_bytes(b"")
    with open_store(None, storage=storage) as store:
        crash.before = {
            t.trial_id: _trial_record(t, store.epochs(row.sweep_id, t.trial_id))
            for t in store.trials([row.sweep_id])
            if t.status in FINISHED
        }
    # `run` with the interrupted sweep's id points at `resume` instead of starting anything.
    if searcher in RUN_AGAIN:
        wrong = cli("run", row.sweep_id, "--storage", str(storage), cwd=root)
        crash.run_again = (wrong.wait(timeout=120), wrong.communicate()[1])
    crash.crashed_log = driver.stderr_text
    resumed = cli("resume", row.sweep_id, "--storage", str(storage), cwd=root)
    try:
        _, err = resumed.communicate(timeout=500)
    except subprocess.TimeoutExpired:
        kill_group(resumed)  # nothing of a hung resume outlives the test
        ray_log = Path(row.sweep_dir) / "ray.log"
        tail = ray_log.read_text()[-3000:] if ray_log.exists() else ""
        raise AssertionError(f"the resume did not end in 500 s; its ray.log ends:\n{tail}") from None
    crash.resumed = (resumed.returncode, err)
    with open_store(None, storage=storage) as store:
        (crash.sweep,) = store.sweeps()
        crash.after = {
            t.trial_id: _trial_record(t, store.epochs(row.sweep_id, t.trial_id))
            for t in store.trials([row.sweep_id])
        }
    return crash


@pytest.fixture(scope="module")
def crashes(tmp_path_factory) -> dict[str, Crash]:
    """Every searcher's sweep, killed and resumed side by side (the drivers mostly wait on
    Ray's start-up, so running them together costs far less than one after another)."""
    root = tmp_path_factory.mktemp("crashes")
    (root / "resumable_job.py").write_text(JOB_FILE)
    job_file = f"{root / 'resumable_job.py'}:JOB"
    for searcher in SEARCHERS:
        (root / searcher).mkdir()
    # Three at a time: each driver is a Ray with two trial workers, and the machine's cores are
    # busy with three (more only stretch each driver's wait for five finished trials).
    with ThreadPoolExecutor(3) as pool:
        futures = {s: pool.submit(_crash_and_resume, s, job_file, root / s) for s in SEARCHERS}
    out = {}
    for searcher, future in futures.items():
        try:
            out[searcher] = future.result()
        except AssertionError as exc:
            out[searcher] = Crash(error=str(exc))
    return out


def test_every_searcher_takes_a_way_resumed_here():
    """A new searcher is either killed and resumed here or reaches Tune the way one that is does."""
    from tuning_service.core.objectives import check_objectives
    from tuning_service.core.space import Float, Int, Space
    from tuning_service.raytune.searchers import MULTI_OBJECTIVE, create_searcher
    from tuning_service.raytune.searchers import SEARCHERS as REGISTERED

    assert set(REGISTERED.names()) == set(SEARCHERS) | set(SAME_WAY_AS)
    space = Space({"learning_rate": Float(1e-3, 1e-1, log=True), "units": Int(8, 64)})
    objectives = check_objectives(list(OBJECTIVES[1::2]), "val_accuracy")

    def tune_searcher(name: str) -> type:
        multi = {"objectives": objectives} if name in MULTI_OBJECTIVE else {}
        return type(create_searcher(name, space, seed=0, **multi).search_alg)

    for name, way in SAME_WAY_AS.items():
        assert tune_searcher(name) is tune_searcher(way), (name, way)


@pytest.mark.parametrize("searcher", SEARCHERS)
def test_resume_after_the_driver_is_killed_halfway(searcher, crashes):
    crash = crashes[searcher]
    assert crash.error is None, crash.error
    before, after, row = crash.before, crash.after, crash.sweep
    trials = TRIALS.get(searcher, DEFAULT_TRIALS)
    assert KILL_AT.get(searcher, DEFAULT_KILL_AT) <= len(before) < trials, (
        f"the driver was killed too late to test anything: {len(before)} trials done"
    )
    if searcher in RUN_AGAIN:
        code, err = crash.run_again
        assert (
            code == 2
            and f"tuning-service resume {row.sweep_id}" in err
            and len(err.strip().splitlines()) == 1
        ), err
    code, err = crash.resumed
    assert code == 0, err[-3000:]

    assert row.status == "finished", row.message
    # A trial started an instant before the kill, unknown to Tune's snapshot, stays recorded as
    # dropped (with any epoch it reported); the sweep ran exactly its trials besides.
    ran = {trial_id: record for trial_id, record in after.items() if record[0] != "dropped"}
    assert len(ran) == trials, sorted(after)
    statuses = {trial_id: record[0] for trial_id, record in ran.items()}
    assert set(statuses.values()) <= FINISHED, statuses
    assert all(1 <= record[2] <= 3 for record in ran.values()), "a trial ran past its 3 epochs"
    assert len({record[3] for record in ran.values()}) == trials, "a config ran twice"
    for trial_id, record in before.items():
        assert after.get(trial_id) == record, (
            f"trial {trial_id} changed after the resume: {record} -> {after.get(trial_id)}; "
            f"killed driver said: {crash.crashed_log[-2000:]}; resume said: {crash.resumed[1][-2000:]}"
        )
    for trial_id, (_, _, epochs, _, rows) in after.items():
        assert [r[0] for r in rows] == list(range(1, epochs + 1)), f"trial {trial_id}: epoch rows {rows}"
    if searcher in OPTUNA_STUDIES:
        assert _optuna_numbers(Path(row.sweep_dir)) == list(range(trials))
