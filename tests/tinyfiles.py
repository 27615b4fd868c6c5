"""Tiny files in Keras' cache layout, CSVs and job files the job, data and training tests write themselves.

The `tiny_files` fixture (tests/conftest.py) hands these writers to a test.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

IMAGES = 60  # per split: enough for a validation split and a batch or two


def write_mnist(cache: Path, n: int = IMAGES) -> Path:
    """``mnist.npz`` with the keys keras.datasets.mnist reads."""
    rng = np.random.default_rng(0)
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / "mnist.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
        y_train=np.arange(n, dtype=np.uint8) % 10,
        x_test=rng.integers(0, 256, (n // 2, 28, 28), dtype=np.uint8),
        y_test=np.arange(n // 2, dtype=np.uint8) % 10,
    )
    return path


def _idx(path: Path, header: bytes, data: np.ndarray) -> None:
    with gzip.open(path, "wb") as handle:
        handle.write(header + data.astype(np.uint8).tobytes())


def write_fashion(cache: Path, n: int = IMAGES) -> Path:
    """The four IDX gz files in ``fashion-mnist/``, headers and all."""
    rng = np.random.default_rng(1)
    folder = cache / "fashion-mnist"
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("train", n), ("t10k", n // 2)):
        _idx(folder / f"{prefix}-labels-idx1-ubyte.gz", b"\0" * 8, np.arange(count) % 10)
        _idx(folder / f"{prefix}-images-idx3-ubyte.gz", b"\0" * 16, rng.integers(0, 256, (count, 28, 28)))
    return folder


def write_cifar10(
    cache: Path, layout: str = "cifar-10-batches-py-target/cifar-10-batches-py", n: int = 12
) -> Path:
    """Five train batches and a test batch, pickled like the real ones (bytes keys)."""
    rng = np.random.default_rng(2)
    folder = cache / layout
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": [int(v) for v in np.arange(n) % 10],
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    return folder


def write_table(path: Path, rows: int = 120, seed: int = 0) -> Path:
    """A small learnable CSV: numeric, categorical and id columns, a yes/no target, a few blanks."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows)
    frame = pd.DataFrame(
        {
            "id": [f"c{i:04d}" for i in range(rows)],
            "age": age,
            "plan": rng.choice(["basic", "plus", "pro"], rows),
            "spend": rng.normal(50, 10, rows).round(2),
            "label": np.where(age > 50, "yes", "no"),
        }
    )
    frame.loc[3, "spend"] = np.nan
    frame.loc[5, "plan"] = None
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path
