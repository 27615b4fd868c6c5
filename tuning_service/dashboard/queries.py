"""The dashboard's reads: pages of rows and figure data, counted, ranked and cut in SQL.

Every function reads in one transaction and returns plain data. Nothing here loads a
sweep's every epoch into Python: figures take the best curves, running bests and counts
the database computes, so a page costs the same at 10,000 trials as at 10.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from tuning_service.core.results import DROPPED, INFEASIBLE, UNRANKED
from tuning_service.store import RANKED, RUNNING, Store, SweepRow, TrialRow, schema
from tuning_service.store.engine import transaction
from tuning_service.store.scheduletables import schedule_locks, schedule_runs
from tuning_service.store.schema import utcnow

T = TypeVar("T")
S, TR, E = schema.sweeps, schema.trials, schema.epochs

PAGE_SIZE = 50
# The learning curves draw the best CURVES trials (and every running one): more lines hide each other.
CURVES = 60
# Parallel coordinates: the best PARALLEL trials.
PARALLEL = 300
OUTCOMES = (
    "completed",
    "stopped early",
    INFEASIBLE,
    "diverged",
    "errored",
    "running",
    "interrupted",
    DROPPED,
)


def read(store: Store, work: Callable[[sa.Connection], T]) -> T:
    """``work`` in one read transaction (one consistent view), retried on transient failures."""
    return transaction(store.engine, work, what="reading")


def _utc(value: Any) -> datetime | None:
    """A timestamp from an aggregate (SQLite gives text, PostgreSQL a naive datetime) as aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return schema.UTCDateTime().process_result_value(value, None)


def _signed(mode_column: Any, value: Any) -> Any:
    """Smaller is better whatever the mode: ORDER BY this ranks a leaderboard."""
    return sa.case((mode_column == "max", -value), else_=value)


def _ranked() -> Any:
    return sa.and_(TR.c.status.in_(RANKED), TR.c.value.is_not(None))


# -- sweeps ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepLine:
    """One sweep on the overview: what it is, how far it got, and its best value."""

    sweep: SweepRow
    counts: dict[str, int]
    epochs: int
    nodes: int
    best: float | None
    best_trial: str | None

    @property
    def trials(self) -> int:
        return sum(n for status, n in self.counts.items() if status != DROPPED)

    @property
    def finished(self) -> int:
        return sum(n for status, n in self.counts.items() if status not in (RUNNING, DROPPED))

    @property
    def progress(self) -> float | None:
        """Share of the planned trials that finished (None: no plan recorded)."""
        planned = self.sweep.num_samples
        return min(1.0, self.finished / planned) if planned else None

    @property
    def wall_time_s(self) -> float | None:
        if self.sweep.status == RUNNING:
            return (utcnow() - self.sweep.started_at).total_seconds()
        return self.sweep.wall_time_s


@dataclass(frozen=True)
class Page:
    """One page of rows, and how many there are in all."""

    rows: list[Any]
    page: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))


def _page_bounds(page: int, size: int) -> tuple[int, int]:
    page = max(1, int(page))
    return page, (page - 1) * size


def sweeps_page(
    store: Store, *, page: int = 1, size: int = PAGE_SIZE, job: str | None = None, ids: Sequence[str] = ()
) -> Page:
    """Sweeps newest first, one page, each with its outcome counts, epochs, nodes and best value."""
    page, offset = _page_bounds(page, size)

    def work(conn: sa.Connection) -> Page:
        where = []
        if job is not None:
            where.append(S.c.job == job)
        if ids:
            where.append(S.c.sweep_id.in_(list(ids)))
        total = conn.execute(sa.select(sa.func.count()).select_from(S).where(*where)).scalar_one()
        rows = [
            SweepRow(**r._mapping)
            for r in conn.execute(
                sa.select(S)
                .where(*where)
                .order_by(S.c.started_at.desc(), S.c.sweep_id.desc())
                .limit(size)
                .offset(offset)
            )
        ]
        return Page(_sweep_lines(conn, rows), page, size, total)

    return read(store, work)


