"""Multi-objective sweep on digits (accuracy vs parameter count): ours against Optuna's NSGA-II.

python -m benchmarks.multiobjective [--smoke] [--out DIR] [--trials N] [--epochs E] [--seed S]

Ours is what ``tuning-service run digits --searcher nsga2 --objective val_accuracy:max
--objective params:min`` runs: NSGA-II suggestions, MO-ASHA stopping (ASHA ranking by
non-dominated sorting), N trials of at most E epochs, two at a time on Ray. The peer is an
in-process Optuna study with ``NSGAIISampler`` (same seed, same population size as our
nsga2's default), the same space (``Param.to_optuna``), builder and data. Optuna cannot prune
a multi-objective study, so each peer trial trains all E epochs; its objectives are the best
val_accuracy over its epochs and ``model.count_params()``.

Same budget means the same epochs: the peer runs trials until it has trained as many epochs
as our sweep did (its last trial cut short at the budget, as the other Optuna peers are), not
N trials: N full trials would give it every epoch our early stopping saved.

Both fronts are scored by their exact 2-D hypervolume against one reference point: val
accuracy 0 and the parameter count of the space's largest model (every parameter at its
largest value), reported as the share of the box [0, 1] x [0, that count] the front dominates.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks import cli
from benchmarks.ours import sweep
from benchmarks.peers import Context, batch_size, require
from benchmarks.problems import get_problem
from benchmarks.reporting import fmt, markdown_table, publish
from tuning_service.core.errors import InputError
from tuning_service.core.pareto import Vector
from tuning_service.core.results import PARETO_JSON
from tuning_service.job import Job
from tuning_service.raytune.searchers import nsga2
from tuning_service.space import Choice, Float, Int

log = logging.getLogger(__name__)

OBJECTIVES = ("val_accuracy:max", "params:min")
ACCURACY, PARAMS = "val_accuracy", "params"


def hypervolume_2d(points: Sequence[Vector], reference: Vector) -> float:
    """The area both-minimised ``points`` dominate up to ``reference`` (exact, a sweep line):
    points sorted by the first objective, each adds the strip below the lowest second value so far.
    Points that do not beat the reference in both objectives add nothing."""
    rx, ry = reference
    area, lowest = 0.0, ry
    for x, y in sorted((p[0], p[1]) for p in points if p[0] < rx and p[1] < ry):
        if y < lowest:
            area += (rx - x) * (lowest - y)
            lowest = y
    return area


def front_hypervolume(front: Sequence[dict[str, float]], max_params: int) -> float:
    """Share of [0, 1] x [0, max_params] (accuracy up, parameters down) the front dominates."""
    points = [(-m[ACCURACY], m[PARAMS]) for m in front]
    return hypervolume_2d(points, (0.0, float(max_params))) / max_params


def largest_params(job: Job, input_spec: Any) -> int:
    """Parameter count of the space's largest model: every numeric parameter at its top value."""
    import keras

    top: dict[str, Any] = {}
    for name, param in job.space.items():
        if isinstance(param, (Int, Float)):
            top[name] = param.high
        elif isinstance(param, Choice):
            top[name] = param.values[0]
    keras.backend.clear_session()
    return int(job.build_model(job.model_config(top), input_spec).count_params())


def default_population() -> int:
    """Our nsga2 searcher's default population size, so both NSGA-IIs breed alike."""
    return int(inspect.signature(nsga2.build).parameters["population_size"].default)


def ours(ctx: Context, trials: int) -> dict[str, Any]:
    """Our sweep as the command runs it; the front read back from its pareto_front.json."""
    result, _, wall = sweep(
        ctx, ctx.problem.job, searcher="nsga2", scheduler="asha", num_samples=trials, objectives=OBJECTIVES
    )
    recorded = json.loads((result.sweep_dir / PARETO_JSON).read_text(encoding="utf-8"))["front"]
    return {
        "tool": "tuning-service nsga2 + mo-asha",
        "wall_s": wall,
        "epochs": result.epochs,
        "trials": len(result.trials),
        "counts": result.counts(),
        "front": [{ACCURACY: m[ACCURACY], PARAMS: m[PARAMS], "epoch": m["epoch"]} for m in recorded],
        "all": [dict(t.objectives) for t in result.trials if t.objectives],
    }


