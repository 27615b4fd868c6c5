"""Arrays a job derives from a dataset, kept in the dataset cache so the next load only reads them.

A built-in job whose split takes a library import and a computation that never change for the
same inputs (digits: scikit-learn's loader and stratified split) keeps the result as one `.npz`
file. The file's name holds everything the arrays depend on, so a changed input reads as a
miss, never as stale data. Reading or writing it is best effort: any failure makes the arrays
afresh, and a cache that cannot be written (a read-only home) only costs the time it would save.
"""

from __future__ import annotations

import logging
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def cached_arrays(path: Path, make: Callable[[], Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays kept at ``path``, or ``make()``'s, then kept there for the next call."""
    try:
        with np.load(path, allow_pickle=False) as kept:
            return {name: kept[name] for name in kept.files}
    except FileNotFoundError:
        pass
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:  # cut short or not ours: made again
        log.debug("ignoring the unreadable cached arrays %s: %s", path, exc)
    arrays = dict(make())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside it, then renamed: a reader never sees half a file, and of two processes
        # making it at once, either one's (identical) file wins.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                np.savez(out, allow_pickle=False, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.debug("not keeping the arrays at %s: %s", path, exc)
    return arrays
