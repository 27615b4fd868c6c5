"""Epoch cost: what a trial's epochs cost in a worker, by how data and graphs reach TensorFlow.

    python -m benchmarks.epoch_cost [--smoke] [--out DIR] [--job telco_churn] [--trials 6] [--epochs 6]

A trial fits one epoch per Tune step. This times, in one process configured as a
1-CPU trial's worker, a new model's first epoch (building the model and any tracing
included) and its later ones, four ways: NumPy arrays handed to every Keras ``fit``
(Keras builds a new pipeline each call) with TensorFlow's graph optimizer (Grappler) on;
tf.data pipelines over tensors made once (`tuning_service.training.pipeline`) with Grappler on,
then off: the engine's way before the shared graph; and the engine's way now, the
shared graph (`tuning_service.training.sharedgraph`), whose later models of a family trace
nothing. Every sampled configuration is built and trained once per way, the ways
interleaved; a way's first epochs are also split into those of a family's first model
(which trace) and the others.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks import cli
from benchmarks.reporting import fmt, markdown_table, publish
from tuning_service.core.errors import InputError


def _timed(first: Callable[[], Any], epoch: Callable[[Any, int], Any], epochs: int) -> list[float]:
    """Seconds per epoch; the first includes ``first()``, which builds the model."""
    times, model = [], None
    for e in range(epochs):
        started = time.perf_counter()
        if model is None:
            model = first()
        epoch(model, e)
        times.append(time.perf_counter() - started)
    return times


def _numpy_epochs(build: Callable[[], Any], splits: Any, data: Any, batch: int, epochs: int) -> list[float]:
    def epoch(model: Any, e: int) -> None:
        model.fit(
            data.x_train,
            data.y_train,
            batch_size=batch,
            initial_epoch=e,
            epochs=e + 1,
            validation_data=(data.x_val, data.y_val),
            shuffle=True,
            verbose=0,
        )

    return _timed(lambda: build().to_keras(), epoch, epochs)


def _pipeline_epochs(
    build: Callable[[], Any], splits: Any, data: Any, batch: int, epochs: int
) -> list[float]:
    from tuning_service.training.trialmodel import KerasModel

    fit, val = splits

    def epoch(model: Any, e: int) -> None:
        model.fit_epoch(fit, val, batch_size=batch, order=_order(fit, e))

    return _timed(lambda: KerasModel(build().to_keras()), epoch, epochs)


def _graph_epochs(build: Callable[[], Any], splits: Any, data: Any, batch: int, epochs: int) -> list[float]:
    from tuning_service.training.sharedgraph import GraphModel, data_specs

    fit, val = splits

    def epoch(model: Any, e: int) -> None:
        model.fit_epoch(fit, val, batch_size=batch, order=_order(fit, e))

    return _timed(lambda: GraphModel(build(), data_specs(fit.x, fit.y)), epoch, epochs)


def _order(fit: Any, epoch: int) -> Any:
    from tuning_service.training.pipeline import epoch_order

    return epoch_order(len(fit), 0, epoch)


# name -> (how the epochs are fitted, Grappler on)
WAYS: dict[str, tuple[Callable[..., list[float]], bool]] = {
    "NumPy arrays per fit, Grappler on": (_numpy_epochs, True),
    "tf.data pipelines, Grappler on": (_pipeline_epochs, True),
    "tf.data pipelines, Grappler off (engine before)": (_pipeline_epochs, False),
    "shared graph, Grappler off (engine)": (_graph_epochs, False),
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
    from tuning_service.data.catalog import load_job

    job = load_job(args.job)  # a bad name is refused before TensorFlow is imported

    import keras
    import tensorflow as tf

    from tuning_service.training.kerasstate import configure_tensorflow
    from tuning_service.training.models import network_of
    from tuning_service.training.pipeline import Split

    network = network_of(job.build_model)
    if network is None:
        raise InputError(
            f"job {job.name!r} builds its own models: only vocabulary models train in the shared graph"
        )
    configure_tensorflow(cpus=1, gpus=0)
    data = job.load_data(limit=300 if args.smoke else None)
    splits = (Split.from_arrays(data.x_train, data.y_train), Split.from_arrays(data.x_val, data.y_val))
    trials, epochs = (2, 2) if args.smoke else (args.trials, args.epochs)
    sampled = _sample(job.space, trials, args.seed)
    found: dict[str, dict[str, list[float]]] = {
        way: {"first": [], "first_of_family": [], "first_in_family": [], "later": []} for way in WAYS
    }
    families: dict[str, set[str]] = {way: set() for way in WAYS}
    for i, config in enumerate(sampled):
        cfg = job.model_config(config)
        batch = int(cfg.get("batch_size", job.batch_size))
        # The shared graph's family: everything but the sizes and numbers (see sharedgraph.Structure).
        family = json.dumps(
            {k: v for k, v in cfg.items() if isinstance(v, str) or k == "layers"}, sort_keys=True
        )
        for way, (epochs_of, grappler) in WAYS.items():
            tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": not grappler})
            keras.backend.clear_session(free_memory=False)
            keras.utils.set_random_seed(args.seed + i)
            times = epochs_of(lambda cfg=cfg: network(cfg, data.input_spec), splits, data, batch, epochs)
            found[way]["first"].append(times[0])
            found[way]["first_in_family" if family in families[way] else "first_of_family"].append(times[0])
            families[way].add(family)
            found[way]["later"].extend(times[1:])
        print(f"model {i + 1}/{trials} done", file=sys.stderr, flush=True)
    rows = []
    summary: dict[str, Any] = {}
    for way, times in found.items():
        first, later = statistics.median(times["first"]), statistics.median(times["later"] or [0.0])
        in_family = statistics.median(times["first_in_family"]) if times["first_in_family"] else None
        summary[way] = {
            "first_epoch_s": first,
            "later_epoch_s": later,
            "first_epoch_in_family_s": in_family,
            **times,
        }
        rows.append(
            [way, fmt(first, 3), fmt(in_family, 3), fmt(later, 3), fmt(first / later if later else None, 1)]
        )
    text = "\n".join(
        [
            f"## epoch cost{' (smoke)' if args.smoke else ''}: {job.name}, {trials} models x {epochs} epochs, "
            "1 TensorFlow thread",
            "",
            markdown_table(
                [
                    "way",
                    "first epoch s (median, build included)",
                    "... of a model whose family was seen",
                    "later epochs s (median)",
                    "first / later",
                ],
                rows,
            ),
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
