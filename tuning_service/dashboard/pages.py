"""The dashboard's HTML pages; ``?part=NAME`` answers one live part of a page, for its script to swap in."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from tuning_service.core.errors import InputError
from tuning_service.dashboard import queries
from tuning_service.store import Store
from tuning_service.store.schema import utcnow
from tuning_service.sweeps.aggregate import summarize
from tuning_service.sweeps.front import objectives_of, sweep_front
from tuning_service.sweeps.nightly.change import headline
from tuning_service.sweeps.nightly.history import is_stale

# Figures of the sweep page, in page order: (name, title, what it shows).
SWEEP_FIGURES = (
    ("curves", "learning curves", "each trial's metric per epoch; hover a line for its trial and config"),
    ("best_so_far", "best so far", "the best value found, against time and against epochs spent"),
    ("parallel", "parallel coordinates", "configurations of the best trials against the metric"),
    ("importance", "importance", "Optuna's PED-ANOVA over the finished trials (computed on first view)"),
    ("stops", "scheduler stops", "where trials ended before their last epoch"),
    ("slots", "slot use", "how many trials ran at once"),
)


# A sweep of several objectives: its front first, over its trials, with the front as a table.
PARETO_FIGURE = (
    "pareto",
    "Pareto front",
    "each finished, feasible trial on the first two objectives; the line is the front (hover a point)",
)


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _page_number(request: Request) -> int:
    text = request.query_params.get("page", "1")
    if not text.isdigit() or int(text) < 1:
        raise HTTPException(400, f"page must be a whole number >= 1, got {text!r}")
    return int(text)


def _render(request: Request, template: str, context: dict[str, Any]) -> Response:
    """The page, or only its ``part`` (a live region) when the script asks for one."""
    part = request.query_params.get("part")
    parts = context.get("parts", ())
    if part is not None:
        if part not in parts:
            raise HTTPException(400, f"unknown part {part!r}; this page has: {', '.join(parts) or 'none'}")
        template = f"_{part}.html"
    response: Response = request.app.state.templates.TemplateResponse(request, template, context)
    return response


def overview(request: Request) -> Response:
    """Every sweep, newest first: status and progress, outcomes, best value, time, searcher, nodes."""
    found = queries.sweeps_page(_store(request), page=_page_number(request))
    return _render(
        request,
        "overview.html",
        {"page": found, "parts": ("sweeps",), "state_url": "/api/state", "title": "sweeps"},
    )


def sweep(request: Request) -> Response:
    """One sweep: summary, leaderboard and its figures, live while it runs."""
    store = _store(request)
    row = store.find_sweep(request.path_params["sweep_id"])
    line = queries.sweep_line(store, row.sweep_id)
    board = queries.leaderboard(store, row, page=_page_number(request))
    keys: list[str] = []
    for t in board.rows:
        keys += [k for k in t.config if k not in keys]
    # A live part asks for itself alone: the front is computed for the page and its own part.
    several = bool(objectives_of(row))
    wanted = request.query_params.get("part") in (None, "pareto")
    front = sweep_front(store, row) if several and wanted else None
    return _render(
        request,
        "sweep.html",
        {
            "line": line,
            "sweep": row,
            "board": board,
            "keys": keys,
            "front": front,
            "figures": (PARETO_FIGURE, *SWEEP_FIGURES) if several else SWEEP_FIGURES,
            "parts": ("summary", "pareto", "leaderboard") if several else ("summary", "leaderboard"),
            "state_url": f"/api/state?sweep={row.sweep_id}",
            "title": f"{row.job} sweep {row.sweep_id}",
        },
    )


def job(request: Request) -> Response:
    """One job across its sweeps: best value over time, each sweep, each nightly run and what changed."""
    store = _store(request)
    name = request.path_params["job"]
    store.check_job(name)
    found = queries.sweeps_page(store, job=name, page=_page_number(request))
    runs = queries.schedule_runs_of(store, job=name)
    return _render(
        request,
        "job.html",
        {
            "job": name,
            "page": found,
            "runs": [_run_view(r, runs[i + 1 :]) for i, r in enumerate(runs)],
            "parts": ("sweeps",),
            "state_url": "/api/state",
            "title": f"job {name}",
        },
    )


def _run_view(run: Any, earlier: Sequence[Any]) -> dict[str, Any]:
    """A nightly run with its headline and the config keys that changed since the previous scored run."""
    change = run.change or None
    previous = next((r for r in earlier if r.change and r.name == run.name), None)
    changed: list[tuple[str, Any, Any]] = []
    if change and previous is not None:
        now, before = change.get("config") or {}, previous.change.get("config") or {}
        changed = [
            (k, before.get(k), now.get(k)) for k in sorted({*now, *before}) if now.get(k) != before.get(k)
        ]
    return {
        "run": run,
        "headline": headline(change) if change else None,
        "verdict": change.get("change") if change else None,
        "changed": changed,
    }


def schedules(request: Request) -> Response:
    """Scheduled sweeps: next run (from the schedule files given), last run and status, run counts,
    locks held (and whether they went stale)."""
    found = queries.schedule_overview(_store(request))
    now = utcnow()
    locks = [{"lock": lock, "stale": is_stale(lock, now)} for lock in _lock_rows(found["locks"])]
    planned, problems = planned_sweeps(request.app.state.schedule_files, now)
    last = {r.name: r for r in found["last"]}
    return _render(
        request,
        "schedules.html",
        {
            "planned": [{**p, "last": last.get(p["name"])} for p in planned],
            "problems": problems,
            "files": request.app.state.schedule_files,
            "last": found["last"],
            "locks": locks,
            "runs": queries.schedule_runs_of(_store(request), limit=50),
            "parts": (),
            "title": "schedules",
        },
    )


def planned_sweeps(files: Sequence[Path], now: datetime) -> tuple[list[dict[str, Any]], list[str]]:
    """Each sweep of the schedule files with its cron time and next run, read afresh (an edited
    file shows at the next view), and each file's problems: a file that stopped reading is said,
    not a failed page. Database URLs in the files are never shown."""
    from tuning_service.sweeps.nightly import cron
    from tuning_service.sweeps.nightly.schedulefile import load_schedule

    planned, problems = [], []
    for path in files:
        try:
            loaded = load_schedule(path, check_jobs=False)
        except InputError as exc:
            problems.append(str(exc))
            continue
        for sweep in loaded.sweeps:
            upcoming = cron.next_fires(sweep.trigger(), now, 1)
            planned.append(
                {
                    "name": sweep.name,
                    "job": sweep.job_name,
                    "cron": sweep.cron_text,
                    "time_zone": sweep.time_zone,
                    "target": sweep.target,
                    "next": upcoming[0].astimezone(UTC) if upcoming else None,
                    "file": path.name,
                }
            )
    return planned, problems


def _lock_rows(rows: list[Any]) -> list[Any]:
    from tuning_service.sweeps.nightly.history import LockRow

    return [LockRow(**r._mapping) for r in rows]


def compare(request: Request) -> Response:
    """Two or more sweeps side by side: outcomes, best value and config, time; best so far overlaid."""
    store = _store(request)
    refs = [r for r in request.query_params.getlist("sweep") if r.strip()]
    summaries = summarize(store, [store.find_sweep(r) for r in refs]) if refs else []
    keys: list[str] = []
    for s in summaries:
        keys += [k for k in (s.best.config if s.best else {}) if k not in keys]
    recent = queries.sweeps_page(store, size=30).rows
    return _render(
        request,
        "compare.html",
        {
            "summaries": summaries,
            "keys": keys,
            "recent": recent,
            "chosen": [s.sweep.sweep_id for s in summaries],
            "parts": (),
            "title": "compare sweeps",
        },
    )
