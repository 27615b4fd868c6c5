"""Input data for a trial: tensors made once per worker, and each epoch's row order from the trial's seed.

A trial calls Keras' ``fit`` once per epoch (one Tune step). Given NumPy arrays, Keras
builds a new tf.data pipeline from them at every call, copying the whole split. Here
the arrays become tensors once per worker and each epoch gets a pipeline over them:
a Telco epoch after the first costs less than half (``python -m benchmarks.epoch_cost``
measures both ways; see benchmarks/RESULTS.md).

An epoch's row order is a function of the trial's seed and the epoch number only
(`epoch_order`), not of how many pipelines a worker has iterated: a trial continued
from a checkpoint on another worker sees the epochs it would have seen, and the
shared-graph engine (`tuning_service.training.sharedgraph`) batches the very same rows in its
own graph. Batches are gathered from the ordered row indices (as Keras does for
arrays), so a 50000-image split is not copied again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def epoch_order(rows: int, seed: int, epoch: int) -> Any:
    """The row order of epoch ``epoch`` (0-based) of a trial seeded with ``seed``: a permutation."""
    import tensorflow as tf

    # types-tensorflow (2.18) has no tf.random.experimental; TensorFlow has had it since 2.9.
    return tf.random.experimental.stateless_shuffle(  # type: ignore[attr-defined]
        tf.range(rows, dtype=tf.int64), seed=tf.constant([seed, epoch], tf.int64)
    )


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

    def batches(self, batch_size: int, *, order: Any = None, threads: int = 1) -> Any:
        """A tf.data pipeline of (x, y) batches, rows in ``order`` (a permutation) or as stored.

        ``threads`` is what the trial may use beside its model: with one, batches are
        gathered in line, with no prefetching and no autotuning thread: on a machine
        whose cores are all taken by trials, those threads only compete with the
        models for CPU. With more, the next batch is gathered while this one trains.
        """
        import tensorflow as tf

        rows = (
            tf.data.Dataset.range(len(self)) if order is None else tf.data.Dataset.from_tensor_slices(order)
        )
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