def _sweep_lines(conn: sa.Connection, rows: list[SweepRow]) -> list[SweepLine]:
    ids = [r.sweep_id for r in rows]
    if not ids:
        return []
    counts: dict[str, dict[str, int]] = {}
    for sweep_id, status, n in conn.execute(
        sa.select(TR.c.sweep_id, TR.c.status, sa.func.count())
        .where(TR.c.sweep_id.in_(ids))
        .group_by(TR.c.sweep_id, TR.c.status)
    ):
        counts.setdefault(sweep_id, {})[status] = int(n)
    totals = {
        r.sweep_id: (int(r.epochs or 0), int(r.nodes or 0))
        for r in conn.execute(
            sa.select(
                TR.c.sweep_id,
                sa.func.sum(TR.c.epochs).label("epochs"),
                sa.func.count(sa.distinct(TR.c.node_id)).label("nodes"),
            )
            .where(TR.c.sweep_id.in_(ids))
            .group_by(TR.c.sweep_id)
        )
    }
    best = _best_per_sweep(conn, ids)
    return [
        SweepLine(
            sweep=r,
            counts=_in_order(counts.get(r.sweep_id, {})),
            epochs=totals.get(r.sweep_id, (0, 0))[0],
            nodes=totals.get(r.sweep_id, (0, 0))[1],
            best=best.get(r.sweep_id, (None, None))[0],
            best_trial=best.get(r.sweep_id, (None, None))[1],
        )
        for r in rows
    ]


def _best_per_sweep(conn: sa.Connection, ids: Sequence[str]) -> dict[str, tuple[float, str]]:
    """Each sweep's best ranked value and trial, picked by the database (one row per sweep)."""
    place = sa.func.row_number().over(
        partition_by=TR.c.sweep_id, order_by=(_signed(S.c.mode, TR.c.value), TR.c.trial_id)
    )
    ranked = (
        sa.select(TR.c.sweep_id, TR.c.trial_id, TR.c.value, place.label("place"))
        .join(S, S.c.sweep_id == TR.c.sweep_id)
        .where(TR.c.sweep_id.in_(list(ids)), _ranked())
        .subquery()
    )
    query = sa.select(ranked.c.sweep_id, ranked.c.value, ranked.c.trial_id).where(ranked.c.place == 1)
    return {r.sweep_id: (r.value, r.trial_id) for r in conn.execute(query)}


def _in_order(counts: dict[str, int]) -> dict[str, int]:
    ordered = {k: counts[k] for k in OUTCOMES if counts.get(k)}
    return {**ordered, **{k: n for k, n in counts.items() if k not in ordered and n}}


def sweep_line(store: Store, sweep_id: str) -> SweepLine:
    """One sweep's overview line (the sweep page's summary)."""
    line: SweepLine = sweeps_page(store, ids=[sweep_id], size=1).rows[0]
    return line


def fingerprint(store: Store, sweep_ids: Sequence[str] | None = None) -> tuple[str, bool]:
    """A text that changes whenever anything of these sweeps (None: of any) is recorded, and
    whether one of them is running: what live pages poll for."""

    def where(column: Any) -> Any:
        return sa.true() if sweep_ids is None else column.in_(list(sweep_ids))

    def work(conn: sa.Connection) -> tuple[str, bool]:
        trials = conn.execute(
            sa.select(sa.func.count(), sa.func.max(TR.c.updated_at), sa.func.sum(TR.c.epochs)).where(
                where(TR.c.sweep_id)
            )
        ).one()
        sweeps = conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.max(S.c.ended_at),
                sa.func.count().filter(S.c.status == RUNNING),
            ).where(where(S.c.sweep_id))
        ).one()
        return "|".join(str(v) for v in (*trials, *sweeps)), bool(sweeps[2])

    return read(store, work)


# -- one sweep ---------------------------------------------------------------------------------


def leaderboard(store: Store, sweep: SweepRow, *, page: int = 1, size: int = PAGE_SIZE) -> Page:
    """Ranked trials best first, then running, then the unranked; one page of them."""
    page, offset = _page_bounds(page, size)
    ranked = sa.and_(TR.c.status.in_(RANKED), TR.c.value.is_not(None))
    order = (
        sa.case((ranked, 0), (TR.c.status == RUNNING, 1), else_=2),
        sa.case((ranked, -TR.c.value if sweep.mode == "max" else TR.c.value), else_=None),
        TR.c.trial_id,
    )

    def work(conn: sa.Connection) -> Page:
        total = conn.execute(sa.select(sa.func.count()).where(TR.c.sweep_id == sweep.sweep_id)).scalar_one()
        rows = [
            TrialRow(**r._mapping)
            for r in conn.execute(
                sa.select(TR)
                .where(TR.c.sweep_id == sweep.sweep_id)
                .order_by(*order)
                .limit(size)
                .offset(offset)
            )
        ]
        return Page(rows, page, size, total)

    return read(store, work)


