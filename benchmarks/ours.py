"""This service's side of a comparison: run_sweep with each searcher, as a user would call it.

The engine hooks the benchmarks rely on (an epoch budget, a per-trial ``epochs`` cap,
a pluggable trainable) are probed, not assumed: where one is missing the scenario
falls back to the closest honest equivalent and says so in its notes.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.peers import Context
from benchmarks.reporting import ToolRun
from tuning_service.core.results import SweepResult
from tuning_service.core.spec import SweepSpec
from tuning_service.job import Job

# A searcher with an epoch budget runs until the budget stops it.
UNBOUNDED_SAMPLES = 100_000


def engine_support() -> dict[str, bool]:
    """Which of the engine hooks the benchmarks use this checkout has."""
    from tuning_service import testing
    from tuning_service.sweeps import runner
    from tuning_service.training import models

    trainable_src = importlib.util.find_spec("tuning_service.raytune.trainable")
    source = Path(trainable_src.origin).read_text() if trainable_src and trainable_src.origin else ""
    return {
        "epoch_budget": "epoch_budget" in {f.name for f in dataclasses.fields(SweepSpec)},
        "epochs_key": "epochs" in models.CONFIG_KEYS or '"epochs"' in source,
        "trainable": "trainable" in inspect.signature(runner.run_sweep).parameters,
        "noop_trainable": hasattr(testing, "NoopTrainable"),
    }


def asha_epochs_per_trial(max_t: int, grace_period: int, reduction_factor: int) -> float:
    """Expected epochs of one trial under ASHA if each rung keeps 1/reduction_factor."""
    rungs, milestone = [], grace_period
    while milestone < max_t:
        rungs.append(milestone)
        milestone *= reduction_factor
    expected, previous, survive = 0.0, 0, 1.0
    for milestone in [*rungs, max_t]:
        expected += survive * (milestone - previous)
        previous, survive = milestone, survive / reduction_factor
    return expected


def sweep(
    ctx: Context,
    job: Job,
    *,
    searcher: str,
    scheduler: str,
    num_samples: int,
    epoch_budget: int | None = None,
    scheduler_options: dict[str, Any] | None = None,
    **spec_fields: Any,
) -> tuple[SweepResult, float, float]:
    """One run_sweep call; returns the result, its start (unix time) and its wall seconds."""
    from tuning_service.sweeps.runner import run_sweep

    spec = SweepSpec(
        job=job.name,
        searcher=searcher,
        scheduler=scheduler,
        num_samples=num_samples,
        max_epochs=job.max_epochs,
        seed=ctx.seed,
        storage=str(ctx.workdir / "sweeps"),
        data_limit=ctx.problem.data_limit,
        scheduler_options=scheduler_options or {},
        **({"epoch_budget": epoch_budget} if epoch_budget is not None else {}),
        **spec_fields,
    )
    if ctx.timeline is None:
        t0, started = time.time(), time.perf_counter()
        result = run_sweep(spec, job=job)
        return result, t0, time.perf_counter() - started
    from benchmarks.timeline import worker_timeline

    with worker_timeline(ctx.timeline / f"timeline-{job.name}-{searcher}-{scheduler}"):
        t0, started = time.time(), time.perf_counter()
        result = run_sweep(spec, job=job)
        wall = time.perf_counter() - started
    return result, t0, wall


def events_of(result: SweepResult, t0: float) -> list[tuple[float, float]]:
    """(seconds since ``t0``, metric) for every epoch every trial reported."""
    events = []
    for trial in result.trials:
        for row in trial.history:
            value, ended = row.get(result.metric), row.get("ended_at", row.get("timestamp"))
            if value is not None and ended is not None and math.isfinite(value) and value > -1e8:
                events.append((float(ended) - t0, float(value)))
    return events


def budgeted(ctx: Context, searcher: str) -> ToolRun:
    """``searcher`` + ASHA (grace 1, the problem's factor) on the same epoch budget as Hyperband."""
    problem, support = ctx.problem, engine_support()
    options = {"grace_period": 1, "reduction_factor": problem.factor}
    notes = []
    if support["epoch_budget"]:
        result, t0, wall = sweep(
            ctx,
            problem.job,
            searcher=searcher,
            scheduler="asha",
            num_samples=UNBOUNDED_SAMPLES,
            epoch_budget=ctx.budget,
            scheduler_options=options,
        )
    else:
        per_trial = asha_epochs_per_trial(problem.max_epochs, 1, problem.factor)
        samples = max(2, round(ctx.budget / per_trial))
        notes.append(
            f"engine lacks SweepSpec(epoch_budget=): ran num_samples={samples} "
            f"(budget {ctx.budget} / {per_trial:.2f} expected ASHA epochs per trial) instead"
        )
        result, t0, wall = sweep(
            ctx,
            problem.job,
            searcher=searcher,
            scheduler="asha",
            num_samples=samples,
            scheduler_options=options,
        )
    return _tool_run(f"tuning-service {searcher} + asha", problem.job, result, t0, wall, notes)


def grid(ctx: Context) -> ToolRun:
    """Our grid searcher over the GridSearchCV grid, every candidate trained its own ``epochs`` (FIFO)."""
    problem, support = ctx.problem, engine_support()
    job = problem.grid_job
    if support["epochs_key"]:
        result, t0, wall = sweep(ctx, job, searcher="grid", scheduler="fifo", num_samples=1)
        run = _tool_run("tuning-service grid", job, result, t0, wall, [])
        wrong = [
            t for t in result.trials if t.status == "completed" and t.epochs != int(t.config.get("epochs", 0))
        ]
        if wrong:
            run.notes.append(f"{len(wrong)} trials ignored their 'epochs' cap (engine does not honour it)")
        return run
    # Without the per-trial cap: one grid sweep per epochs value, back to back.
    runs, start = [], time.time()
    for epochs in problem.grid["epochs"]:
        space = {k: v for k, v in job.space.items() if k != "epochs"}
        part = replace(job, space=space, max_epochs=int(epochs))
        runs.append(sweep(ctx, part, searcher="grid", scheduler="fifo", num_samples=1))
    merged = _tool_run("tuning-service grid", job, runs[0][0], start, sum(r[2] for r in runs), [])
    merged.events = [e for result, _, _ in runs for e in events_of(result, start)]
    merged.epochs = sum(r[0].epochs for r in runs)
    merged.trials = sum(len(r[0].trials) for r in runs)
    best = max((r[0] for r in runs if r[0].best), key=lambda r: r.best.value)  # type: ignore[union-attr]
    merged.best_val, merged.best_config, merged.refit_epochs = _best(best, job)
    merged.notes.append(
        f"engine lacks the per-trial 'epochs' key: ran {len(runs)} grid sweeps back to back, one per epochs value"
    )
    return merged


def _best(result: SweepResult, job: Job) -> tuple[float | None, dict[str, Any] | None, int | None]:
    """Best value, the full model configuration behind it (job defaults included), its epoch."""
    best = result.best
    if best is None:
        return None, None, None
    return best.value, job.model_config(best.config), best.best_epoch


def _tool_run(tool: str, job: Job, result: SweepResult, t0: float, wall: float, notes: list[str]) -> ToolRun:
    best_val, config, epochs = _best(result, job)
    return ToolRun(
        tool=tool,
        wall_s=wall,
        epochs=result.epochs,
        trials=len(result.trials),
        best_val=best_val,
        best_config=config,
        refit_epochs=epochs,
        events=events_of(result, t0),
        notes=notes,
        extra={
            "sweep_id": result.sweep_id,
            "counts": result.counts(),
            "engine_wall_s": result.wall_time_s,
        },
    )
