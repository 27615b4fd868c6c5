"""Overhead: a sweep of short trials; how much of the slots' time goes to training.

    python -m benchmarks.overhead [--smoke] [--out DIR] [--trials 32] [--epochs 3] [--tune-only]

Slot efficiency = (sum of the trials' training time) / (sweep wall time x concurrent
slots). A trial's overhead is the time its slot spent on it (from the end of the
slot's previous trial to the end of its last epoch) less its training time: actor
reuse, model build, scheduling, per-epoch reporting and checkpointing.

Between the first and the last epoch it also reports the CPU the sweep's driver (this
process) used per trial, its garbage collections (`gcpauses.py`), and how many cores the
machine kept busy. The driver's work shares
the cores with training: at a slot efficiency E, the slots train on slots x E cores, so the
driver has at most (cores - slots x E) x (training per trial) / (slots x E) of CPU per trial,
before the workers' own per-trial work.

``--tune-only`` measures the floor Ray Tune's own loop sets: the same sweep with the service's
per-trial work in the driver switched off (`service_writes_off`). What is left is Tune's step
and its JSON results, which the sweep reads its trials' histories from. A bound for the
scenario, not a way to run sweeps: such a sweep could not be resumed and records its epochs
only as it ends.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest import mock

from benchmarks import cli
from benchmarks.cpuwindow import CpuWindow
from benchmarks.gcpauses import GcPauses
from benchmarks.reporting import fmt, markdown_table, publish
from benchmarks.timeline import worker_timeline
from tuning_service.core.results import SweepResult
from tuning_service.core.spec import SweepSpec
from tuning_service.job import Job
from tuning_service.space import Float, Int

TARGET_EFFICIENCY = 0.85
TARGET_OVERHEAD_S = 0.150


def overhead_job(epochs: int) -> Job:
    """Digits with one small hidden layer: a trial trains for about a second."""
    from jobs.digits import JOB

    return replace(
        JOB,
        name="digits",
        space={"units": Int(16, 64, log=True), "learning_rate": Float(1e-3, 1e-2, log=True)},
        defaults={"layers": 1, "activation": "relu", "optimizer": "adam", "batch_size": 32},
        max_epochs=epochs,
    )


@contextmanager
def service_writes_off() -> Iterator[None]:
    """The driver does none of the service's per-trial work while inside: no live writes to the
    results store (its final reconciliation still records every trial), no progress.csv or
    TensorBoard file, and no snapshot but Tune's forced ones (the last)."""
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.logger import CSVLoggerCallback

    from tuning_service.raytune.recorder import RecorderCallback
    from tuning_service.raytune.tensorboard import TensorBoardLogger

    tunes_checkpoint = TuneController.checkpoint

    def forced_only(self: Any, force: bool = False, wait: bool = False) -> None:
        if force:
            tunes_checkpoint(self, force=force, wait=wait)

    def nothing(*args: Any, **kwargs: Any) -> None:
        return None

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(TuneController, "checkpoint", forced_only))
        for hook in ("on_trial_start", "on_trial_result", "on_checkpoint", "on_trial_complete"):
            stack.enter_context(mock.patch.object(RecorderCallback, hook, nothing))
        for logger in (CSVLoggerCallback, TensorBoardLogger):
            for hook in ("on_trial_start", "on_trial_result", "on_trial_complete"):
                stack.enter_context(mock.patch.object(logger, hook, nothing))
        yield


def trial_pids(sweep_dir: Path) -> dict[str, int]:
    """Which worker process ran each trial, from Ray Tune's per-trial result.json files."""
    pids: dict[str, int] = {}
    for path in (sweep_dir / "trials").glob("*/result.json"):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if "trial_id" in row and "pid" in row:
                pids[str(row["trial_id"])] = int(row["pid"])
                break
    return pids


def driver_budget_s(cores: int, slots: int, efficiency: float, train_per_trial_s: float) -> float:
    """The most CPU seconds per trial the driver may use for the slots to reach ``efficiency``
    on ``cores`` (see the module docstring): a bound from the cores alone."""
    training_cores = slots * efficiency
    return max(0.0, cores - training_cores) * train_per_trial_s / training_cores


