"""Input pipelines for a trial: tensors made once per worker, a tf.data pipeline per trial.

A trial calls Keras' ``fit`` once per epoch (one Tune step). Given NumPy arrays, Keras
builds a new tf.data pipeline from them at every call, copying the whole split. Here
the arrays become tensors once per worker and each trial gets pipelines over them,
which Keras iterates anew every epoch: a Telco epoch after the first costs less than half
(``python -m benchmarks.epoch_cost`` measures both ways; see benchmarks/RESULTS.md).

Batches are gathered from shuffled row indices (as Keras does for arrays), so the
shuffle buffer holds indices, not rows: a 50000-image split is not copied again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class Split:
    """One split's features and targets as tensors (made once, shared by every trial of a worker)."""

    x: Any
    y: Any

    @classmethod
    def from_arrays(cls, x: np.ndarray, y: np.ndarray) -> Split:
        import tensorflow as tf

        if len(x) != len(y):
            raise ValueError(f"features have {len(x)} rows but targets have {len(y)}")
        return cls(tf.convert_to_tensor(x), tf.convert_to_tensor(y))

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def batches(self, batch_size: int, *, shuffle_seed: int | None = None, threads: int = 1) -> Any:
        """A tf.data pipeline of (x, y) batches; reshuffled at every epoch when seeded.

        The same seed gives the same sequence of epochs, so a trial's data order
        depends on its configuration and the sweep's seed, not on which worker runs it.
        ``threads`` is what the trial may use beside its model: with one, batches are
        gathered in line, with no prefetching and no autotuning thread: on a machine
        whose cores are all taken by trials, those threads only compete with the
        models for CPU. With more, the next batch is gathered while this one trains.
        """
        import tensorflow as tf

        rows = tf.data.Dataset.range(len(self))
        if shuffle_seed is not None:
            rows = rows.shuffle(len(self), seed=shuffle_seed, reshuffle_each_iteration=True)
        x, y = self.x, self.y
        batches = rows.batch(batch_size).map(
            lambda idx: (tf.gather(x, idx), tf.gather(y, idx)),
            num_parallel_calls=threads if threads > 1 else None,
        )
        options = tf.data.Options()
        options.threading.private_threadpool_size = max(1, threads)
        options.threading.max_intra_op_parallelism = 1
        options.autotune.enabled = threads > 1
        if threads > 1:
            batches = batches.prefetch(1)
        return batches.with_options(options)