def trial_info(t: Any) -> str:
    config = ", ".join(f"{k}={short(v)}" for k, v in (t.config or {}).items())
    value = "" if t.value is None else f", best {t.value:.4g}"
    return f"trial {t.trial_id} ({t.status}{value}): {config}"


def short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def curves(store: Store, sweep: SweepRow, *, limit: int = CURVES) -> dict[str, Any]:
    """Learning curves of the best ``limit`` trials and every running one: epoch against metric."""
    ranked = sa.and_(TR.c.status.in_(RANKED), TR.c.value.is_not(None))
    signed = -TR.c.value if sweep.mode == "max" else TR.c.value

    def work(conn: sa.Connection) -> dict[str, Any]:
        mine = TR.c.sweep_id == sweep.sweep_id
        best = conn.execute(
            sa.select(TR).where(mine, ranked).order_by(signed, TR.c.trial_id).limit(limit)
        ).all()
        running = conn.execute(sa.select(TR).where(mine, TR.c.status == RUNNING).limit(limit)).all()
        # Unranked ones (diverged, errored) show why they failed, a few of them.
        failed = conn.execute(
            sa.select(TR).where(mine, TR.c.status.in_(UNRANKED)).order_by(TR.c.updated_at.desc()).limit(10)
        ).all()
        total = conn.execute(sa.select(sa.func.count()).where(mine)).scalar_one()
        chosen = {t.trial_id: t for t in (*best, *running, *failed)}
        points: dict[str, list[list[float | None]]] = {k: [] for k in chosen}
        if chosen:
            for trial_id, epoch, value in conn.execute(
                sa.select(E.c.trial_id, E.c.epoch, E.c.value)
                .where(E.c.sweep_id == sweep.sweep_id, E.c.trial_id.in_(list(chosen)))
                .order_by(E.c.trial_id, E.c.epoch)
            ):
                points[trial_id].append([epoch, _finite(value)])
        series = [
            {
                "name": t.trial_id,
                "status": t.status,
                "info": trial_info(t),
                "points": points[t.trial_id],
            }
            for t in chosen.values()
        ]
        shown = len(series)
        note = None if shown >= total else f"the best {len(best)} of {total:,} trials, every running one"
        return {
            "kind": "lines",
            "x_label": "epoch",
            "y_label": sweep.metric,
            "series": series,
            "note": note,
        }

    return read(store, work)


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def best_so_far(store: Store, sweep: SweepRow) -> dict[str, Any]:
    """The best value so far against seconds since the start and against epochs spent.

    The running best and the epoch count are window functions: only the epochs that set a
    new best leave the database.
    """
    usable = sa.and_(TR.c.status.not_in(UNRANKED), E.c.value.is_not(None), E.c.diverged.is_(False))
    value = sa.case((usable, E.c.value), else_=None)
    order = (E.c.recorded_at, E.c.trial_id, E.c.epoch)
    window = sa.func.max(value) if sweep.mode == "max" else sa.func.min(value)
    rows = (
        sa.select(
            E.c.trial_id,
            E.c.epoch,
            E.c.recorded_at,
            value.label("value"),
            window.over(order_by=order).label("best"),
            sa.func.row_number().over(order_by=order).label("spent"),
        )
        .join(TR, sa.and_(TR.c.sweep_id == E.c.sweep_id, TR.c.trial_id == E.c.trial_id))
        .where(E.c.sweep_id == sweep.sweep_id)
        .subquery()
    )
    query = sa.select(rows).where(rows.c.value == rows.c.best).order_by(rows.c.spent)

    def work(conn: sa.Connection) -> Sequence[sa.Row[Any]]:
        return conn.execute(query).all()

    found = read(store, work)
    origin = sweep.started_at
    by_time, by_epochs, last = [], [], None
    for r in found:
        if last is not None and r.best == last:
            continue  # a tie of the best: no step
        last = r.best
        seconds = ((_utc(r.recorded_at) or origin) - origin).total_seconds()
        by_time.append([round(seconds, 3), r.best, f"trial {r.trial_id}, epoch {r.epoch}"])
        by_epochs.append([int(r.spent), r.best, f"trial {r.trial_id}, epoch {r.epoch}"])
    return {
        "kind": "steps",
        "y_label": f"best {sweep.metric}",
        "panels": [
            {"x_label": "seconds since the sweep started", "points": by_time},
            {"x_label": "epochs spent", "points": by_epochs},
        ],
    }


