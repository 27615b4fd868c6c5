"""Arrays kept in the dataset cache: read back as made, made again when unreadable or unkept."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from jobs import digits
from tuning_service.data.arraycache import cached_arrays

ARRAYS = {"x": np.arange(12, dtype=np.float32).reshape(3, 4), "y": np.array([2, 0, 1])}


class Maker:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> dict[str, np.ndarray]:
        self.calls += 1
        return ARRAYS


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


def test_arrays_are_made_once_then_read_back_alike(tmp_path):
    path, make = tmp_path / "cache" / "split.npz", Maker()
    assert same(cached_arrays(path, make), ARRAYS) and path.exists()
    assert same(cached_arrays(path, make), ARRAYS)
    assert make.calls == 1
    assert [p.name for p in path.parent.iterdir()] == ["split.npz"]  # no temporary file left


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 cut short", b"not a zip file at all"])
def test_an_unreadable_file_is_made_again_and_replaced(tmp_path, content):
    path, make = tmp_path / "split.npz", Maker()
    path.write_bytes(content)
    assert same(cached_arrays(path, make), ARRAYS)
    assert make.calls == 1
    assert same(cached_arrays(path, make), ARRAYS) and make.calls == 1


def test_a_cache_that_cannot_be_written_only_costs_the_making(tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    path, make = blocker / "split.npz", Maker()  # its folder would be under a file
    assert same(cached_arrays(path, make), ARRAYS)
    assert same(cached_arrays(path, make), ARRAYS)
    assert make.calls == 2


LOAD = """
import json, sys
from jobs.digits import load_data
data = load_data(data_dir=sys.argv[1], limit=100, seed=int(sys.argv[2]))
print(json.dumps({"sklearn": "sklearn" in sys.modules, "rows": len(data.x_train), "first": data.y_train[:20].tolist()}))
"""


def _load(data_dir, seed: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", LOAD, str(data_dir), str(seed)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_digits_split_is_kept_and_read_back_without_scikit_learn(tmp_path):
    first, again = _load(tmp_path, 0), _load(tmp_path, 0)
    assert first["sklearn"] and not again["sklearn"]
    assert first["rows"] == again["rows"] == 100 and first["first"] == again["first"]
    # The kept split is scikit-learn's, whole; another seed is another file and another split.
    (kept,) = tmp_path.iterdir()
    with np.load(kept) as arrays:
        assert same(dict(arrays), digits._split(0))
    other = _load(tmp_path, 1)
    assert other["sklearn"] and other["first"] != first["first"]
    assert len(list(tmp_path.iterdir())) == 2
