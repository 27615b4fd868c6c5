"""Tune's start imports no MLflow just to name callbacks for usage statistics that are off."""

from __future__ import annotations

import subprocess
import sys

# One process, statistics off first: MLflow, once imported, cannot be unimported.
PROBE = """
import os, sys
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
from ray import tune
from ray.air._internal import usage
from tuning_service.raytune.raysession import skip_unsent_usage_tags

class Mine(tune.Callback):
    pass

rays_own = usage.tag_callbacks
for stats in ("0", "1"):
    os.environ["RAY_USAGE_STATS_ENABLED"] = stats
    usage.tag_callbacks = rays_own
    skip_unsent_usage_tags()
    usage.tag_callbacks([Mine()])  # what tune.run does with the sweep's callbacks
    print(stats, "ray.air.integrations.mlflow" in sys.modules)
"""


def test_usage_tags_are_skipped_only_while_the_statistics_are_off():
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    # Ray's own tagging imports MLflow (the probe can tell); with the statistics off it is skipped.
    assert done.stdout.split("\n")[-3:-1] == ["0 False", "1 True"], done.stdout
