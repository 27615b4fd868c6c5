"""A sweep as one self-contained HTML page (inline SVG figures, no scripts, works offline)."""

from __future__ import annotations

import contextlib
import gc
import html
import io
import logging
import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuning_service.core import curvefile, lineage
from tuning_service.core.errors import InputError
from tuning_service.core.forked import map_forked
from tuning_service.core.objectives import is_multi_objective, parsed
from tuning_service.core.results import (
    INFEASIBLE,
    TRIALS_JSON,
    UNRANKED,
    SweepResult,
    TrialSummary,
    load_result,
    tally,
    write_atomic,
)
from tuning_service.core.space import Space

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

log = logging.getLogger(__name__)

# A report of many sweeps: the leaderboard lists the best LEADERBOARD_ROWS trials (trials.json
# holds every one), and importance is judged on a fixed random sample of the finished trials
# (importance over 10,000 trials takes longer than the whole report should).
LEADERBOARD_ROWS = 100
IMPORTANCE_TRIALS = 1000
# The report's SVG settings. Text as <text> elements in a sans-serif font, not each glyph as a
# path: the page's labels can be selected and searched (a browser's find), and the page is
# smaller (1.28 MB against 1.41 MB for `python -m benchmarks.store_scale`'s page).
SVG_RC: dict[RcKeyType, Any] = {"svg.fonttype": "none"}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1000px;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem}td,th{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:left}
th{background:#f5f5f5}.num{text-align:right;font-variant-numeric:tabular-nums}
.figure svg{max-width:100%;height:auto}.note{color:#666;font-size:.85rem}
.status-diverged{color:#c62828}.status-errored{color:#6a1b9a}.status-stopped{color:#8d6e00}.status-dropped{color:#757575}
"""


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for a while (as it was before, after).

    Loading 10,000 trials and drawing their figures allocates millions of objects, and every
    full pass of the collector scans every one still held (much of the load step of
    `python -m benchmarks.store_scale` before this pause), to find the few reference cycles
    Matplotlib's figures leave, which one pass after the report still frees."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def curves(result: SweepResult) -> list[Any]:
    """Trials as plain figure data, times in seconds since the sweep's first epoch began."""
    cols = curvefile.columns([{"history": t.history} for t in result.trials], result.metric)
    return _curves([(result.trials, cols)])


def _curves(parts: Sequence[tuple[Sequence[TrialSummary], curvefile.Columns]]) -> list[Any]:
    """Figure data of one or more sweeps' columns; times from the earliest epoch start of all."""
    import numpy as np

    from tuning_service.sweeps.plots import Curves, TrialCurve

    starts = [c.first_start for _, c in parts if not math.isnan(c.first_start)]
    origin = min(starts) if starts else 0.0
    out: list[TrialCurve] = []
    columns: dict[str, list[Any]] = {"trial": [], "epochs": [], "metric": [], "ends": [], "durations": []}
    for trials, cols in parts:
        # Rows are grouped by trial, in trial order: one slice per trial.
        bounds = np.searchsorted(cols.trial, np.arange(len(trials) + 1)).tolist()
        ends = np.where(np.isnan(cols.end), 0.0, cols.end - origin)
        rows = slice(0, bounds[-1])  # the rows the trials' slices below hold
        for name, column in (
            ("trial", cols.trial[rows].astype(np.int64) + len(out)),
            ("epochs", cols.epoch[rows].astype(np.float64)),
            ("metric", cols.metric[rows]),
            ("ends", ends[rows]),
            ("durations", cols.duration[rows]),
        ):
            columns[name].append(column)
        epochs, metric, durations = cols.epoch.tolist(), cols.metric.tolist(), cols.duration.tolist()
        relative = ends.tolist()
        for i, t in enumerate(trials):
            a, b = bounds[i], bounds[i + 1]
            out.append(
                TrialCurve(
                    trial_id=t.trial_id,
                    status=t.status,
                    config=t.config,
                    value=t.value,
                    epochs=epochs[a:b],
                    metric=metric[a:b],
                    ends=relative[a:b],
                    durations=durations[a:b],
                )
            )
    empty = {"trial": np.zeros(0, dtype=np.int64)}
    return Curves(
        out, {name: np.concatenate(c) if c else empty.get(name, np.zeros(0)) for name, c in columns.items()}
    )


def load(sweep_dirs: Sequence[Path]) -> tuple[SweepResult, list[Any]]:
    """Finished sweeps and their figure data, read from their columns (curves.npz) where
    current, else from trials.json. Several sweeps (all of a job) become one: trials pooled,
    ids prefixed with their sweep."""
    with _collector_paused():
        return _load(sweep_dirs)


def _load(sweep_dirs: Sequence[Path]) -> tuple[SweepResult, list[Any]]:
    parts = []
    several = len(sweep_dirs) > 1
    for sweep_dir in sweep_dirs:
        cols = curvefile.read(Path(sweep_dir) / curvefile.CURVES_NPZ, Path(sweep_dir) / TRIALS_JSON)
        if cols is not None:
            result = load_result(sweep_dir, trials=[])
            # Several sweeps: each trial made with its id prefixed (not made, then copied).
            prefix = f"{result.sweep_id}/" if several else ""
            trials = [TrialSummary(**{**t, "trial_id": prefix + t["trial_id"]}) for t in cols.trials]
            result = replace(result, trials=trials)
        else:
            result = load_result(sweep_dir)
            cols = curvefile.columns([{"history": t.history} for t in result.trials], result.metric)
            if several:
                prefixed = [replace(t, trial_id=f"{result.sweep_id}/{t.trial_id}") for t in result.trials]
                result = replace(result, trials=prefixed)
        parts.append((result, cols))
    if len(parts) == 1:
        result, cols = parts[0]
        return result, _curves([(result.trials, cols)])
    merged = _merge([r for r, _ in parts])
    pooled, at = [], 0
    for result, cols in parts:  # the merged trials, cut back into their sweeps
        pooled.append((merged.trials[at : at + len(result.trials)], cols))
        at += len(result.trials)
    return merged, _curves(pooled)


def _merge(results: list[SweepResult]) -> SweepResult:
    """All sweeps of one job as one: trials (their ids prefixed with their sweep) pooled."""
    first, last = results[0], results[-1]
    trials = [t for r in results for t in r.trials]
    return replace(
        last,
        sweep_id=f"{len(results)} sweeps ({first.sweep_id} .. {last.sweep_id})",
        sweep_dir=last.sweep_dir.parent,
        trials=trials,
        wall_time_s=sum(r.wall_time_s for r in results),
        searcher=", ".join(sorted({r.searcher for r in results})),
        scheduler=", ".join(sorted({r.scheduler for r in results})),
        max_epochs=max(r.max_epochs for r in results),
    )


def param_importance(result: SweepResult, space: Space | None) -> dict[str, float]:
    """Optuna's PED-ANOVA importance over the finished trials; empty when it cannot be judged.

    Named, not left to Optuna's default: that changed from fANOVA to PED-ANOVA in Optuna 5,
    and a report should say what it measured whichever Optuna is installed. PED-ANOVA
    (which values a parameter takes in the best trials) needs no random forest: it is
    deterministic and fast over a thousand trials.
    """
    import optuna

    from tuning_service.core.leanimport import lean_import

    lean_import("optuna.importance")  # without scikit-learn, which only the other evaluators use

    if space is None:
        return {}
    distributions = {k: p.to_optuna() for k, p in space.items()}
    searched = {
        k: v for k, v in distributions.items() if v is not None and len(getattr(v, "choices", (0, 1))) > 1
    }
    finished = [t for t in result.trials if t.value is not None and t.status not in UNRANKED]
    if len(finished) > IMPORTANCE_TRIALS:
        finished = random.Random(0).sample(finished, IMPORTANCE_TRIALS)
    if len(finished) < 3 or not searched:
        return {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if result.mode == "max" else "minimize")
    for t in finished:
        params = {k: t.config[k] for k in searched if k in t.config}
        dists = {k: searched[k] for k in params}
        try:
            study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=t.value))
        except ValueError as exc:  # a value outside its distribution (e.g. a space edited since)
            log.warning("importance: trial %s left out: %s", t.trial_id, exc)
    try:
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))
    except (RuntimeError, ValueError) as exc:  # e.g. every trial has the same value
        log.info("importance not computed: %s", exc)
        return {}


