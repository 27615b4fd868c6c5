"""A sweep as one self-contained HTML page (inline SVG figures, no scripts, works offline)."""

from __future__ import annotations

import html
import io
import logging
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tuning_service.errors import InputError
from tuning_service.results import UNRANKED, SweepResult, tally, write_atomic
from tuning_service.space import Space

log = logging.getLogger(__name__)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1000px;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem}td,th{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:left}
th{background:#f5f5f5}.num{text-align:right;font-variant-numeric:tabular-nums}
.figure svg{max-width:100%;height:auto}.note{color:#666;font-size:.85rem}
.status-diverged{color:#c62828}.status-errored{color:#6a1b9a}.status-stopped{color:#8d6e00}.status-dropped{color:#757575}
"""


def curves(result: SweepResult) -> list[Any]:
    """Trials as plain figure data, times in seconds since the sweep's first epoch began."""
    from tuning_service.plots import TrialCurve

    rows = [h for t in result.trials for h in t.history]
    starts = [_end(h) - float(h.get("time_this_iter_s") or 0.0) for h in rows if _end(h) is not None]
    origin = min(starts) if starts else 0.0
    out = []
    for t in result.trials:
        hist = [h for h in t.history if h.get("training_iteration") is not None]
        out.append(
            TrialCurve(
                trial_id=t.trial_id,
                status=t.status,
                config=t.config,
                value=t.value,
                epochs=[int(h["training_iteration"]) for h in hist],
                metric=[_number(h.get(result.metric)) if not h.get("diverged") else None for h in hist],
                ends=[(_end(h) or origin) - origin for h in hist],
                durations=[float(h.get("time_this_iter_s") or 0.0) for h in hist],
            )
        )
    return out


def _end(row: Mapping[str, Any]) -> float | None:
    value = row.get("ended_at", row.get("timestamp"))
    return float(value) if value is not None else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def param_importance(result: SweepResult, space: Space | None) -> dict[str, float]:
    """Optuna's fANOVA importance over the finished trials; empty when it cannot be judged."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    if space is None:
        return {}
    searched = {
        k: v
        for k, v in OptunaSearch.convert_search_space(space.to_ray()).items()
        if len(getattr(v, "choices", (0, 1))) > 1
    }
    finished = [t for t in result.trials if t.value is not None and t.status not in UNRANKED]
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
        return dict(optuna.importance.get_param_importances(study))
    except (RuntimeError, ValueError) as exc:  # e.g. every trial has the same value
        log.info("importance not computed: %s", exc)
        return {}


def figures(result: SweepResult, space: Space | None) -> dict[str, Any]:
    """Every figure of the report, by file stem, in page order."""
    from tuning_service import plots as rf

    data = curves(result)
    return {
        "best_so_far": rf.best_so_far(data, result.metric, result.mode),
        "learning_curves": rf.learning_curves(data, result.metric),
        "parallel_coordinates": rf.parallel_coordinates(data, result.metric, result.mode),
        "importance": rf.importance(param_importance(result, space)),
        "rung_stops": rf.rung_stops(data, result.max_epochs),
        "slot_usage": rf.slot_usage(data),
    }


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric: set[int] = frozenset()) -> str:
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
        for rank, t in enumerate(result.leaderboard(), 1)
    ]
    sections = "".join(
        f'<h2>{html.escape(name.replace("_", " "))}</h2><div class="figure" id="fig-{name}">{_svg(fig)}</div>'
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
        f"<h2>leaderboard</h2>{_table(['#', 'trial', result.metric, 'best epoch', 'epochs', 'status', *keys], board, {0, 2, 3, 4})}"
        f"{sections}"
        f"<p class='note'>made by tuning-service on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC</p></body></html>"
    )


def write_report(result: SweepResult, space: Space | None, out: Path, png_dir: Path | None = None) -> Path:
    """Write the HTML page (atomically) and, on request, every figure as PNG."""
    out = Path(out)
    if not out.parent.is_dir():
        raise InputError(f"cannot write the report to {str(out)!r}: {str(out.parent)!r} is not a directory")
    from tuning_service.plots import save_png

    figs = figures(result, space)
    try:
        write_atomic(out, render_html(result, space, figs))
        if png_dir is not None:
            Path(png_dir).mkdir(parents=True, exist_ok=True)
            for name, fig in figs.items():
                save_png(fig, Path(png_dir) / f"{name}.png", dpi=130)
    except PermissionError as exc:
        raise InputError(f"cannot write the report: {exc}") from None
    return out
