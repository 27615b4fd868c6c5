"""Store writes: what the driver spends recording a trial's start, its epochs, a checkpoint and its end.

    python -m benchmarks.store_writes [--smoke] [--out DIR] [--trials 300] [--epochs 3] [--db URL]

The live recorder (`tuning_service/raytune/recorder.py`) makes these writes in the driver's
step that hands a trial its next epoch, so each one delays that trial. Here they run one
after another, as a sweep makes them, into a fresh SQLite file (or an empty PostgreSQL
database: --db, or $STORE_SCALE_DB for a URL with a password), after a warm-up trial. The
table gives each write's median and 90th percentile, and the writes' total per trial.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks import cli
from benchmarks.reporting import fmt, markdown_table, publish
from benchmarks.store_scale import add_db_option, check_empty, database_url, empty_sweeps

SWEEP_ID = "store-writes"
WRITES = ("start", "epoch", "checkpoint", "finish")


def _config(index: int) -> dict[str, Any]:
    """A config as the default sweep records it (the space's values and the job's defaults)."""
    return {
        "units": 16 + index % 112,
        "layers": 1 + index % 3,
        "dropout": 0.1 * (index % 5),
        "learning_rate": 1e-3 * (1 + index % 9),
        "activation": "relu",
        "optimizer": "adam",
        "batch_size": 32,
    }


def _metrics(epoch: int) -> dict[str, float]:
    """An epoch's numbers as the recorder keeps them (Keras's logs and the engine's keys)."""
    return {
        "accuracy": 0.5 + 0.01 * epoch,
        "loss": 1.0 / epoch,
        "val_accuracy": 0.45 + 0.01 * epoch,
        "val_loss": 1.1 / epoch,
        "train_time_s": 0.012,
        "time_this_iter_s": 0.03,
    }


def _trial(store: Any, index: int, epochs: int, times: dict[str, list[float]] | None) -> None:
    """One trial's writes, each timed into ``times`` (None: a warm-up)."""
    trial_id, config = f"trial_{index:05d}", _config(index)
    node = {"node_ip": "127.0.0.1", "node_id": "a" * 56, "hostname": "worker"}

    def timed(kind: str, write: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        began = time.perf_counter()
        write(SWEEP_ID, trial_id, *args, **kwargs)
        if times is not None:
            times[kind].append(time.perf_counter() - began)

    timed("start", store.start_trial, config)
    for epoch in range(1, epochs + 1):
        timed(
            "epoch",
            store.record_epoch,
            epoch,
            mode="max",
            value=0.45 + 0.01 * epoch,
            metrics=_metrics(epoch),
            config=config,
            node=node,
            train_time_s=0.012 * epoch,
            duration_s=0.03 * epoch,
            restarted=epoch == 1,
        )
    timed("checkpoint", store.record_checkpoint, f"checkpoints/{trial_id}")
    timed("finish", store.finish_trial, "completed", config=config, duration_s=0.03 * epochs)


def time_writes(store: Any, trials: int, epochs: int) -> dict[str, list[float]]:
    """Every write of ``trials`` trials of ``epochs`` epochs, in seconds, by kind."""
    store.create_sweep(
        SWEEP_ID,
        job="digits",
        job_ref="digits",
        metric="val_accuracy",
        mode="max",
        searcher="random",
        scheduler="fifo",
        seed=0,
        num_samples=trials + 1,
        max_epochs=epochs,
        space={},
        spec={"job": "digits"},
        versions={},
    )
    _trial(store, trials, epochs, None)
    times: dict[str, list[float]] = {kind: [] for kind in WRITES}
    for index in range(trials):
        _trial(store, index, epochs, times)
    return times


def body(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from tuning_service.store import open_store

    trials, epochs = cli.trial_sizes(args, smoke=(5, 2))
    with tempfile.TemporaryDirectory(prefix="tuning-service-store-writes-") as tmp:
        url = database_url(args, Path(tmp))
        with open_store(url, storage=Path(tmp)) as store:
            if url is not None:
                check_empty(store)
            shown = store.display_url if url is not None else "SQLite (a file in a temporary folder)"
            try:
                times = time_writes(store, trials, epochs)
            finally:
                if url is not None:
                    empty_sweeps(store, [SWEEP_ID])
    per_trial = sum(sum(values) for values in times.values()) / trials
    report: dict[str, Any] = {
        "database": shown,
        "trials": trials,
        "epochs_per_trial": epochs,
        "writes": {
            kind: {
                "count": len(values),
                "median_ms": statistics.median(values) * 1000,
                "p90_ms": sorted(values)[int(0.9 * (len(values) - 1))] * 1000,
            }
            for kind, values in times.items()
        },
        "per_trial_ms": per_trial * 1000,
    }
    rows = [
        [kind, w["count"], fmt(w["median_ms"], 2), fmt(w["p90_ms"], 2)]
        for kind, w in report["writes"].items()
    ]
    rows.append(
        [f"all of a trial's writes ({epochs} epochs), mean", trials, fmt(report["per_trial_ms"], 2), "-"]
    )
    text = "\n".join(
        [
            f"## store writes{' (smoke)' if args.smoke else ''}",
            "",
            f"Database: {shown}; {trials} trials of {epochs} epochs, one write after another.",
            "",
            markdown_table(["write", "count", "median (ms)", "90th percentile (ms)"], rows),
        ]
    )
    publish(out / "store_writes", "store_writes", args, text, report)
    return report


def build_parser() -> argparse.ArgumentParser:
    ap = cli.parser("store_writes", (__doc__ or "").splitlines()[0])
    cli.add_trial_sizes(ap, trials=300, what="timed trials", epochs="epochs per trial")
    add_db_option(ap)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(build_parser(), body, argv, "store_writes")


if __name__ == "__main__":
    sys.exit(main())
