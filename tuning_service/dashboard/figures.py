"""Figure data as JSON for the page script: one endpoint per figure, and the state live pages poll."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from tuning_service.dashboard import queries
from tuning_service.store import Store, SweepRow


def importance(store: Store, sweep: SweepRow) -> dict[str, Any]:
    """Optuna's PED-ANOVA importance (the report's own function) over the ended trials, as bars."""
    from tuning_service.dashboard.downloads import as_result, space_of
    from tuning_service.sweeps.report import param_importance

    scores = param_importance(as_result(store, sweep, histories=False), space_of(sweep))
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    return {
        "kind": "bars",
        "horizontal": True,
        "x_label": "importance",
        "categories": [k for k, _ in ranked],
        "series": [{"name": "importance", "status": "completed", "values": [round(v, 4) for _, v in ranked]}],
        "note": None if scores else "not enough finished trials with different configs to judge (3 or more)",
    }


def pareto(store: Store, sweep: SweepRow) -> dict[str, Any]:
    """A multi-objective sweep's trials on its first two objectives (the second across, the first
    up), its Pareto front drawn through them as the staircase bounding what it dominates."""
    from tuning_service.core.objectives import pareto_set
    from tuning_service.sweeps.front import candidates, objectives_of

    objectives = objectives_of(sweep)
    if not objectives:
        raise HTTPException(
            404, f"sweep {sweep.sweep_id} has one objective ({sweep.metric}): no Pareto front"
        )
    found = candidates(store, sweep, objectives)
    members = pareto_set(found, objectives)
    on_front = {c.trial_id for c in members}
    up, across = objectives[0], objectives[1]

    def info(c: Any) -> str:
        values = ", ".join(f"{k}={queries.short(v)}" for k, v in c.values.items())
        return f"{queries.trial_info(c.item)} | {values}" + (
            " | on the front" if c.trial_id in on_front else ""
        )

    series: list[dict[str, Any]] = [
        {
            "name": c.trial_id,
            "status": c.item.status,
            "info": info(c),
            "points": [[c.values[across.name], c.values[up.name]]],
        }
        for c in found
        if c.trial_id not in on_front
    ]
    front = sorted(members, key=lambda c: c.values[across.name])
    series.append(
        {
            "name": "Pareto front",
            "status": None,
            "info": "Pareto front",
            "points": [[c.values[across.name], c.values[up.name], info(c)] for c in front],
            # From one member to the next: along first where less is better across, else up first.
            "step": "hv" if across.mode == "min" else "vh",
            "markers": True,
            "color": "#1565c0",  # not a trial outcome's colour
        }
    )
    note = None if found else "no finished, feasible trial with every objective yet"
    if len(objectives) > 2:
        note = (
            f"the first two of {len(objectives)} objectives; the front is over all of them, so some of its "
            "members look dominated here"
        )
        series[-1]["step"] = False
    return {
        "kind": "lines",
        "x_label": f"{across.name} ({across.mode})",
        "y_label": f"{up.name} ({up.mode})",
        "series": series,
        "note": note,
    }


FIGURES: dict[str, Callable[[Store, SweepRow], dict[str, Any]]] = {
    "curves": queries.curves,
    "best_so_far": queries.best_so_far,
    "parallel": queries.parallel,
    "importance": importance,
    "stops": queries.stops,
    "slots": queries.slot_use,
    "pareto": pareto,
}
# Figures worth keeping between polls: computed from every trial at once.
CACHED = ("importance",)


def state(request: Request) -> JSONResponse:
    """What changed since the last poll (the fingerprint) and whether anything still runs."""
    ids = request.query_params.getlist("sweep") or None
    text, running = queries.fingerprint(request.app.state.store, ids)
    return JSONResponse({"fingerprint": text, "running": running})


def sweep_figure(request: Request) -> JSONResponse:
    store: Store = request.app.state.store
    name = request.path_params["name"]
    build = FIGURES.get(name)
    if build is None:
        raise HTTPException(404, f"unknown figure {name!r}; choose one of: {', '.join(FIGURES)}")
    sweep = store.find_sweep(request.path_params["sweep_id"])
    if name not in CACHED:
        return JSONResponse(build(store, sweep))
    return JSONResponse(kept(request, name, sweep, build))


def kept(request: Request, name: str, sweep: SweepRow, build: Callable[[Store, SweepRow], Any]) -> Any:
    """``build(store, sweep)``, kept until the sweep records something new (its fingerprint):
    for what is computed from every trial at once and costs seconds."""
    store: Store = request.app.state.store
    key = (name, sweep.sweep_id, queries.fingerprint(store, [sweep.sweep_id])[0])
    cache: dict[Any, Any] = request.app.state.cache
    if key not in cache:
        if len(cache) > 64:
            cache.clear()
        cache[key] = build(store, sweep)
    return cache[key]


# What the first view of importance or a report would otherwise wait for (seconds on 2 cores).
WARM_MODULES = ("optuna", "optuna.importance", "tuning_service.sweeps.plots")


def warm_up() -> None:
    """Import the heavy figures' libraries (Optuna's importance, Matplotlib), so the
    first view after a start does not pay for them; run in a background thread once serving."""
    from tuning_service.core.leanimport import lean_import

    for module in WARM_MODULES:
        lean_import(module)


def job_history(request: Request) -> JSONResponse:
    store: Store = request.app.state.store
    job = request.path_params["job"]
    store.check_job(job)
    return JSONResponse(queries.job_history(store, job))


def compare(request: Request) -> JSONResponse:
    """Each sweep's best so far against epochs spent, on one chart."""
    store: Store = request.app.state.store
    series = []
    for ref in request.query_params.getlist("sweep"):
        sweep = store.find_sweep(ref)
        panel = queries.best_so_far(store, sweep)["panels"][1]
        series.append(
            {
                "name": sweep.sweep_id,
                "status": None,
                "info": f"sweep {sweep.sweep_id} ({sweep.searcher} / {sweep.scheduler})",
                "points": panel["points"],
                "step": True,
            }
        )
    return JSONResponse(
        {"kind": "lines", "x_label": "epochs spent", "y_label": "best so far", "series": series, "note": None}
    )
