"""Snapshot cost: what Tune's experiment snapshot costs the driver as sweeps grow, Tune's trial metadata against the sweep's.

    python -m benchmarks.snapshot_cost [--smoke] [--out DIR] [--trials 256,1000,10000] [--epochs 3] [--repeats 10]

In the steps that save a snapshot, Tune encodes each trial changed since the last one (its
state and its run metadata) and writes every trial into the experiment state file; the driver
then packs the state files into the sweep's ``tune-snapshot.tar``
(`tuning_service/raytune/snapshots.py`'s ``keep``), so a resume never reads a half-written one.
Here, for each sweep size, Tune's own trials (stubs: no actor, no checkpoint) each take
``--epochs`` results as a digits trial reports them, once with Tune's run metadata and once
with the sweep's (`tuning_service/raytune/trialmetadata.py`). The table gives the encoding of
one trial, and the write and the keep of the whole experiment state, the mean of
``--repeats``: a staging folder is laid out as Tune leaves it (a folder per trial, the
searcher's and the callbacks' states) and the state is rewritten before each keep, as Tune
rewrites it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from benchmarks import cli
from benchmarks.reporting import fmt, markdown_table, publish
from benchmarks.tensorboard_writes import digits_result
from tuning_service.core.errors import InputError

SEARCHER_STATE_BYTES = 20_000  # a random searcher's state, about


def _metadata() -> dict[str, Callable[[], AbstractContextManager[Any]]]:
    from tuning_service.raytune.trialmetadata import lean_run_metadata

    return {"Ray Tune's": nullcontext, "the sweep's": lean_run_metadata}


def trials_state(trials: int, epochs: int) -> tuple[list[list[str]], float]:
    """Each trial's encoded state and run metadata after ``epochs`` results, as Tune's snapshot
    holds them, and the CPU seconds of one trial's encoding (the mean)."""
    from ray.tune.experiment import Trial

    data, cpu = [], 0.0
    for index in range(trials):
        trial = Trial(
            "KerasTrainable", config=digits_result(1, index)["config"], stub=True, trial_id=f"{index:08x}"
        )
        for epoch in range(1, epochs + 1):
            trial.update_last_result(digits_result(epoch, index))
        start = time.process_time()
        data.append(list(trial.get_json_state()))
        cpu += time.process_time() - start
    return data, cpu / trials


def _write_state(state: Path, trial_data: list[list[str]]) -> None:
    """The experiment state written in place, as Tune's ``save_to_dir`` writes it."""
    from ray.tune.utils.serialization import TuneFunctionEncoder

    runner = {"trial_data": trial_data, "runner_data": {}, "stats": {"start_time": time.time()}}
    with open(state, "w") as f:
        json.dump(runner, f, cls=TuneFunctionEncoder)


def lay_out(staging: Path, trial_data: list[list[str]]) -> Path:
    """A Tune staging folder for these trials; returns its experiment state file."""
    staging.mkdir(parents=True)
    for index in range(len(trial_data)):
        (staging / f"KerasTrainable_{index:05d}").mkdir()
    (staging / "searcher-state-2026-12-05_18-00-00.pkl").write_bytes(os.urandom(SEARCHER_STATE_BYTES))
    (staging / "callback-states-2026-12-05_18-00-00.pkl").write_bytes(os.urandom(2_000))
    state = staging / "experiment_state-2026-12-05_18-00-00.json"
    _write_state(state, trial_data)
    return state


def time_snapshot(folder: Path, trial_data: list[list[str]], repeats: int) -> dict[str, float]:
    """The experiment state's write and keep (CPU and wall ms each, the mean of ``repeats``)."""
    from tuning_service.raytune.snapshots import SNAPSHOT_FILE, keep

    staging, target = folder / "staging", folder / SNAPSHOT_FILE
    state = lay_out(staging, trial_data)
    seen = keep(staging, target, None)  # the driver's first keep finds the state's name
    spent = {"write_cpu_ms": 0.0, "write_wall_ms": 0.0, "keep_cpu_ms": 0.0, "keep_wall_ms": 0.0}
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        _write_state(state, trial_data)
        os.utime(state, ns=(time.time_ns(), time.time_ns()))  # a new snapshot, even within a tick
        written = time.process_time(), time.perf_counter()
        seen = keep(staging, target, seen)
        kept = time.process_time(), time.perf_counter()
        spent["write_cpu_ms"] += (written[0] - cpu) * 1000
        spent["write_wall_ms"] += (written[1] - wall) * 1000
        spent["keep_cpu_ms"] += (kept[0] - written[0]) * 1000
        spent["keep_wall_ms"] += (kept[1] - written[1]) * 1000
    return {k: v / repeats for k, v in spent.items()} | {"state_mb": state.stat().st_size / 1e6}


def body(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    sizes, epochs, repeats = ([16, 64], 2, 2) if args.smoke else (args.trials, args.epochs, args.repeats)
    if repeats < 1 or epochs < 1:
        raise InputError(f"--repeats and --epochs must be >= 1, got {repeats} and {epochs}")
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="tuning-service-snapshot-cost-") as tmp:
        for trials in sizes:
            for name, metadata in _metadata().items():
                with metadata():
                    trial_data, encode_s = trials_state(trials, epochs)
                timed = time_snapshot(Path(tmp) / f"{trials}-{len(runs)}", trial_data, repeats)
                runs[f"{trials} {name}"] = {
                    "trials": trials,
                    "metadata": name,
                    "trial_kb": sum(len(s) for s in trial_data[0]) / 1000,
                    "encode_ms_per_trial": encode_s * 1000,
                    **timed,
                }
    report: dict[str, Any] = {"epochs_per_trial": epochs, "repeats": repeats, "runs": runs}
    rows = [
        [
            r["trials"],
            r["metadata"],
            fmt(r["trial_kb"], 1),
            fmt(r["encode_ms_per_trial"], 3),
            fmt(r["state_mb"], 1),
            f"{fmt(r['write_cpu_ms'], 1)} / {fmt(r['write_wall_ms'], 1)}",
            f"{fmt(r['keep_cpu_ms'], 1)} / {fmt(r['keep_wall_ms'], 1)}",
        ]
        for r in runs.values()
    ]
    header = ["trials", "run metadata", "a trial (KB)", "its encoding (CPU ms)", "experiment state (MB)"]
    text = "\n".join(
        [
            f"## snapshot cost{' (smoke)' if args.smoke else ''}",
            "",
            f"Trials of {epochs} results; the state's write (as Tune's save) and keep (into tune-snapshot.tar),"
            f" CPU / wall ms, the mean of {repeats}.",
            "",
            markdown_table([*header, "write (ms)", "keep (ms)"], rows),
        ]
    )
    publish(out / "snapshot_cost", "snapshot_cost", args, text, report)
    return report


def build_parser() -> argparse.ArgumentParser:
    ap = cli.parser("snapshot_cost", (__doc__ or "").splitlines()[0])
    cli.add_trial_counts(ap, [256, 1000, 10000])
    ap.add_argument("--epochs", type=int, default=3, help="results per trial (default 3)")
    ap.add_argument("--repeats", type=int, default=10, help="snapshots timed per size (default 10)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(build_parser(), body, argv, "snapshot_cost")


if __name__ == "__main__":
    sys.exit(main())
