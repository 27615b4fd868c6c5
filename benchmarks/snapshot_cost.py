"""Snapshot keep: what the driver spends archiving Tune's experiment snapshot, as sweeps grow.

    python -m benchmarks.snapshot_keep [--smoke] [--out DIR] [--trials 256,1000,10000] [--repeats 20]

After each step that saved a Tune snapshot, the driver packs the snapshot's state files into
the sweep's ``tune-snapshot.tar`` (`tuning_service/raytune/snapshots.py`'s ``keep``), so a
resume never reads a half-written one. Here, for each sweep size, a staging folder is laid out
as Tune leaves it (a folder per trial, the experiment state with every trial, the searcher's
and the callbacks' states), and ``keep`` archives it ``--repeats`` times, the experiment state
rewritten before each as Tune rewrites it. Each trial takes as much of the experiment state as
one of the default digits sweep's trials (3.3 KB of its own state, 18.4 KB of run metadata).
The table gives the CPU and wall time of one keep: the driver's cost per snapshot.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import cli
from benchmarks.reporting import fmt, markdown_table, publish
from tuning_service.core.errors import InputError

# A digits trial's share of Tune's experiment state: its own JSON state and its run metadata.
TRIAL_STATE_BYTES = 3_300
RUN_METADATA_BYTES = 18_400
SEARCHER_STATE_BYTES = 20_000


def lay_out(staging: Path, trials: int) -> Path:
    """A Tune staging folder for ``trials`` trials; returns its experiment state file."""
    staging.mkdir(parents=True)
    for index in range(trials):
        (staging / f"KerasTrainable_{index:05d}").mkdir()
    (staging / "searcher-state-2026-12-05_18-00-00.pkl").write_bytes(os.urandom(SEARCHER_STATE_BYTES))
    (staging / "callback-states-2026-12-05_18-00-00.pkl").write_bytes(os.urandom(2_000))
    state = staging / "experiment_state-2026-12-05_18-00-00.json"
    _rewrite(state, trials)
    return state


def _rewrite(state: Path, trials: int) -> None:
    """The experiment state written in place, as Tune's `save_to_dir` writes it."""
    trial_data = [[("s" * TRIAL_STATE_BYTES), ("m" * RUN_METADATA_BYTES)] for _ in range(trials)]
    with open(state, "w") as f:
        json.dump({"trial_data": trial_data, "runner_data": {}, "stats": {"start_time": time.time()}}, f)


def time_keep(folder: Path, trials: int, repeats: int) -> dict[str, float]:
    """CPU and wall seconds of one ``keep`` of a ``trials``-trial snapshot, the mean of ``repeats``."""
    from tuning_service.raytune.snapshots import SNAPSHOT_FILE, keep

    staging, target = folder / "staging", folder / SNAPSHOT_FILE
    state = lay_out(staging, trials)
    seen = keep(staging, target, None)  # the driver's first keep finds the state's name
    cpu = wall = 0.0
    for _ in range(repeats):
        _rewrite(state, trials)
        os.utime(state, ns=(time.time_ns(), time.time_ns()))  # a new snapshot, even within a tick
        c, w = time.process_time(), time.perf_counter()
        seen = keep(staging, target, seen)
        cpu += time.process_time() - c
        wall += time.perf_counter() - w
    return {
        "cpu_ms_per_keep": cpu / repeats * 1000,
        "wall_ms_per_keep": wall / repeats * 1000,
        "state_mb": state.stat().st_size / 1e6,
    }


def body(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    sizes, repeats = ([16, 64], 3) if args.smoke else (args.trials, args.repeats)
    if repeats < 1:
        raise InputError(f"--repeats must be >= 1, got {repeats}")
    keeps: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="tuning-service-snapshot-keep-") as tmp:
        for trials in sizes:
            keeps[str(trials)] = time_keep(Path(tmp) / str(trials), trials, repeats)
    report: dict[str, Any] = {"repeats": repeats, "keeps": keeps}
    rows = [
        [n, fmt(k["state_mb"], 1), fmt(k["cpu_ms_per_keep"], 2), fmt(k["wall_ms_per_keep"], 2)]
        for n, k in keeps.items()
    ]
    text = "\n".join(
        [
            f"## snapshot keep{' (smoke)' if args.smoke else ''}",
            "",
            f"One keep of Tune's snapshot into tune-snapshot.tar, the mean of {repeats}.",
            "",
            markdown_table(
                ["trials", "experiment state (MB)", "CPU per keep (ms)", "wall per keep (ms)"], rows
            ),
        ]
    )
    publish(out / "snapshot_keep", "snapshot_keep", args, text, report)
    return report


def build_parser() -> argparse.ArgumentParser:
    ap = cli.parser("snapshot_keep", (__doc__ or "").splitlines()[0])
    ap.add_argument(
        "--trials",
        type=cli.trial_counts,
        default=[256, 1000, 10000],
        help="sweep sizes, comma-separated (default 256,1000,10000)",
    )
    ap.add_argument("--repeats", type=int, default=20, help="keeps timed per size (default 20)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(build_parser(), body, argv, "snapshot_keep")


if __name__ == "__main__":
    sys.exit(main())