# Each figure of the report by file stem, in page order: (result, space, curves) -> Figure.
FIGURES: dict[str, Callable[[SweepResult, Space | None, Sequence[Any]], Any]] = {
    "best_so_far": lambda r, s, d: _plots().best_so_far(d, r.metric, r.mode),
    "learning_curves": lambda r, s, d: _plots().learning_curves(d, r.metric, r.mode),
    "parallel_coordinates": lambda r, s, d: _plots().parallel_coordinates(d, r.metric, r.mode),
    "importance": lambda r, s, d: _plots().importance(param_importance(r, s), note=_sampled(r)),
    "rung_stops": lambda r, s, d: _plots().rung_stops(d, r.max_epochs),
    "slot_usage": lambda r, s, d: _plots().slot_usage(d),
    # Multi-objective sweeps only (None otherwise: the page leaves it out).
    "pareto_front": lambda r, s, d: _pareto_figure(r),
}


def _pareto_figure(result: SweepResult) -> Any:
    """The first two objectives of every trial with the front drawn; None for a single-objective sweep."""
    if not is_multi_objective(result.objectives):
        return None
    objectives = parsed(result.objectives)
    y, x = ((o.name, o.mode) for o in objectives[:2])
    names = [o.name for o in objectives]
    has = [t for t in result.trials if all(n in t.objectives for n in names)]
    note = f"the front over all {len(names)} objectives, drawn by the first two" if len(names) > 2 else None
    return _plots().pareto_front(
        [t.objectives for t in has if t.status not in UNRANKED],
        [c.values for c in result.pareto()],
        y,
        x,
        infeasible=[t.objectives for t in has if t.status == INFEASIBLE],
        note=note,
    )


