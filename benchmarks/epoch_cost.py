"""Epoch cost: what a trial's epochs cost in a worker, by how data and graphs reach TensorFlow.

    python -m benchmarks.epoch_cost [--smoke] [--out DIR] [--job telco_churn] [--trials 6] [--epochs 6]

A trial fits one epoch per Tune step. This times, in one process configured as a
1-CPU trial's worker, the first epoch of a new model (tracing included) and the later
ones, three ways: NumPy arrays handed to every ``fit`` (Keras builds a new pipeline
each call) with TensorFlow's graph optimizer (Grappler) on, as before; the trial's
tf.data pipelines (`tuning_service.pipeline`) with Grappler on; and the engine's way,
pipelines with Grappler off (`tuning_service.trainable.configure_tensorflow`). Every
sampled configuration is built and trained once per way, the ways interleaved.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks import cli
from benchmarks.reporting import fmt, markdown_table, publish


def _numpy_epochs(model: Any, data: Any, batch: int, epochs: int) -> list[float]:
    times = []
    for epoch in range(epochs):
        started = time.perf_counter()
        model.fit(
            data.x_train,
            data.y_train,
            batch_size=batch,
            initial_epoch=epoch,
            epochs=epoch + 1,
            validation_data=(data.x_val, data.y_val),
            shuffle=True,
            verbose=0,
        )
        times.append(time.perf_counter() - started)
    return times


def _pipeline_epochs(model: Any, data: Any, batch: int, epochs: int) -> list[float]:
    from tuning_service.pipeline import Split

    fit = Split.from_arrays(data.x_train, data.y_train).batches(batch, shuffle_seed=0)
    val = Split.from_arrays(data.x_val, data.y_val).batches(batch)
    times = []
    for epoch in range(epochs):
        started = time.perf_counter()
        model.fit(fit, initial_epoch=epoch, epochs=epoch + 1, validation_data=val, verbose=0)
        times.append(time.perf_counter() - started)
    return times


# name -> (how the epochs are fitted, Grappler on)
WAYS: dict[str, tuple[Callable[[Any, Any, int, int], list[float]], bool]] = {
    "NumPy arrays per fit, Grappler on": (_numpy_epochs, True),
    "tf.data pipelines, Grappler on": (_pipeline_epochs, True),
    "tf.data pipelines, Grappler off (engine)": (_pipeline_epochs, False),
}


def _sample(space: Any, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` configurations drawn from the job's space as a random searcher would."""
    import numpy as np

    rng = np.random.default_rng(seed)
    domains = space.to_ray()
    return [
        {k: (d.sample(random_state=rng) if hasattr(d, "sample") else d) for k, d in domains.items()}
        for _ in range(n)
    ]


def body(args: argparse.Namespace, out: Any) -> dict[str, Any]:
    from tuning_service.catalog import load_job

    job = load_job(args.job)  # a bad name is refused before TensorFlow is imported

    import keras
    import tensorflow as tf

    from tuning_service.trainable import configure_tensorflow

    configure_tensorflow(cpus=1, gpus=0)
    data = job.load_data(limit=300 if args.smoke else None)
    trials, epochs = (2, 2) if args.smoke else (args.trials, args.epochs)
    sampled = _sample(job.space, trials, args.seed)
    found: dict[str, dict[str, list[float]]] = {way: {"first": [], "later": []} for way in WAYS}
    for i, config in enumerate(sampled):
        cfg = job.model_config(config)
        batch = int(cfg.get("batch_size", job.batch_size))
        for way, (epochs_of, grappler) in WAYS.items():
            tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": not grappler})
            keras.backend.clear_session(free_memory=False)
            keras.utils.set_random_seed(args.seed + i)
            model = job.build_model(cfg, data.input_spec)
            times = epochs_of(model, data, batch, epochs)
            found[way]["first"].append(times[0])
            found[way]["later"].extend(times[1:])
        print(f"model {i + 1}/{trials} done", file=sys.stderr, flush=True)
    rows = []
    summary: dict[str, Any] = {}
    for way, times in found.items():
        first, later = statistics.median(times["first"]), statistics.median(times["later"] or [0.0])
        summary[way] = {"first_epoch_s": first, "later_epoch_s": later, **times}
        rows.append([way, fmt(first, 3), fmt(later, 3)])
    text = "\n".join(
        [
            f"## epoch cost{' (smoke)' if args.smoke else ''}: {job.name}, {trials} models x {epochs} epochs, "
            "1 TensorFlow thread",
            "",
            markdown_table(["way", "first epoch s (median)", "later epochs s (median)"], rows),
        ]
    )
    publish(
        out / "epoch_cost",
        "epoch_cost",
        args,
        text,
        {"job": job.name, "models": trials, "epochs": epochs, "ways": summary},
    )
    return summary


def build_parser() -> argparse.ArgumentParser:
    ap = cli.parser("epoch_cost", (__doc__ or "").splitlines()[0])
    ap.add_argument("--job", default="telco_churn", help="a built-in job or a job file (default telco_churn)")
    ap.add_argument("--trials", type=int, default=6, help="models per way (default 6)")
    ap.add_argument("--epochs", type=int, default=6, help="epochs per model (default 6)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(build_parser(), body, argv, "epoch_cost")


if __name__ == "__main__":
    sys.exit(main())
