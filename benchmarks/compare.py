"""Side by side on one problem: this service's searchers and the peers, same data, builder and budget."""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import traceback
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks import ours, peers
from benchmarks.peers import Context
from benchmarks.problems import Problem, get_problem, hyperband_schedule
from benchmarks.reporting import ToolRun, fmt, markdown_table, plot_best_so_far, publish
from tuning_service.core.errors import InputError
from tuning_service.core.registry import Registry

log = logging.getLogger(__name__)

TOOLS = Registry("benchmark tool")
TOOLS.add("ours-optuna", partial(ours.budgeted, searcher="optuna"))
TOOLS.add("ours-hyperopt", partial(ours.budgeted, searcher="hyperopt"))
TOOLS.add("ours-random", partial(ours.budgeted, searcher="random"))
TOOLS.add("ours-grid", ours.grid)
for _name, _runner in peers.PEERS.items():
    TOOLS.add(_name, _runner)

# Run order: the reference peer first, then ours, then the other peers.
ORDER = (
    "keras-tuner",
    "ours-optuna",
    "ours-hyperopt",
    "ours-random",
    "ours-grid",
    "optuna-hyperband",
    "optuna-hyperband-2proc",
    "gridsearchcv",
)
BUDGETED = ("ours-optuna", "ours-hyperopt", "ours-random")
# Each peer's wall time is compared with the run of ours that does the same kind of search.
COUNTERPART = {
    "keras-tuner": "ours-optuna",
    "optuna-hyperband": "ours-optuna",
    "optuna-hyperband-2proc": "ours-optuna",
    "gridsearchcv": "ours-grid",
}
REFERENCE = "keras-tuner"


def parse_tools(text: str | None) -> list[str]:
    if not text:
        return list(ORDER)
    names = [t.strip() for t in text.split(",") if t.strip()]
    for name in names:
        TOOLS.check(name)
    return [n for n in ORDER if n in names]


