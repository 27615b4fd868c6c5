"""TensorBoard writes: what the driver spends on a trial's TensorBoard file, Tune's logger against ours.

    python -m benchmarks.tensorboard_writes [--smoke] [--out DIR] [--trials 300] [--epochs 3]

A sweep's driver writes each trial's event file in the step that handles the trial's start,
each of its results and its end (`tuning_service/raytune/tensorboard.py`). Here Ray Tune's own
logger (`TBXLoggerCallback`, what a sweep used before) and the sweep's logger each write
``--trials`` trials of ``--epochs`` results as a digits trial reports them, into a temporary
folder, in alternating blocks of 10 trials after a warm-up trial each. The table gives each
logger's CPU and wall time per trial: the driver's cost.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import cli
from benchmarks.reporting import fmt, markdown_table, publish

BLOCK = 10  # trials per logger before the other takes its turn


class _Trial:
    """What a logger reads of Tune's trial: its folder and its searched parameters."""

    def __init__(self, folder: Path, index: int) -> None:
        self.local_path = str(folder / f"trial_{index:05d}")
        self.evaluated_params = {"units": 16 + index % 112, "learning_rate": 1e-3 * (1 + index % 9)}

    def init_local_path(self) -> None:
        Path(self.local_path).mkdir(parents=True, exist_ok=True)


def digits_result(epoch: int, index: int) -> dict[str, Any]:
    """An epoch's result as a digits trial reports it to Tune (the keys of its result.json)."""
    return {
        "loss": 1.0 / epoch,
        "accuracy": 0.5 + 0.01 * epoch,
        "val_loss": 1.1 / epoch,
        "val_accuracy": 0.45 + 0.01 * epoch,
        "epoch": epoch,
        "train_time_s": 0.012,
        "diverged": False,
        "ended_at": 1.8e9 + epoch,
        "node_id": "a" * 56,
        "node_ip": "127.0.0.1",
        "done": False,
        "training_iteration": epoch,
        "trial_id": f"{index:08x}",
        "date": "2026-12-05_18-00-00",
        "timestamp": 1_800_000_000 + epoch,
        "time_this_iter_s": 0.03,
        "time_total_s": 0.03 * epoch,
        "pid": 4242,
        "hostname": "worker",
        "config": {"units": 16 + index % 112, "learning_rate": 1e-3 * (1 + index % 9)},
        "time_since_restore": 0.03 * epoch,
        "iterations_since_restore": epoch,
    }


def _write(logger: Any, folder: Path, indexes: range, epochs: int) -> tuple[float, float]:
    """``indexes``' trials written start to end; (CPU s, wall s) of this process."""
    cpu, wall = time.process_time(), time.perf_counter()
    for index in indexes:
        trial = _Trial(folder, index)
        logger.log_trial_start(trial)
        for epoch in range(1, epochs + 1):
            logger.log_trial_result(epoch, trial, digits_result(epoch, index))
        logger.log_trial_end(trial)
    return time.process_time() - cpu, time.perf_counter() - wall


def time_loggers(folder: Path, trials: int, epochs: int) -> dict[str, dict[str, float]]:
    """Each logger's CPU and wall seconds for ``trials`` trials, in alternating blocks."""
    from ray.tune.logger.tensorboardx import TBXLoggerCallback

    from tuning_service.raytune.tensorboard import TensorBoardLogger, load_tensorboard_writer

    load_tensorboard_writer()
    loggers = {
        "Ray Tune's TBXLoggerCallback": TBXLoggerCallback(),
        "the sweep's TensorBoardLogger": TensorBoardLogger(),
    }
    spent = {name: {"cpu_s": 0.0, "wall_s": 0.0} for name in loggers}
    for n, logger in enumerate(loggers.values()):
        _write(logger, folder / f"warm-up-{n}", range(1), epochs)
    for start in range(0, trials, BLOCK):
        for n, (name, logger) in enumerate(loggers.items()):
            cpu, wall = _write(logger, folder / str(n), range(start, min(start + BLOCK, trials)), epochs)
            spent[name]["cpu_s"] += cpu
            spent[name]["wall_s"] += wall
    return spent


def body(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    trials, epochs = cli.trial_sizes(args, smoke=(4, 2))
    with tempfile.TemporaryDirectory(prefix="tuning-service-tensorboard-writes-") as tmp:
        spent = time_loggers(Path(tmp), trials, epochs)
    loggers = {
        name: {
            "cpu_ms_per_trial": s["cpu_s"] / trials * 1000,
            "wall_ms_per_trial": s["wall_s"] / trials * 1000,
        }
        for name, s in spent.items()
    }
    theirs, ours = loggers.values()
    report: dict[str, Any] = {
        "trials": trials,
        "epochs_per_trial": epochs,
        "loggers": loggers,
        "cpu_ratio": ours["cpu_ms_per_trial"] / theirs["cpu_ms_per_trial"],
    }
    rows = [
        [name, fmt(v["cpu_ms_per_trial"], 2), fmt(v["wall_ms_per_trial"], 2)] for name, v in loggers.items()
    ]
    text = "\n".join(
        [
            f"## TensorBoard writes{' (smoke)' if args.smoke else ''}",
            "",
            f"{trials} trials of {epochs} results each, a trial's start, results and end one after another.",
            "",
            markdown_table(["logger", "CPU per trial (ms)", "wall per trial (ms)"], rows),
            "",
            f"The sweep's logger takes {fmt(report['cpu_ratio'], 2)}x the CPU of Tune's.",
        ]
    )
    publish(out / "tensorboard_writes", "tensorboard_writes", args, text, report)
    return report


def build_parser() -> argparse.ArgumentParser:
    ap = cli.parser("tensorboard_writes", (__doc__ or "").splitlines()[0])
    cli.add_trial_sizes(ap, trials=300, what="timed trials per logger", epochs="results per trial")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(build_parser(), body, argv, "tensorboard_writes")


if __name__ == "__main__":
    sys.exit(main())
