"""The trial's input pipeline: every row once per epoch, reshuffled per epoch, reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from tuning_service.pipeline import Split


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


def test_training_batches_cover_every_row_once_and_reshuffle_each_epoch(split):
    batches = split.batches(4, shuffle_seed=7)
    first, second = _epoch(batches), _epoch(batches)
    for x, y in (first, second):
        assert sorted(y.tolist()) == list(range(23))
        assert (x[:, 0] == y * 3).all()  # rows stay with their targets
    assert first[1].tolist() != second[1].tolist()


def test_the_same_seed_gives_the_same_epochs(split):
    a, b = split.batches(4, shuffle_seed=3), split.batches(4, shuffle_seed=3)
    assert [_epoch(a)[1].tolist() for _ in range(2)] == [_epoch(b)[1].tolist() for _ in range(2)]
    assert (
        _epoch(split.batches(4, shuffle_seed=4))[1].tolist()
        != _epoch(split.batches(4, shuffle_seed=3))[1].tolist()
    )


def test_rows_and_targets_must_match():
    with pytest.raises(ValueError, match="features have 3 rows but targets have 2"):
        Split.from_arrays(np.zeros((3, 2)), np.zeros(2))