def analyse(
    result: SweepResult,
    t0: float,
    wall: float,
    slots: int,
    cpu: CpuWindow | None = None,
    gc_pauses: GcPauses | None = None,
) -> dict[str, Any]:
    """Slot efficiency, per-trial overheads, where the rest of the wall time went, and the
    driver's CPU and garbage collections between the first and the last epoch."""
    spans = {}
    for trial in result.trials:
        rows = [r for r in trial.history if r.get("ended_at") is not None]
        if not rows:
            continue
        first = rows[0]
        start = float(first["ended_at"]) - float(first.get("time_this_iter_s") or 0.0)
        spans[trial.trial_id] = (start, float(rows[-1]["ended_at"]), trial.train_time_s)
    train = sum(t.train_time_s for t in result.trials)
    first_start = min((s for s, _, _ in spans.values()), default=t0)
    last_end = max((e for _, e, _ in spans.values()), default=t0)
    out: dict[str, Any] = {
        "trials": len(result.trials),
        "epochs": result.epochs,
        "slots": slots,
        "wall_s": wall,
        "train_s": train,
        "slot_efficiency": train / (wall * slots) if wall > 0 else math.nan,
        "startup_s": first_start - t0,  # Ray start, first actors, TensorFlow import, first build
        "tail_s": t0 + wall - last_end,  # last results, Ray shutdown, files and database rows
        "window_s": last_end - first_start,
        "window_efficiency": train / ((last_end - first_start) * slots)
        if last_end > first_start
        else math.nan,
        "mean_overhead_s": (wall * slots - train) / len(result.trials) if result.trials else math.nan,
    }
    if cpu is not None and result.trials and last_end > first_start:
        driver, machine = cpu.used(first_start, last_end)
        cores = os.cpu_count() or 1
        out["driver_cpu_per_trial_s"] = driver / len(result.trials)
        out["driver_budget_per_trial_s"] = driver_budget_s(
            cores, slots, TARGET_EFFICIENCY, train / len(result.trials)
        )
        out["window_busy_cores"] = None if machine is None else machine / (last_end - first_start)
        out["cores"] = cores
    if gc_pauses is not None and last_end > first_start:
        collections = gc_pauses.within(first_start, last_end)
        out["driver_gc_collections"] = {str(g): n for g, (n, _) in sorted(collections.items())}
        out["driver_gc_s"] = sum(s for _, s in collections.values())
    pids = trial_pids(result.sweep_dir)
    if pids and all(tid in pids for tid in spans):
        by_slot: dict[int, list[tuple[float, float, float]]] = defaultdict(list)
        for tid, span in spans.items():
            by_slot[pids[tid]].append(span)
        overheads = []
        for runs in by_slot.values():
            previous = first_start
            for _, end, trained in sorted(runs, key=lambda s: s[1]):
                overheads.append(end - previous - trained)
                previous = end
        out["per_trial_overhead_s"] = sorted(overheads)
        out["median_overhead_s"] = statistics.median(overheads)
        out["p90_overhead_s"] = sorted(overheads)[min(len(overheads) - 1, int(0.9 * len(overheads)))]
        out["workers"] = len(by_slot)
    else:
        out["median_overhead_s"] = None
        out["note"] = "no worker pids in Ray's result.json files: per-trial overhead not available"
    return out


