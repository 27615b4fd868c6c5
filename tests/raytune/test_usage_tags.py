"""Tune's start imports no MLflow just to name callbacks for usage statistics that are off."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import os, sys
os.environ["RAY_USAGE_STATS_ENABLED"] = sys.argv[1]
from ray import tune
from ray.air._internal import usage
from tuning_service.raytune.raysession import skip_unsent_usage_tags

class Mine(tune.Callback):
    pass

skip_unsent_usage_tags()
usage.tag_callbacks([Mine()])  # what tune.run does with the sweep's callbacks
print("ray.air.integrations.mlflow" in sys.modules)
"""


def _imports_mlflow(stats: str) -> bool:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, stats], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.strip().splitlines()[-1] == "True"


def test_usage_tags_are_skipped_only_while_the_statistics_are_off():
    assert _imports_mlflow("1")  # Ray's own behaviour: the probe can tell
    assert not _imports_mlflow("0")
