"""The trainable's TensorFlow setup on this CPU machine: threads follow the trial, no GPU is touched,
no package TensorFlow loads only for integrations is loaded."""

from __future__ import annotations

import subprocess
import sys

import pytest
from clusterkit import ROOT, clean_env

# A fresh process, set up as a trial's worker sets itself up: TensorFlow takes these settings
# only before its runtime starts, and loads without the packages `leanimport` hides from it;
# Keras trains without them.
CHECK = """
import sys
import numpy as np
from tuning_service.training.kerasstate import configure_tensorflow
configure_tensorflow(2, 0)
import keras
import tensorflow as tf
assert tf.config.threading.get_intra_op_parallelism_threads() == 2
assert tf.config.get_visible_devices("GPU") == [], tf.config.get_visible_devices("GPU")
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(np.ones((8, 4), "float32"), np.arange(8) % 3, epochs=1, verbose=0)
assert np.isfinite(history.history["loss"][0])
loaded = [name for name in ("sklearn", "matplotlib", "scipy") if name in sys.modules]
assert not loaded, loaded
print("ok")
"""


@pytest.mark.slow
def test_a_cpu_trial_hides_every_gpu_and_sizes_its_thread_pool():
    done = subprocess.run(
        [sys.executable, "-c", CHECK], env=clean_env(), cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