def parallel(store: Store, sweep: SweepRow, *, limit: int = PARALLEL) -> dict[str, Any]:
    """Configurations of the best ``limit`` ranked trials against the metric, one axis per parameter."""
    signed = -TR.c.value if sweep.mode == "max" else TR.c.value
    query = (
        sa.select(TR.c.trial_id, TR.c.config, TR.c.value, TR.c.status)
        .where(TR.c.sweep_id == sweep.sweep_id, _ranked())
        .order_by(signed, TR.c.trial_id)
        .limit(limit)
    )
    trials = read(store, lambda conn: conn.execute(query).all())
    space = sweep.space or {}
    names = [k for k, p in space.items() if (p or {}).get("type") != "fixed"]
    for t in trials:
        names += [
            k for k, v in (t.config or {}).items() if k not in names and k not in space and _is_varied(v)
        ]
    axes = [
        _axis(name, [(t.config or {}).get(name) for t in trials], space.get(name) or {}) for name in names
    ]
    values = [t.value for t in trials]
    axes.append(_axis(sweep.metric, values, {}))
    lines = []
    for i, t in enumerate(trials):
        lines.append(
            {
                "values": [a["scale"][i] for a in axes],
                "value": t.value,
                "info": trial_info(t),
            }
        )
    for a in axes:
        del a["scale"]
    return {"kind": "parallel", "axes": axes, "lines": lines, "mode": sweep.mode, "total": len(trials)}


def _is_varied(value: Any) -> bool:
    return isinstance(value, int | float | str | bool)


def _axis(name: str, values: list[Any], param: dict[str, Any]) -> dict[str, Any]:
    """An axis: each value placed in [0, 1] (log where the space says so; choices evenly spaced)."""
    numbers = [
        v for v in values if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    ]
    if numbers and len(numbers) == len([v for v in values if v is not None]):
        log = bool(param.get("log")) and min(numbers) > 0
        f = math.log10 if log else float
        lo, hi = f(min(numbers)), f(max(numbers))
        span = hi - lo or 1.0
        scale = [None if v is None else (f(v) - lo) / span for v in values]
        return {"name": name, "low": min(numbers), "high": max(numbers), "log": log, "scale": scale}
    labels = sorted({str(v) for v in values if v is not None})
    place = {label: (i / (len(labels) - 1) if len(labels) > 1 else 0.5) for i, label in enumerate(labels)}
    scale = [None if v is None else place[str(v)] for v in values]
    return {"name": name, "labels": labels, "scale": scale}


def stops(store: Store, sweep: SweepRow) -> dict[str, Any]:
    """Trials that ended before the last epoch, counted per epoch and outcome (where ASHA's rungs cut)."""
    ended = ("stopped early", "diverged", "errored")
    query = (
        sa.select(TR.c.epochs, TR.c.status, sa.func.count())
        .where(TR.c.sweep_id == sweep.sweep_id, TR.c.status.in_(ended))
        .group_by(TR.c.epochs, TR.c.status)
        .order_by(TR.c.epochs)
    )
    rows = read(store, lambda conn: conn.execute(query).all())
    epochs = sorted({int(r[0] or 0) for r in rows})
    series = []
    for status in ended:
        counts = {int(r[0] or 0): int(r[2]) for r in rows if r[1] == status}
        if counts:
            series.append({"name": status, "status": status, "values": [counts.get(e, 0) for e in epochs]})
    return {
        "kind": "bars",
        "x_label": "epochs when stopped",
        "y_label": "trials",
        "categories": epochs,
        "series": series,
    }


