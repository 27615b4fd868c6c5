"""A finished sweep's per-epoch rows as columns (``curves.npz``), written next to trials.json.

trials.json keeps every trial's whole history as JSON: the record users and tools read,
but 10,000 trials of 30 epochs are about 100 MB that take a second to parse before a
report can draw anything. The report needs only five numbers per epoch, so the sweep's
end also writes them as NumPy columns (one row per epoch, trials in trials.json's order)
plus the trial summaries without their histories: the same report data in milliseconds.

The file names the trials.json it was written with (size and modification time); a
trials.json changed since (or a sweep from before this file existed) is read the slow
way, so the report never draws from stale columns.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

CURVES_NPZ = "curves.npz"
_FORMAT = 1
_COLUMNS = ("trial", "epoch", "metric", "end", "duration")


@dataclass(frozen=True)
class Columns:
    """Per-epoch rows of every trial: ``trial`` indexes ``trials``; NaN where a value is missing.

    ``trials`` are the trial summaries as trials.json holds them, less their histories.
    ``metric`` is NaN where the epoch diverged or reported no finite value; ``end`` is the
    epoch's end (a Unix time), ``duration`` its length. ``first_start`` is the earliest
    epoch start of the sweep (NaN when none is known).
    """

    trials: list[dict[str, Any]]
    trial: np.ndarray
    epoch: np.ndarray
    metric: np.ndarray
    end: np.ndarray
    duration: np.ndarray
    first_start: float


def columns(trials: Sequence[Mapping[str, Any]], metric: str) -> Columns:
    """Trials (as trials.json holds them, in its order) as columns of their epochs."""
    rows: dict[str, list[float]] = {name: [] for name in _COLUMNS}
    first_start = math.inf
    for index, t in enumerate(trials):
        for h in t.get("history") or ():
            stamp = h.get("ended_at", h.get("timestamp"))
            length = float(h.get("time_this_iter_s") or 0.0)
            if stamp is not None:
                first_start = min(first_start, float(stamp) - length)
            if h.get("training_iteration") is None:
                continue
            value = h.get(metric)
            finite = isinstance(value, int | float) and math.isfinite(value) and not h.get("diverged")
            rows["trial"].append(index)
            rows["epoch"].append(int(h["training_iteration"]))
            rows["metric"].append(float(value) if finite else math.nan)
            rows["end"].append(float(stamp) if stamp is not None else math.nan)
            rows["duration"].append(length)
    return Columns(
        trials=[{k: v for k, v in t.items() if k != "history"} for t in trials],
        trial=np.asarray(rows["trial"], dtype=np.int32),
        epoch=np.asarray(rows["epoch"], dtype=np.int32),
        metric=np.asarray(rows["metric"], dtype=np.float64),
        end=np.asarray(rows["end"], dtype=np.float64),
        duration=np.asarray(rows["duration"], dtype=np.float64),
        first_start=first_start if first_start != math.inf else math.nan,
    )


def encode(trials: Sequence[Mapping[str, Any]], metric: str, beside: os.stat_result) -> bytes:
    """The file's bytes for ``trials``; ``beside`` is the trials.json they were written to."""
    cols = columns(trials, metric)
    meta = {
        "format": _FORMAT,
        "trials_json": [beside.st_size, beside.st_mtime_ns],
        "first_start": None if math.isnan(cols.first_start) else cols.first_start,
        "trials": cols.trials,
    }
    buf = io.BytesIO()
    np.savez(
        buf,
        meta=np.frombuffer(json.dumps(meta, default=str).encode(), dtype=np.uint8),
        **{name: getattr(cols, name) for name in _COLUMNS},
    )
    return buf.getvalue()


def read(path: Path, beside: Path) -> Columns | None:
    """The columns in ``path``; None where there is no file, or it is damaged or older than ``beside``."""
    try:
        stamp = os.stat(beside)
        with np.load(path, allow_pickle=False) as npz:
            meta: Mapping[str, Any] = json.loads(npz["meta"].tobytes())
            arrays = {name: npz[name] for name in _COLUMNS}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as exc:
        log.warning("%s is unreadable (%s); reading %s instead", path, exc, beside.name)
        return None
    if meta.get("format") != _FORMAT or meta.get("trials_json") != [stamp.st_size, stamp.st_mtime_ns]:
        log.debug("%s was written with another %s; reading that instead", path, beside.name)
        return None
    first = meta.get("first_start")
    return Columns(
        trials=list(meta["trials"]),
        first_start=float(first) if first is not None else math.nan,
        **arrays,
    )