def run_overhead(args: argparse.Namespace, workdir: Path, timeline: Path | None = None) -> dict[str, Any]:
    """The sweep, timed; on a Ray started first with Ray's timeline written to ``timeline`` if given."""
    from tuning_service.sweeps.runner import run_sweep

    trials, epochs = (4, 1) if args.smoke else (args.trials, args.epochs)
    job = overhead_job(epochs)
    spec = SweepSpec(
        job=job.name,
        searcher="random",
        scheduler="fifo",
        num_samples=trials,
        max_epochs=epochs,
        cpus_per_trial=args.cpus_per_trial,
        seed=args.seed,
        **({"checkpoint_frequency": args.checkpoint_frequency} if args.checkpoint_frequency else {}),
        storage=str(workdir),
        data_limit=256 if args.smoke else None,
    )
    slots = max(1, int((os.cpu_count() or 1) // args.cpus_per_trial))
    with (
        worker_timeline(timeline) if timeline is not None else nullcontext(),
        service_writes_off() if args.tune_only else nullcontext(),
        CpuWindow() as cpu,
        GcPauses() as gc_pauses,
    ):
        t0, started = time.time(), time.perf_counter()
        result = run_sweep(spec, job=job)
        wall = time.perf_counter() - started
    return analyse(result, t0, wall, slots, cpu, gc_pauses) | {
        "tune_only": bool(args.tune_only),
        "epochs_per_trial": epochs,
        "engine_wall_s": result.wall_time_s,
    }


def body(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        report = run_overhead(args, Path(tmp), out / "timeline-overhead" if args.timeline else None)
    report["targets"] = {
        "slot_efficiency": {
            "target": TARGET_EFFICIENCY,
            "met": report["slot_efficiency"] >= TARGET_EFFICIENCY,
        },
        "median_overhead_s": {
            "target": TARGET_OVERHEAD_S,
            "met": report["median_overhead_s"] is not None
            and report["median_overhead_s"] <= TARGET_OVERHEAD_S,
        },
    }
    rows = [
        ["trials x epochs", f"{report['trials']} x {report['epochs_per_trial']}"],
        ["concurrent slots", report["slots"]],
        ["workers that ran trials", report.get("workers", "-")],
        ["sweep wall time (s)", fmt(report["wall_s"], 1)],
        ["sum of training time (s)", fmt(report["train_s"], 1)],
        [f"slot efficiency (target >= {TARGET_EFFICIENCY})", fmt(report["slot_efficiency"], 3)],
        ["startup: run_sweep call to first epoch (s)", fmt(report["startup_s"], 1)],
        ["tail: last epoch to run_sweep return (s)", fmt(report["tail_s"], 1)],
        ["slot efficiency between first and last epoch", fmt(report["window_efficiency"], 3)],
        [
            f"median per-trial overhead (ms, target <= {TARGET_OVERHEAD_S * 1000:.0f})",
            _ms(report["median_overhead_s"]),
        ],
        ["90th percentile per-trial overhead (ms)", _ms(report.get("p90_overhead_s"))],
        ["mean overhead per trial incl. startup and tail (ms)", _ms(report["mean_overhead_s"])],
        [
            "the driver's CPU per trial between first and last epoch (ms)",
            _ms(report.get("driver_cpu_per_trial_s")),
        ],
        [
            f"... the most a slot efficiency of {TARGET_EFFICIENCY} leaves it on these cores (ms)",
            _ms(report.get("driver_budget_per_trial_s")),
        ],
        [
            f"cores busy between first and last epoch (of {report.get('cores', '-')})",
            fmt(report.get("window_busy_cores"), 2),
        ],
        [
            "the driver's garbage collections between first and last epoch (ms; count per generation)",
            _collections(report),
        ],
    ]
    text = "\n".join(
        [
            f"## overhead{' (smoke)' if args.smoke else ''}"
            + (" with the service's per-trial driver work off (--tune-only)" if args.tune_only else ""),
            "",
            markdown_table(["measure", "value"], rows),
        ]
    )
    publish(out / ("overhead-tune-only" if args.tune_only else "overhead"), "overhead", args, text, report)
    return report


def _collections(report: dict[str, Any]) -> str:
    counts = report.get("driver_gc_collections")
    if counts is None:
        return "-"
    per_generation = ", ".join(f"{n} of generation {g}" for g, n in counts.items()) or "none"
    return f"{_ms(report['driver_gc_s'])} ({per_generation})"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


def build_parser() -> argparse.ArgumentParser:
    ap = cli.parser("overhead", (__doc__ or "").splitlines()[0])
    ap.add_argument("--trials", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=3, help="epochs per trial (default 3)")
    ap.add_argument("--cpus-per-trial", type=float, default=1.0)
    ap.add_argument(
        "--timeline",
        action="store_true",
        help="run on a Ray started first (its start falls outside the wall time) and write Ray's timeline "
        "and the time per worker call to the out dir (benchmarks/timeline.py)",
    )
    ap.add_argument(
        "--tune-only",
        action="store_true",
        help="switch off the service's per-trial work in the driver (live store writes, progress.csv, "
        "TensorBoard files, snapshots): the floor Ray Tune's own loop sets",
    )
    ap.add_argument(
        "--checkpoint-frequency", type=int, help="the sweep's checkpoint_frequency (default: the engine's)"
    )
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(build_parser(), body, argv, "overhead")


if __name__ == "__main__":
    sys.exit(main())
