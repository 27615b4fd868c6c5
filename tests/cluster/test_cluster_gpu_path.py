"""The trainable's TensorFlow setup on this CPU machine: threads follow the trial, no GPU is touched."""

from __future__ import annotations

import subprocess
import sys

import pytest
from clusterkit import ROOT, clean_env

# A fresh process: TensorFlow takes these settings only before its runtime starts.
CHECK = """
import tensorflow as tf
from tuning_service.training.kerasstate import configure_tensorflow
configure_tensorflow(2, 0)
assert tf.config.threading.get_intra_op_parallelism_threads() == 2
assert tf.config.get_visible_devices("GPU") == [], tf.config.get_visible_devices("GPU")
print("ok")
"""


@pytest.mark.slow
def test_a_cpu_trial_hides_every_gpu_and_sizes_its_thread_pool():
    done = subprocess.run(
        [sys.executable, "-c", CHECK], env=clean_env(), cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
