"""TensorFlow's and Keras' per-process state: thread pools, GPU memory, the session, the seed.

The one place outside the model code that imports TensorFlow or Keras: the trainable and
the refit use these, and stay free of either import themselves.
"""

from __future__ import annotations

import os

_configured_pid: int | None = None


def configure_tensorflow(cpus: float, gpus: float) -> None:
    """Match TensorFlow's thread pools to the trial's CPUs and let GPU memory grow.

    Runs once per worker process, before the first op: TensorFlow refuses to
    change either setting after its runtime has started. Memory growth lets
    several trials share one GPU when each asks for a fraction of it; Ray
    already limits ``CUDA_VISIBLE_DEVICES`` to the trial's own GPU.
    """
    global _configured_pid
    if _configured_pid == os.getpid():
        return
    from tuning_service.core.leanimport import lean_import

    lean_import("tensorflow")  # first, without Keras' scikit-learn and Matplotlib integrations
    import tensorflow as tf

    threads = max(1, int(cpus))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
    except RuntimeError:  # runtime already initialised in this process
        pass
    if gpus > 0:
        for gpu in tf.config.list_physical_devices("GPU"):
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:
                pass
    else:
        # Ray no longer empties CUDA_VISIBLE_DEVICES for a trial that asked for no GPU
        # (ray-project/ray#54868): TensorFlow in every CPU trial would claim the GPUs' memory.
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:
            pass
        # Grappler rewrites every new graph before its first run: on CPU that cost 0.06-0.12 s
        # of each trial's first epoch, and later epochs ran within a few ms of the same time
        # without it (`python -m benchmarks.epoch_cost --job telco_churn|digits_cnn`). GPU
        # trials keep it: its layout and fusion passes are what make convolutions fast there.
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    _configured_pid = os.getpid()


def clear_session(*, free_memory: bool = True) -> None:
    """Reset Keras' global state (its graph, names and TensorFlow's kernel cache)."""
    import keras

    keras.backend.clear_session(free_memory=free_memory)


def set_random_seed(seed: int) -> None:
    """Seed Python's, NumPy's and the backend's generators: the same initial weights again."""
    import keras

    keras.utils.set_random_seed(seed)
