"""Where the workers are not forked (`TUNING_SERVICE_WORKER_FORK=0`, or a platform without fork),
an embedded Ray whose sweep runs a trial per CPU starts its workers, TensorFlow imported, as the
driver connects, and Tune's trial actors run on those workers."""

from __future__ import annotations

import os

import pytest

from tuning_service.raytune.warmworkers import plain_trial_actors, trial_slots, worth_warming
from tuning_service.raytune.workerfork import SWITCH_ENV

# In a new process (the test session's own Ray would be reused): a Tune run of four trials on
# a 2-CPU embedded Ray, for the trial slots given in argv[2]: the workers Ray started before the
# first trial, and for each trial its worker's pid and whether TensorFlow was imported before
# the trial started.
SCRIPT = r"""
import json, os, sys, time
from pathlib import Path

from tuning_service.raytune.raysession import prepare_environment, ray_session
from tuning_service.testing import localcluster

prepare_environment(None)
import ray
from ray import tune
from ray.util.placement_group import placement_group, remove_placement_group

def trial(config):
    tune.report({"pid": os.getpid(), "tensorflow": "tensorflow" in sys.modules})

def workers():
    # This process's descendants that are Ray's Python workers (titled ray::IDLE etc. once
    # connected; Ray's agents title themselves too).
    found = []
    for pid, argv in localcluster.descendants(os.getpid()):
        titled = bool(argv) and argv[0].startswith("ray::") and not argv[0].endswith("Agent")
        if titled or (len(argv) > 1 and argv[1].endswith("default_worker.py")):
            found.append(pid)
    return sorted(found)

slots = int(sys.argv[2])
with ray_session(None, Path(sys.argv[1]), trial_slots=slots, num_cpus=2):
    deadline = time.monotonic() + (60 if slots >= 2 else 2)
    while len(workers()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    before = workers()  # started as the driver connected, before any trial
    # Idle for over a second when placement groups like Tune's take the CPUs: with its defaults,
    # Ray tells such workers to exit then, within its next look (every 0.2 s), and the trials
    # get new ones.
    time.sleep(1.2)
    group = placement_group([{"CPU": 1}, {"CPU": 1}])
    ray.get(group.ready())
    time.sleep(0.6)
    remove_placement_group(group)
    grid = tune.Tuner(
        tune.with_resources(trial, {"cpu": 1}),
        param_space={"n": tune.grid_search([1, 2, 3, 4])},
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(Path(sys.argv[1]) / "tune"), verbose=0),
    ).fit()
    seen = [{"pid": r.metrics["pid"], "tensorflow": r.metrics["tensorflow"]} for r in grid]

    @ray.remote(num_cpus=1)
    class Later:  # on a worker Ray starts for it, as for a lost trial worker's replacement
        def state(self):
            return os.getpid(), "tensorflow" in sys.modules

    pid, imported = ray.get(Later.remote().state.remote())
    later = {"pid": pid, "tensorflow": imported}
    print(json.dumps({"trials": seen, "before": before, "later": later}))
"""


def _run(run_script, tmp_path, slots: int) -> dict:
    return run_script(SCRIPT, tmp_path, slots, env={**os.environ, SWITCH_ENV: "0"})


@pytest.mark.integration
def test_a_trial_per_cpu_runs_on_the_workers_ray_started_warm(tmp_path, run_script):
    seen = _run(run_script, tmp_path, slots=2)
    # Every trial found TensorFlow imported (the trainable itself never imports it) ...
    assert all(t["tensorflow"] for t in seen["trials"]), seen
    # ... in the workers Ray had started, one per CPU, as the driver connected (and kept while
    # placement groups took the CPUs).
    assert len(seen["before"]) == 2, seen
    assert {t["pid"] for t in seen["trials"]} <= set(seen["before"]), seen
    # A worker Ray starts later, for an actor, imports nothing ahead: an actor held starting by
    # that import while short trials end elsewhere would be dropped by Tune again and again.
    assert seen["later"]["pid"] not in seen["before"] and not seen["later"]["tensorflow"], seen


@pytest.mark.integration
def test_fewer_trials_than_cpus_start_no_worker_ahead(tmp_path, run_script):
    # One trial at a time on two CPUs: a second warm worker would import TensorFlow for nothing.
    seen = _run(run_script, tmp_path, slots=1)
    assert seen["before"] == [], seen
    assert not any(t["tensorflow"] for t in seen["trials"]), seen


@pytest.mark.parametrize(
    ("cpus", "cpus_per_trial", "gpus_per_trial", "trials", "max_concurrent", "slots"),
    [
        (2, 1.0, 0.0, 16, None, 2),
        (2, 2.0, 0.0, 16, None, 1),
        (2, 0.5, 0.0, 16, None, 4),
        (8, 1.0, 0.0, 3, None, 3),  # fewer trials than CPUs
        (8, 1.0, 0.0, 16, 4, 4),  # --max-concurrent
        (8, 1.0, 0.25, 16, None, 0),  # GPU trials: how many run depends on the GPUs Ray finds
    ],
)
def test_trial_slots(cpus, cpus_per_trial, gpus_per_trial, trials, max_concurrent, slots):
    assert trial_slots(cpus, cpus_per_trial, gpus_per_trial, trials, max_concurrent) == slots


def test_workers_are_warmed_only_where_each_gets_a_trial():
    assert worth_warming(2, 2) and worth_warming(4, 2)
    assert not worth_warming(1, 2) and not worth_warming(0, 2)


def test_trial_actors_lose_tunes_runtime_environment_only_inside_the_context():
    # The actor class Tune builds for a trainable carries a runtime environment, which keeps
    # its actors off workers started without one; inside the context it has none. Checked on
    # the installed Tune, so an upgrade that moves its class cache fails here.
    from ray.tune.execution.class_cache import _ActorClassCache

    class Trainable:
        pass

    def runtime_env(actor_cls) -> object:
        return actor_cls._default_options.get("runtime_env")

    assert runtime_env(_ActorClassCache().get(Trainable))
    with plain_trial_actors():
        cache = _ActorClassCache()
        assert runtime_env(cache.get(Trainable)) is None
        assert cache.get(Trainable) is cache.get(Trainable)  # one registration per class
    assert runtime_env(_ActorClassCache().get(Trainable))
