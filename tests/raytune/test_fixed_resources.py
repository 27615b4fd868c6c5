"""On a Ray this process started, Tune counts the trials' CPUs in the driver: no placement group per
trial, and never more trials at once than the node's CPUs hold."""

from __future__ import annotations

import pytest

# In a new process (the test session's own Ray would be reused): six 1-CPU trials of 0.5 s on a
# 2-CPU embedded Ray, each reporting when it ran; then the placement groups Ray knows of (removed
# ones included).
SCRIPT = r"""
import json, sys, time
from pathlib import Path

from tuning_service.raytune.raysession import prepare_environment, ray_session

prepare_environment(None)
import ray
from ray import tune

def trial(config):
    start = time.time()
    time.sleep(0.5)
    tune.report({"start": start, "end": time.time()})

with ray_session(None, Path(sys.argv[1]), num_cpus=2):
    grid = tune.Tuner(
        tune.with_resources(trial, {"cpu": 1}),
        param_space={"n": tune.grid_search(list(range(6)))},
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(Path(sys.argv[1]) / "tune"), verbose=0),
    ).fit()
    spans = [(r.metrics["start"], r.metrics["end"]) for r in grid if r.metrics]
    print(json.dumps({"spans": spans, "groups": len(ray.util.placement_group_table())}))
"""


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The largest number of the spans that overlap at one moment."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, change in events:  # at a tie an end (-1) sorts before a start
        running += change
        peak = max(peak, running)
    return peak


def test_most_at_once_counts_overlaps():
    assert most_at_once([(0, 1), (1, 2), (2, 3)]) == 1
    assert most_at_once([(0, 2), (1, 3), (1.5, 4), (3.5, 5)]) == 3


@pytest.mark.integration
def test_an_embedded_rays_trials_take_no_placement_group_and_keep_to_its_cpus(tmp_path, run_script):
    seen = run_script(SCRIPT, tmp_path)
    assert len(seen["spans"]) == 6, seen
    # Tune's own resource manager makes a group for each of the six trials (checked: 6).
    assert seen["groups"] == 0, seen
    # The driver's count still holds the trials to the node's two CPUs, and uses both.
    assert most_at_once(seen["spans"]) == 2, seen