def _plots() -> Any:
    from tuning_service.sweeps import plots

    return plots


def figures(result: SweepResult, space: Space | None, data: Sequence[Any] | None = None) -> dict[str, Any]:
    """Every figure of the report, by file stem, in page order; ``data``: `curves` of ``result``."""
    data = curves(result) if data is None else data
    built = {name: build(result, space, data) for name, build in FIGURES.items()}
    return {name: fig for name, fig in built.items() if fig is not None}


def drawn_figures(
    result: SweepResult, space: Space | None, data: Sequence[Any], png_dir: Path | None = None
) -> dict[str, str]:
    """Every figure as SVG text (and, with ``png_dir``, as a PNG file there), in page order.

    Drawn by this process and forked copies of it at once where that is safe (`core.forked`):
    each figure is pure-Python work that threads could not share out. Importance comes first, so
    this process draws it: Optuna's importance module, once imported here, is already loaded in the
    forked copies and in a long-lived caller's next report (the dashboard's), instead of being
    imported again by a copy that then exits."""
    names = sorted(FIGURES, key=lambda name: name != "importance")
    drawn = dict(
        zip(names, map_forked(lambda name: _draw(name, result, space, data, png_dir), names), strict=True)
    )
    return {name: svg for name in FIGURES if (svg := drawn[name]) is not None}


def _draw(
    name: str, result: SweepResult, space: Space | None, data: Sequence[Any], png_dir: Path | None
) -> str | None:
    fig = FIGURES[name](result, space, data)
    if fig is None:
        return None
    if png_dir is not None:
        _plots().save_png(fig, Path(png_dir) / f"{name}.png", dpi=130)
    return _svg(fig)


def _sampled(result: SweepResult) -> str | None:
    finished = sum(1 for t in result.trials if t.value is not None and t.status not in UNRANKED)
    if finished <= IMPORTANCE_TRIALS:
        return None
    return f"from a random {IMPORTANCE_TRIALS:,} of {finished:,} finished trials"


def _svg(fig: Any) -> str:
    """``fig`` as SVG text, from its ``<svg`` tag on.

    Written by Matplotlib's SVG canvas itself rather than through ``Figure.savefig``: savefig
    first draws a figure with a layout engine once more without output, to lay it out (and
    renders a rasterized artist for nothing in that pass), while the figure's own draw lays
    it out anyway. The same SVG (tests/sweeps/test_report_svg.py), in less time (see
    `python -m benchmarks.store_scale`'s step table). Text stays text (`SVG_RC`)."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buf = io.StringIO()
    dpi = fig.dpi
    try:
        with rc_context(SVG_RC):
            FigureCanvasSVG(fig).print_svg(buf)
    finally:
        fig.dpi = dpi  # print_svg leaves the figure at SVG's 72 dpi
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], numeric: frozenset[int] | set[int] = frozenset()
) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header) if any(header) else ""
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"num" if i in numeric else ""}">{html.escape(_fmt(v))}</td>'
            for i, v in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    thead = f"<thead><tr>{head}</tr></thead>" if head else ""
    return f"<table>{thead}<tbody>{body}</tbody></table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return "" if value is None else str(value)


def lineage_section(sweep_dir: Path | None, metric: str) -> str:
    """A PBT sweep's lineage section (a figure and the table), or "" for a sweep without exploits."""
    exploits = lineage.read_lineage(sweep_dir) if sweep_dir is not None else []
    if not exploits:
        return ""
    header = [h.replace("value", metric) for h in lineage.HEADER]
    return (
        "<h2>lineage</h2>"
        f"<p class='note'>Population Based Training: {len(exploits)} times a trial took over a better "
        "trial's weights and optimizer state, then trained on with perturbed hyperparameters.</p>"
        f'<div class="figure" id="fig-lineage">{_svg(_plots().lineage(exploits))}</div>'
        f"{_table(header, lineage.rows(exploits), {1, 2, 4, 5})}"
    )


