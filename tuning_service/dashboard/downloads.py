"""Downloads: the `export` records (best or top K configs) as JSON/YAML/CSV, and a sweep's HTML report."""

from __future__ import annotations

import math
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from tuning_service.core.errors import InputError
from tuning_service.core.results import COMPLETED, DIVERGED, DROPPED, ERRORED, INFEASIBLE, STOPPED
from tuning_service.dashboard import queries
from tuning_service.store import Store, SweepRow
from tuning_service.sweeps.aggregate import FORMATS, best_configs, config_record, render_export

REPORTED = (COMPLETED, STOPPED, INFEASIBLE, DIVERGED, ERRORED, DROPPED)
MEDIA = {"json": "application/json", "yaml": "application/yaml", "csv": "text/csv"}
# The report page carries its own inline CSS (it is made to be opened alone, offline).
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _top(request: Request) -> int:
    text = request.query_params.get("top", "1")
    if not text.isdigit() or int(text) < 1:
        raise HTTPException(400, f"top must be a whole number >= 1, got {text!r}")
    return int(text)


def _format(request: Request) -> str:
    fmt: str = request.path_params["fmt"]
    if fmt not in FORMATS:
        raise HTTPException(404, f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    return fmt


def _attachment(text: str, fmt: str, name: str) -> Response:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return Response(
        text,
        media_type=MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{safe}.{fmt}"'},
    )


def sweep_export(request: Request) -> Response:
    """The best ``top`` configs of one sweep, as `tuning-service export` writes them."""
    store: Store = request.app.state.store
    fmt, top = _format(request), _top(request)
    sweep = store.find_sweep(request.path_params["sweep_id"])
    found = store.top_trials(
        sweep.job, metric=sweep.metric, mode=sweep.mode, limit=top, sweep_id=sweep.sweep_id
    )
    if not found:
        raise InputError(f"sweep {sweep.sweep_id} has no finished trial with a valid metric yet")
    refits = {r.trial_id: r for r in store.refits([sweep.sweep_id])}
    records = [
        config_record(trial, row, rank=rank, refit=refits.get(trial.trial_id))
        for rank, (trial, row) in enumerate(found, 1)
    ]
    text = render_export(records, fmt, database=store.display_url)
    return _attachment(text, fmt, f"{sweep.sweep_id}-top{top}")


def pareto_export(request: Request) -> Response:
    """A multi-objective sweep's Pareto front: exactly `export --sweep ID` (``?pick=RULE``: `--pick`)."""
    from tuning_service.sweeps.front import sweep_front

    store: Store = request.app.state.store
    fmt = _format(request)
    sweep = store.find_sweep(request.path_params["sweep_id"])
    rule = request.query_params.get("pick") or None
    front = sweep_front(store, sweep, rule)
    records = [r for r in front.records() if r["picked"]] if rule else front.records()
    if not records:
        raise InputError(
            f"sweep {sweep.sweep_id}'s Pareto front has no member"
            + (f" meeting {rule!r}" if rule else " yet")
        )
    return _attachment(
        render_export(records, fmt, database=store.display_url), fmt, f"{sweep.sweep_id}-pareto"
    )


def job_export(request: Request) -> Response:
    """The best ``top`` configs of a job across its sweeps: exactly `export --job JOB --top K`."""
    store: Store = request.app.state.store
    fmt, top = _format(request), _top(request)
    job = request.path_params["job"]
    records = best_configs(store, job=job, top=top)
    return _attachment(render_export(records, fmt, database=store.display_url), fmt, f"{job}-top{top}")


def report(request: Request) -> Response:
    """The sweep's HTML report (the `report` command's page), made from the database as it is now."""
    from tuning_service.dashboard.figures import kept

    store: Store = request.app.state.store
    sweep = store.find_sweep(request.path_params["sweep_id"])
    page = kept(request, "report.html", sweep, _report_page)
    return HTMLResponse(
        page,
        headers={
            "Content-Disposition": f'inline; filename="report-{sweep.sweep_id}.html"',
            "Content-Security-Policy": REPORT_CSP,
        },
    )


def _report_page(store: Store, sweep: SweepRow) -> str:
    from tuning_service.sweeps.report import figures, render_html

    result, space = as_result(store, sweep), space_of(sweep)
    return render_html(result, space, figures(result, space))


def space_of(sweep: SweepRow) -> Any:
    """The sweep's search space, or None when the recorded one no longer reads (a changed format)."""
    from tuning_service.core.space import Space

    try:
        return Space.from_dict(sweep.space) if sweep.space else None
    except InputError:
        return None


def as_result(store: Store, sweep: SweepRow, *, histories: bool = True) -> Any:
    """The sweep as the report reads it (`SweepResult`): its ended trials, each with its epoch
    rows as history (``histories``; importance needs only configs and values)."""
    from tuning_service.core.results import TrialSummary
    from tuning_service.raytune.recording import sweep_result

    rows: dict[str, list[dict[str, Any]]] = {}
    for e in store.epochs(sweep.sweep_id) if histories else ():
        metrics = dict(e.metrics)
        rows.setdefault(e.trial_id, []).append(
            {
                **metrics,
                "training_iteration": e.epoch,
                sweep.metric: e.value,
                "diverged": e.diverged,
                "ended_at": e.recorded_at.timestamp(),
                "time_this_iter_s": _number(metrics.get("time_this_iter_s")),
            }
        )
    trials = [
        TrialSummary(
            trial_id=t.trial_id,
            config=dict(t.config),
            status=t.status,
            value=t.value,
            best_epoch=t.best_epoch,
            epochs=t.epochs,
            train_time_s=t.train_time_s or 0.0,
            error=t.message if t.status == ERRORED else None,
            history=rows.get(t.trial_id, []),
        )
        for t in queries.trial_rows(store, sweep.sweep_id)
        if t.status in REPORTED  # the report is of trials that ended; a running one has no outcome yet
    ]
    return sweep_result(sweep, trials)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else 0.0
