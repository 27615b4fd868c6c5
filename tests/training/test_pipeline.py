"""The trial's input pipeline: every row once per epoch, a new order per epoch, reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from tuning_service.training.pipeline import Split, epoch_order


def _epoch(batches) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in batches), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


@pytest.fixture(scope="module")
def split() -> Split:
    x = np.arange(23 * 3, dtype="float32").reshape(23, 3)
    return Split.from_arrays(x, np.arange(23))


def test_validation_batches_keep_the_order_and_the_last_partial_batch(split):
    sizes = [len(y) for _, y in split.batches(5)]
    assert sizes == [5, 5, 5, 5, 3]
    x, y = _epoch(split.batches(5))
    assert y.tolist() == list(range(23)) and (x[:, 0] == y * 3).all()


def test_training_batches_cover_every_row_once_in_a_new_order_each_epoch(split):
    first, second = (_epoch(split.batches(4, order=epoch_order(len(split), 7, e))) for e in (0, 1))
    for x, y in (first, second):
        assert sorted(y.tolist()) == list(range(23))
        assert (x[:, 0] == y * 3).all()  # rows stay with their targets
    assert first[1].tolist() != second[1].tolist()


def test_an_epochs_order_depends_on_the_seed_and_the_epoch_only(split):
    def order(seed: int, epoch: int) -> list[int]:
        return epoch_order(len(split), seed, epoch).numpy().tolist()

    # Whatever was iterated before (another trial, earlier epochs), epoch 3 of seed 5 is the same.
    assert order(5, 3) == order(5, 3)
    assert order(5, 3) != order(6, 3) and order(5, 3) != order(5, 2)
    assert sorted(order(5, 3)) == list(range(23))


def test_rows_and_targets_must_match():
    with pytest.raises(ValueError, match="features have 3 rows but targets have 2"):
        Split.from_arrays(np.zeros((3, 2)), np.zeros(2))