def render_html(result: SweepResult, space: Space | None, figs: Mapping[str, Any]) -> str:
    """The page: summary, leaderboard and every figure inline."""
    best = result.best
    summary = [
        ("job", result.job),
        ("sweep", result.sweep_id),
        ("searcher", result.searcher),
        ("scheduler", result.scheduler),
        ("seed", result.seed),
        ("trials", tally(result.counts(), noun="")),
        ("epochs spent", result.epochs),
        ("wall time", f"{result.wall_time_s:.1f} s"),
        (
            f"best {result.metric}",
            f"{best.value:.4f} (epoch {best.best_epoch}, trial {best.trial_id})" if best else "-",
        ),
        ("best config", ", ".join(f"{k}={_fmt(v)}" for k, v in best.config.items()) if best else "-"),
    ]
    keys: list[str] = []
    for t in result.trials:
        keys += [k for k in t.config if k not in keys]
    board = [
        [
            rank,
            t.trial_id,
            t.value,
            t.best_epoch,
            t.epochs,
            t.status + (f": {t.error}" if t.error else ""),
            *(t.config.get(k) for k in keys),
        ]
        for rank, t in enumerate(result.leaderboard(LEADERBOARD_ROWS), 1)
    ]
    heading = "leaderboard"
    if len(result.trials) > LEADERBOARD_ROWS:
        heading += (
            f": the best {LEADERBOARD_ROWS} of {len(result.trials):,} trials (trials.json holds every one)"
        )
    front = result.pareto()
    front_section = ""
    if front:
        objectives = parsed(result.objectives)
        constraints = f" (feasible under {', '.join(result.constraints)})" if result.constraints else ""
        rows = [
            [rank, c.trial_id, *(c.values[o.name] for o in objectives), c.item.best_epoch, c.item.status,
             *(c.item.config.get(k) for k in keys)]
            for rank, c in enumerate(front, 1)
        ]  # fmt: skip
        header = ["#", "trial", *map(str, objectives), "epoch", "status", *keys]
        front_section = f"<h2>Pareto front: {len(front)} trials{html.escape(constraints)}</h2>" + _table(
            header, rows, set(range(len(objectives) + 3)) - {1}
        )
    sections = "".join(
        f'<h2>{html.escape(name.replace("_", " "))}</h2><div class="figure" id="fig-{name}">'
        f"{fig if isinstance(fig, str) else _svg(fig)}</div>"
        for name, fig in figs.items()
    )
    no_result = (
        ""
        if best
        else '<p class="note">No trial finished with a valid metric; the figures show what ran.</p>'
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(result.job)} sweep {html.escape(result.sweep_id)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(result.job)} &mdash; sweep {html.escape(result.sweep_id)}</h1>{no_result}"
        f"<h2>summary</h2>{_table(['', ''], summary)}"
        f"<h2>{html.escape(heading)}</h2>{_table(['#', 'trial', result.metric, 'best epoch', 'epochs', 'status', *keys], board, {0, 2, 3, 4})}"
        f"{front_section}{sections}{lineage_section(result.sweep_dir, result.metric)}"
        f"<p class='note'>made by tuning-service on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC</p></body></html>"
    )


def write_report(
    result: SweepResult,
    space: Space | None,
    out: Path,
    png_dir: Path | None = None,
    data: Sequence[Any] | None = None,
) -> Path:
    """Write the HTML page (atomically) and, on request, every figure as PNG; ``data`` as `load` gives it."""
    out = Path(out)
    if not out.parent.is_dir():
        raise InputError(f"cannot write the report to {str(out)!r}: {str(out.parent)!r} is not a directory")
    try:
        if png_dir is not None:
            Path(png_dir).mkdir(parents=True, exist_ok=True)
        with _collector_paused():
            drawn = drawn_figures(result, space, curves(result) if data is None else data, png_dir)
            page = render_html(result, space, drawn)
        write_atomic(out, page)
    except PermissionError as exc:
        raise InputError(f"cannot write the report: {exc}") from None
    return out