def slot_use(store: Store, sweep: SweepRow, *, steps: int = 400) -> dict[str, Any]:
    """How many trials ran at once over time: +1 at each start, -1 at each end, summed in order."""
    query = sa.select(TR.c.started_at, TR.c.ended_at, TR.c.updated_at, TR.c.status).where(
        TR.c.sweep_id == sweep.sweep_id, TR.c.started_at.is_not(None)
    )
    rows = read(store, lambda conn: conn.execute(query).all())
    origin = sweep.started_at
    now = utcnow()
    events = []
    for started, ended, updated, status in rows:
        end = ended or (now if status == RUNNING else updated)
        events.append(((started - origin).total_seconds(), 1))
        events.append(((end - origin).total_seconds(), -1))
    events.sort()
    points, level = [], 0
    for at, change in events:
        level += change
        points.append([round(at, 3), level, f"{level} running"])
    if len(points) > steps:  # keep the shape: every n-th change
        every = math.ceil(len(points) / steps)
        points = points[::every] + [points[-1]]
    return {
        "kind": "steps",
        "y_label": "trials running",
        "panels": [{"x_label": "seconds since the sweep started", "points": points}],
    }


def trial_rows(store: Store, sweep_id: str) -> list[TrialRow]:
    """Every trial of a sweep (importance and the HTML report need configs and values)."""
    query = sa.select(TR).where(TR.c.sweep_id == sweep_id).order_by(TR.c.trial_id)
    return read(store, lambda conn: [TrialRow(**r._mapping) for r in conn.execute(query)])


# -- a job across sweeps -----------------------------------------------------------------------


def job_history(store: Store, job: str, *, limit: int = 500) -> dict[str, Any]:
    """Each sweep's best value against its start, the newest ``limit`` sweeps of the job."""
    query = (
        sa.select(S.c.sweep_id, S.c.started_at, S.c.metric, S.c.mode)
        .where(S.c.job == job)
        .order_by(S.c.started_at.desc())
        .limit(limit)
    )

    def work(conn: sa.Connection) -> dict[str, Any]:
        sweeps = conn.execute(query).all()
        best = _best_per_sweep(conn, [s.sweep_id for s in sweeps])
        return {"sweeps": sweeps, "best": best}

    found = read(store, work)
    by_metric: dict[str, list[list[Any]]] = {}
    for s in reversed(found["sweeps"]):
        if s.sweep_id in found["best"]:
            value, trial_id = found["best"][s.sweep_id]
            by_metric.setdefault(f"{s.metric} ({s.mode})", []).append(
                [s.started_at.timestamp() * 1000, value, f"sweep {s.sweep_id}, trial {trial_id}"]
            )
    return {
        "kind": "lines",
        "x_label": "sweep start",
        "x_time": True,
        "y_label": "best value",
        "series": [
            {"name": name, "status": "completed", "info": name, "points": pts, "markers": True}
            for name, pts in by_metric.items()
        ],
        "note": None,
    }


# -- schedules ---------------------------------------------------------------------------------


def schedule_runs_of(store: Store, *, job: str | None = None, limit: int = 100) -> Sequence[sa.Row[Any]]:
    """Scheduled runs, newest first (of one job, or of all)."""
    r = schedule_runs
    query = sa.select(r).order_by(r.c.scheduled_for.desc(), r.c.run_id.desc()).limit(limit)
    if job is not None:
        query = query.where(r.c.job == job)
    return read(store, lambda conn: conn.execute(query).all())


def schedule_overview(store: Store) -> dict[str, Any]:
    """Per scheduled sweep: its last run and how many runs it had; and every lock held now."""
    r = schedule_runs
    place = sa.func.row_number().over(
        partition_by=r.c.name, order_by=(r.c.scheduled_for.desc(), r.c.run_id.desc())
    )
    count = sa.func.count().over(partition_by=r.c.name)
    ranked = sa.select(r, place.label("place"), count.label("runs")).subquery()

    def work(conn: sa.Connection) -> dict[str, Any]:
        last = conn.execute(sa.select(ranked).where(ranked.c.place == 1).order_by(ranked.c.name)).all()
        locks = conn.execute(sa.select(schedule_locks).order_by(schedule_locks.c.name)).all()
        return {"last": last, "locks": locks}

    return read(store, work)