def add_options(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    ap.add_argument("--tools", help=f"comma-separated subset of: {', '.join(ORDER)} (default: all)")
    ap.add_argument("--epoch-budget", type=int, help="epochs for the budgeted tools (default: Hyperband's)")
    ap.add_argument("--threshold", type=float, help="validation accuracy for 'time to threshold'")
    ap.add_argument("--keep", action="store_true", help="keep the sweeps' and Keras Tuner's directories")
    ap.add_argument(
        "--timeline",
        action="store_true",
        help="run our sweeps on a Ray started first (its start then falls outside their wall time) and write "
        "each one's Ray timeline and time per worker call to the out dir (benchmarks/timeline.py)",
    )
    return ap


def run_tool(name: str, ctx: Context) -> ToolRun:
    """One tool; a failure becomes a row that says so instead of ending the comparison."""
    log.info("%s: %s starting", ctx.problem.name, name)
    started = time.perf_counter()
    try:
        run = TOOLS[name](ctx)
    except InputError:
        raise
    except Exception as exc:
        log.error("%s: %s failed:\n%s", ctx.problem.name, name, traceback.format_exc())
        run = ToolRun(name, time.perf_counter() - started, 0, 0, None, None, None, notes=[f"failed: {exc!r}"])
        run.extra["failed"] = True
    log.info(
        "%s: %s done in %.1f s (%d epochs, %d trials)",
        ctx.problem.name,
        name,
        run.wall_s,
        run.epochs,
        run.trials,
    )
    return run


def compare(
    problem: Problem,
    *,
    tools: list[str],
    seed: int,
    workdir: Path,
    budget: int | None = None,
    timeline: Path | None = None,
) -> dict[str, Any]:
    """Run ``tools`` on ``problem`` one after another, then refit each best config for its test accuracy."""
    hb_epochs, hb_trials = hyperband_schedule(problem.max_epochs, problem.factor)
    ctx = Context(problem, budget or hb_epochs, seed, workdir, timeline)
    runs = {name: run_tool(name, ctx) for name in tools}
    data = ctx.load()
    for name, run in runs.items():
        if run.best_config is not None and run.refit_epochs:
            log.info("%s: refitting %s's best config on train + validation", problem.name, name)
            run.test_acc = peers.refit_test_accuracy(problem, data, run.best_config, run.refit_epochs, seed)
    return {
        "problem": problem.name,
        "data": data.sizes() | ({"limit": problem.data_limit} if problem.data_limit else {}),
        "max_epochs": problem.max_epochs,
        "factor": problem.factor,
        "epoch_budget": ctx.budget,
        "hyperband_schedule": {"epochs": hb_epochs, "trials": hb_trials},
        "grid_candidates": problem.grid_size,
        "threshold": problem.threshold,
        "engine_support": ours.engine_support(),
        "runs": runs,
    }


def ratios(runs: dict[str, ToolRun]) -> dict[str, dict[str, float]]:
    """Every row's wall time over Keras Tuner's, and each peer's over its counterpart of ours."""
    out: dict[str, dict[str, float]] = {}
    ok = {k: r for k, r in runs.items() if not r.extra.get("failed")}
    for name, run in ok.items():
        entry = {}
        if REFERENCE in ok:
            entry["vs_keras_tuner"] = run.wall_s / ok[REFERENCE].wall_s
        other = COUNTERPART.get(name)
        if other in ok:
            entry["peer_vs_ours"] = run.wall_s / ok[other].wall_s
        out[name] = entry
    return out


def targets(runs: dict[str, ToolRun], wall_target: float | None) -> list[dict[str, Any]]:
    """Issue 10's targets for each budgeted run of ours: wall <= wall_target x Keras Tuner's, accuracy no lower."""
    ref = runs.get(REFERENCE)
    if wall_target is None or ref is None or ref.extra.get("failed"):
        return []
    found = []
    for name in BUDGETED:
        run = runs.get(name)
        if run is None or run.extra.get("failed"):
            continue
        share = run.wall_s / ref.wall_s
        accurate = run.best_val is not None and ref.best_val is not None and run.best_val >= ref.best_val
        found.append(
            {
                "tool": name,
                "wall_vs_keras_tuner": share,
                "wall_target": wall_target,
                "wall_met": share <= wall_target,
                "best_val": run.best_val,
                "keras_tuner_best_val": ref.best_val,
                "accuracy_met": accurate,
            }
        )
    return found


def table(report: dict[str, Any]) -> str:
    runs: dict[str, ToolRun] = report["runs"]
    rel = ratios(runs)
    threshold = report["threshold"]
    rows = []
    for name, run in runs.items():
        r = rel.get(name, {})
        peer = f"{r['peer_vs_ours']:.2f}x {COUNTERPART[name]}" if "peer_vs_ours" in r else "-"
        rows.append(
            [
                name,
                fmt(run.wall_s, 1),
                run.epochs,
                run.trials,
                fmt(run.best_val, 4),
                fmt(run.test_acc, 4),
                fmt(run.time_to(threshold), 1),
                f"{r['vs_keras_tuner']:.2f}" if "vs_keras_tuner" in r else "-",
                peer,
            ]
        )
    return markdown_table(
        [
            "tool",
            "wall s",
            "epochs",
            "trials",
            "best val acc",
            "test acc (refit)",
            f"s to val acc >= {threshold}",
            "wall / keras-tuner",
            "peer wall / ours",
        ],
        rows,
    )


def notes(report: dict[str, Any]) -> list[str]:
    lines = []
    for name, run in report["runs"].items():
        lines += [f"{name}: {note}" for note in run.notes]
    for t in report.get("targets", []):
        lines.append(
            f"target {t['tool']}: wall {t['wall_vs_keras_tuner']:.2f}x keras-tuner (<= {t['wall_target']}: "
            f"{'met' if t['wall_met'] else 'NOT met'}), best val {fmt(t['best_val'], 4)} vs "
            f"{fmt(t['keras_tuner_best_val'], 4)} ({'met' if t['accuracy_met'] else 'NOT met'})"
        )
    return lines


def body(problem_name: str, args: argparse.Namespace, out: Path, *, scenario: str) -> dict[str, Any]:
    """Run the comparison, print the table, write ``<problem>.json``, ``.md`` and the plot."""
    problem = get_problem(problem_name, smoke=args.smoke)
    if args.threshold is not None:
        problem = replace(problem, threshold=args.threshold)
    tools = parse_tools(args.tools)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = out / "work" if args.keep else Path(tmp)
        report = compare(
            problem,
            tools=tools,
            seed=args.seed,
            workdir=workdir,
            budget=args.epoch_budget,
            timeline=out if args.timeline else None,
        )
    report["targets"] = targets(report["runs"], problem.wall_target)
    report["ratios"] = ratios(report["runs"])
    text = "\n".join(
        [
            f"## {problem.name}{' (smoke)' if args.smoke else ''}: epoch budget {report['epoch_budget']}",
            "",
            table(report),
            "",
            *[f"- {line}" for line in notes(report)],
        ]
    )
    runs = {
        k: asdict(v) | {"time_to_threshold_s": v.time_to(problem.threshold)}
        for k, v in report["runs"].items()
    }
    publish(out / problem.name, scenario, args, text, report | {"runs": runs})
    plot_best_so_far(
        out / f"{problem.name}_best_so_far.png",
        list(report["runs"].values()),
        title=f"{problem.name}: best validation accuracy so far (epoch budget {report['epoch_budget']})",
        threshold=problem.threshold,
    )
    return report


def failed(report: dict[str, Any]) -> list[str]:
    return [name for name, run in report["runs"].items() if run.extra.get("failed")]