def optuna_nsga2(ctx: Context, epoch_budget: int) -> dict[str, Any]:
    """An in-process Optuna NSGA-II study, asked and told, until it has trained ``epoch_budget`` epochs."""
    optuna = require("optuna")
    import keras

    job, epochs = ctx.problem.job, ctx.problem.max_epochs
    started = time.perf_counter()
    data = ctx.load()
    keras.utils.set_random_seed(ctx.seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.NSGAIISampler(population_size=default_population(), seed=ctx.seed)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    distributions = {n: d for n, p in job.space.items() if (d := p.to_optuna()) is not None}
    spent, rows = 0, []
    while spent < epoch_budget:
        trial = study.ask(fixed_distributions=distributions)
        config = job.model_config(trial.params)
        keras.backend.clear_session()
        model = job.build_model(config, data.input_spec)
        history = model.fit(
            data.x_train,
            data.y_train,
            batch_size=batch_size(ctx.problem, config),
            epochs=min(epochs, epoch_budget - spent),
            validation_data=(data.x_val, data.y_val),
            verbose=0,
        )
        accuracies = [v for v in history.history.get(job.metric, []) if math.isfinite(v)]
        spent += len(history.history.get(job.metric, []))
        values = {ACCURACY: max(accuracies) if accuracies else 0.0, PARAMS: int(model.count_params())}
        study.tell(trial, [values[ACCURACY], values[PARAMS]])
        rows.append(values)
    front = sorted(
        ({ACCURACY: t.values[0], PARAMS: int(t.values[1])} for t in study.best_trials),
        key=lambda m: (-m[ACCURACY], m[PARAMS]),
    )
    return {
        "tool": "optuna nsga2 (in-process)",
        "wall_s": time.perf_counter() - started,
        "epochs": spent,
        "trials": len(study.trials),
        "front": front,
        "all": rows,
    }


def load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages: another process's load disturbs the timing."""
    return [round(x, 2) for x in os.getloadavg()]


def ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def body(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    if args.trials < 2:
        raise InputError(f"--trials {args.trials}: a front needs at least 2 trials; give --trials 2 or more")
    if args.epochs < 1:
        raise InputError(
            f"--epochs {args.epochs}: each trial trains at least 1 epoch; give --epochs 1 or more"
        )
    problem = get_problem("digits", smoke=args.smoke)
    from jobs.digits import JOB  # the job the command runs: its space, builder and data

    problem = replace(problem, job=replace(JOB, max_epochs=args.epochs))
    ctx = Context(problem=problem, budget=0, seed=args.seed, workdir=out)
    load_before = load_average()
    with cli.local_ray():
        mine = ours(ctx, args.trials)
    peer = optuna_nsga2(ctx, mine["epochs"])
    load_after = load_average()
    max_params = largest_params(problem.job, ctx.load().input_spec)
    for run in (mine, peer):
        run["front_size"] = len(run["front"])
        # Trials of one configuration tie on both objectives: each is on the front, one point.
        run["front_points"] = len({(m[ACCURACY], m[PARAMS]) for m in run["front"]})
        run["hypervolume"] = front_hypervolume(run["front"], max_params)
    cpus = os.cpu_count() or 1
    # Our own two trials load a 2-core machine to about 2: more before we start, or far more
    # after, means another process shared the cores and the wall times are not clean.
    disturbed = load_before[0] > 1.0 or load_after[0] > cpus + 1
    rows = [
        [
            r["tool"],
            fmt(r["wall_s"], 1),
            r["epochs"],
            r["trials"],
            r["front_size"],
            r["front_points"],
            fmt(r["hypervolume"], 4),
        ]
        for r in (mine, peer)
    ]
    text = "\n".join(
        [
            f"## digits, accuracy vs parameter count: {args.trials} trials x {args.epochs} epochs, seed {args.seed}",
            "",
            markdown_table(
                ["tool", "wall s", "epochs", "trials", "front size", "distinct points", "hypervolume"], rows
            ),
            "",
            f"ours / peer: wall time {fmt(ratio(mine['wall_s'], peer['wall_s']), 2)}, "
            f"hypervolume {fmt(ratio(mine['hypervolume'], peer['hypervolume']), 2)}",
            f"hypervolume reference: val_accuracy 0, params {max_params} (the space's largest model); "
            "share of [0, 1] x [0, that count] dominated",
            f"load average before {load_before}, after {load_after} on {cpus} CPUs"
            + (": disturbed by other work on the machine" if disturbed else ""),
        ]
    )
    report = {
        "trials": args.trials,
        "max_epochs": args.epochs,
        "objectives": list(OBJECTIVES),
        "population_size": default_population(),
        "reference": {ACCURACY: 0.0, PARAMS: max_params},
        "load_average": {"before": load_before, "after": load_after, "disturbed": disturbed},
        "ratios": {
            "wall_s": ratio(mine["wall_s"], peer["wall_s"]),
            "hypervolume": ratio(mine["hypervolume"], peer["hypervolume"]),
        },
        "runs": {"ours": mine, "optuna-nsga2": peer},
    }
    return publish(out / "multiobjective", "multiobjective", args, text, report)


def build_parser() -> argparse.ArgumentParser:
    ap = cli.parser("multiobjective", (__doc__ or "").splitlines()[0])
    ap.add_argument(
        "--trials", type=int, default=None, help="our sweep's trials (default 96; 4 with --smoke)"
    )
    ap.add_argument(
        "--epochs", type=int, default=None, help="epochs per trial at most (default 9; 2 with --smoke)"
    )
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    def run(args: argparse.Namespace, out: Path) -> dict[str, Any]:
        args.trials = args.trials if args.trials is not None else (4 if args.smoke else 96)
        args.epochs = args.epochs if args.epochs is not None else (2 if args.smoke else 9)
        return body(args, out)

    return cli.main(build_parser(), run, argv, "multiobjective")


if __name__ == "__main__":
    sys.exit(main())
