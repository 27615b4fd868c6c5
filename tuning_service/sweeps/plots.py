"""Plotting functions over plain data, as Matplotlib figures: sweep reports and lr-find share them.

Figures are built with `matplotlib.figure.Figure` directly (no pyplot state, no display),
so they are safe in any thread or worker; `save_png` and the report's SVG embed write them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from tuning_service.core.results import UNRANKED

# Outcome -> line style of its learning curve; the colours follow the CLI's live view.
STYLES: dict[str, dict[str, Any]] = {
    "completed": {"color": "#2e7d32", "linestyle": "-", "alpha": 0.9},
    "stopped early": {"color": "#f9a825", "linestyle": "--", "alpha": 0.7},
    "diverged": {"color": "#c62828", "linestyle": ":", "alpha": 0.9},
    "errored": {"color": "#6a1b9a", "linestyle": ":", "alpha": 0.9},
    "dropped": {"color": "#757575", "linestyle": "-.", "alpha": 0.6},
    "infeasible": {"color": "#ad1457", "linestyle": ":", "alpha": 0.7},
}


# Above this many trials a figure summarises instead of drawing every trial as a vector line
# (10,000 curves in an SVG take minutes to draw and megabytes to embed): the learning curves
# show the best TOP_CURVES trials over a band of all, dense lines become one raster image.
DENSE_TRIALS = 200
TOP_CURVES = 50
# At most this many lines in the parallel coordinates (a sample spread evenly over the ranks).
PARALLEL_LINES = 1000
# Above this many changes in the number of running trials, slot usage is shown per interval.
SLOT_INTERVALS = 1000


@dataclass(frozen=True)
class TrialCurve:
    """One trial as the figures need it: outcome, config and per-epoch rows."""

    trial_id: str
    status: str
    config: Mapping[str, Any]
    value: float | None
    epochs: Sequence[int] = field(default_factory=list)
    metric: Sequence[float | None] = field(default_factory=list)
    # Seconds since the sweep started at the end of each epoch, and each epoch's length.
    ends: Sequence[float] = field(default_factory=list)
    durations: Sequence[float] = field(default_factory=list)


class Curves(list[TrialCurve]):
    """Trial curves (a plain list of them) that also carry every trial's per-epoch rows as flat
    NumPy columns: ``trial`` (the row's index in the list), ``epochs``, ``metric`` (NaN where
    missing), ``ends`` and ``durations``, each row as the trial's own lists hold it.

    A report of 10,000 trials has 300,000 epochs; the figures read them from these columns
    instead of flattening the per-trial lists again, element by element, in each figure."""

    def __init__(self, curves: Sequence[TrialCurve], columns: Mapping[str, Any]) -> None:
        super().__init__(curves)
        self.columns = dict(columns)


def _figure(
    title: str, xlabel: str, ylabel: str, size: tuple[float, float] = (7.0, 3.6)
) -> tuple[Figure, Any]:
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig, ax


def _better(mode: str) -> Any:
    return max if mode == "max" else min


def best_so_far(trials: Sequence[TrialCurve], metric: str, mode: str) -> Figure:
    """Best metric so far against wall time and against epochs spent, side by side."""
    import numpy as np

    ranked = [t.status not in UNRANKED for t in trials]
    ends, values = _flat(trials, "ends", ranked), _flat(trials, "metric", ranked)
    keep = np.isfinite(values) & np.isfinite(ends)
    ends, values = ends[keep], values[keep]
    order = _order(ends, values)  # by end, then value: the order epochs finished in
    ends, values = ends[order], values[order]
    best = (np.maximum if mode == "max" else np.minimum).accumulate(values)
    # Only the points where the best changes, and the last one: the same steps, drawn from
    # a handful of points instead of one per epoch.
    steps = np.flatnonzero(np.r_[True, best[1:] != best[:-1]]) if len(best) else np.array([], dtype=int)
    if len(best) and steps[-1] != len(best) - 1:
        steps = np.r_[steps, len(best) - 1]
    times, spent, best = ends[steps].tolist(), (steps + 1).tolist(), best[steps].tolist()
    fig = Figure(figsize=(9.0, 3.4), layout="constrained")
    by_time, by_epochs = fig.subplots(1, 2)
    by_time.step(times, best, where="post", color="#1565c0")
    by_time.set(title="best so far vs wall time", xlabel="seconds since start", ylabel=metric)
    by_epochs.step(spent, best, where="post", color="#1565c0")
    by_epochs.set(title="best so far vs epochs spent", xlabel="epochs trained (all trials)", ylabel=metric)
    for ax in (by_time, by_epochs):
        ax.grid(True, alpha=0.3)
    return fig


def _order(primary: Any, secondary: Any) -> Any:
    """Indices that sort by ``primary``, ties by ``secondary``: ``np.lexsort((secondary, primary))``.

    Epoch ends come nearly sorted, which a stable sort of one key takes in a few milliseconds;
    lexsort sorts by both keys, far slower there, and is needed only when ``primary`` has ties."""
    import numpy as np

    order = np.argsort(primary, kind="stable")
    ranked = primary[order]
    if np.all(ranked[1:] != ranked[:-1]):
        return order
    return np.lexsort((secondary, primary))


def _flat(trials: Sequence[TrialCurve], column: str, keep: Sequence[bool] | None = None) -> Any:
    """One per-epoch column of every trial (``keep``: of the trials it marks true), end to
    end, as floats (NaN for None)."""
    import numpy as np

    if isinstance(trials, Curves):
        values = trials.columns[column]
        return values if keep is None else values[np.asarray(keep, dtype=bool)[trials.columns["trial"]]]
    chosen = trials if keep is None else [t for t, k in zip(trials, keep, strict=True) if k]
    flat = chain.from_iterable(getattr(t, column) for t in chosen)
    return np.fromiter((math.nan if v is None else v for v in flat), dtype=np.float64)


def learning_curves(trials: Sequence[TrialCurve], metric: str, mode: str = "max") -> Figure:
    """Every trial's metric per epoch; early-stopped dashed, diverged dotted and marked with x.

    Above `DENSE_TRIALS` trials: the best `TOP_CURVES` trials so, over a band of every trial."""
    fig, ax = _figure("learning curves", "epoch", metric)
    drawn = list(trials)
    if len(trials) > DENSE_TRIALS:
        drawn = _top(trials, mode, TOP_CURVES)
        _band(ax, trials)
        ax.set_title(f"learning curves: the best {len(drawn)} of {len(trials):,} trials", fontsize=11)
    seen: set[str] = set()
    for t in drawn:
        style = STYLES.get(t.status, STYLES["completed"])
        points = [
            (e, v) for e, v in zip(t.epochs, t.metric, strict=False) if v is not None and math.isfinite(v)
        ]
        label = t.status if t.status not in seen else None
        seen.add(t.status)
        if points:
            # Markers keep one-epoch trials (stopped at the first rung) visible.
            ax.plot(
                *zip(*points, strict=True), linewidth=1.2, marker="o", markersize=2.5, label=label, **style
            )
        if t.status == "diverged" and t.epochs:
            last = points[-1][1] if points else 0.0
            ax.plot(
                [t.epochs[-1]],
                [last],
                marker="x",
                markersize=9,
                color=style["color"],
                label=label if not points else None,
            )
    if seen:
        # Matplotlib's "best" place tests every point drawn (seconds over a dense band); curves
        # rise to a plateau when higher is better and fall to one otherwise, leaving that corner.
        dense = len(trials) > DENSE_TRIALS
        ax.legend(fontsize=8, loc=("lower right" if mode == "max" else "upper right") if dense else "best")
    return fig


def _top(trials: Sequence[TrialCurve], mode: str, k: int) -> list[TrialCurve]:
    """The ``k`` best finished trials, best first (the report's leaderboard order)."""
    sign = -1.0 if mode == "max" else 1.0
    ranked = [t for t in trials if t.value is not None and t.status not in UNRANKED]
    return sorted(ranked, key=lambda t: sign * t.value)[:k]  # type: ignore[operator]


def _band(ax: Any, trials: Sequence[TrialCurve]) -> None:
    """The median and the 10-90 % range of every trial's metric at each epoch."""
    import numpy as np

    # Grouped by epoch with one sort of the flat columns.
    epochs, values = _flat(trials, "epochs"), _flat(trials, "metric")
    finite = np.isfinite(values)
    epochs, values = epochs[finite], values[finite]
    order = np.argsort(epochs, kind="stable")
    numbers, starts = np.unique(epochs[order], return_index=True)
    groups = dict(zip(numbers.astype(np.int64).tolist(), np.split(values[order], starts[1:]), strict=True))
    if not groups:
        return
    xs = sorted(groups)
    low, mid, high = np.array([np.percentile(groups[x], (10, 50, 90)) for x in xs]).T
    ax.fill_between(xs, low, high, color="0.6", alpha=0.3, linewidth=0, label="all trials: 10-90 %")
    ax.plot(xs, mid, color="0.35", linewidth=1.5, label="all trials: median")


def _axis_values(values: list[Any]) -> tuple[list[float], list[str] | None]:
    """Numbers stay numbers; anything else becomes category positions with their labels."""
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values if v is not None):
        return [float(v) if v is not None else math.nan for v in values], None
    labels = sorted({str(v) for v in values})
    return [float(labels.index(str(v))) for v in values], labels


def parallel_coordinates(trials: Sequence[TrialCurve], metric: str, mode: str) -> Figure:
    """One line per finished trial across every hyperparameter, coloured by the metric."""
    import matplotlib as mpl

    done = [t for t in trials if t.value is not None and t.status not in UNRANKED]
    keys = sorted({k for t in done for k in t.config})
    fig, ax = _figure("configurations vs metric", "", "scaled value", size=(9.0, 3.8))
    if not done or not keys:
        ax.text(0.5, 0.5, "no finished trial", ha="center", va="center", transform=ax.transAxes)
        return fig
    columns = [*keys, metric]
    scaled: list[list[float]] = []
    ticks: list[str] = []
    for key in columns:
        raw = [t.config.get(key) if key != metric else t.value for t in done]
        numbers, labels = _axis_values(raw)
        finite = [n for n in numbers if math.isfinite(n)]
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
        log = labels is None and lo > 0 and hi / lo > 20
        if log:
            numbers, lo, hi = [math.log10(n) for n in numbers], math.log10(lo), math.log10(hi)
        scaled.append([(n - lo) / (hi - lo) if hi > lo else 0.5 for n in numbers])
        ticks.append(f"{key}\n({'log ' if log else ''}{_span(lo, hi, labels, log)})")
    values = [float(t.value) for t in done if t.value is not None]
    norm = mpl.colors.Normalize(min(values), max(values))
    cmap = mpl.colormaps["viridis" if mode == "max" else "viridis_r"]
    if len(done) > DENSE_TRIALS:
        # One collection drawn as a raster image inside the SVG, the best trials on top. Past
        # PARALLEL_LINES, a sample evenly spread over the ranks (the best always among it):
        # ten thousand lines are one blur that takes seconds to draw.
        import numpy as np
        from matplotlib.collections import LineCollection

        order = sorted(range(len(values)), key=lambda i: values[i], reverse=mode != "max")
        if len(order) > PARALLEL_LINES:
            picks = np.unique(np.linspace(0, len(order) - 1, PARALLEL_LINES).round().astype(int))
            order = [order[i] for i in picks]
        ys = np.asarray(scaled, dtype=np.float64)[:, order].T  # one row per drawn trial
        xs = np.broadcast_to(np.arange(len(columns), dtype=np.float64), ys.shape)
        ax.add_collection(
            LineCollection(
                list(np.stack([xs, ys], axis=-1)),
                colors=cmap(norm(np.asarray(values)[order])),
                alpha=0.5,
                linewidths=0.6,
                rasterized=True,
            )
        )
        ax.set_xlim(-0.2, len(columns) - 0.8)
        drawn = f"{len(order):,} of {len(done):,}" if len(order) < len(done) else f"{len(done):,}"
        ax.set_title(f"configurations vs metric ({drawn} finished trials)", fontsize=11)
    else:
        for i, value in enumerate(values):
            ax.plot(
                range(len(columns)),
                [col[i] for col in scaled],
                color=cmap(norm(value)),
                alpha=0.8,
                linewidth=1.2,
            )
    ax.set_xticks(range(len(columns)), ticks, fontsize=7)
    ax.set_ylim(-0.05, 1.05)
    fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=metric)
    return fig


def _span(lo: float, hi: float, labels: list[str] | None, log: bool) -> str:
    if labels is not None:
        return ", ".join(labels) if len(", ".join(labels)) < 28 else f"{len(labels)} values"
    fmt = (lambda x: f"{10**x:.2g}") if log else (lambda x: f"{x:.3g}")
    return f"{fmt(lo)}..{fmt(hi)}"


def importance(scores: Mapping[str, float], *, note: str | None = None) -> Figure:
    """Hyperparameter importance as horizontal bars (largest on top); ``note``: which trials judged it."""
    title = "hyperparameter importance" + (f" ({note})" if note else "")
    fig, ax = _figure(title, "importance (PED-ANOVA)", "")
    if not scores:
        ax.text(
            0.5, 0.5, "not enough finished trials to judge", ha="center", va="center", transform=ax.transAxes
        )
        return fig
    names = sorted(scores, key=scores.get)  # type: ignore[arg-type]
    ax.barh(names, [scores[n] for n in names], color="#1565c0")
    return fig


def rung_stops(trials: Sequence[TrialCurve], max_epochs: int) -> Figure:
    """How many trials stopped after each number of epochs, by outcome.

    Each outcome's stacked bars are one collection of rectangles, drawn as `Axes.bar` draws
    them (0.8 wide, no edge, the axis starting at the bars' bottoms), not one artist per bar:
    an outcome per epoch is hundreds of artists, most of the figure's time in a large report."""
    import numpy as np
    from matplotlib.collections import PolyCollection

    fig, ax = _figure("where trials stopped", "epochs trained", "trials")
    counts: dict[str, Counter[int]] = {}
    for t in trials:
        if t.status not in counts:
            counts[t.status] = Counter()
        counts[t.status][len(t.epochs)] += 1
    xs = np.arange(1, max_epochs + 1, dtype=np.float64)
    bottom = np.zeros(len(xs))
    for status, counter in counts.items():
        top = bottom + np.array([counter.get(x, 0) for x in range(1, max_epochs + 1)], dtype=np.float64)
        left, right = xs - 0.4, xs + 0.4
        corners = [np.c_[left, bottom], np.c_[left, top], np.c_[right, top], np.c_[right, bottom]]
        bars = PolyCollection(
            list(np.stack(corners, axis=1)),
            facecolors=STYLES.get(status, STYLES["completed"])["color"],
            edgecolors="none",
            label=status,
        )
        bars.sticky_edges.y.extend(bottom.tolist())  # as each bar of Axes.bar: no margin below it
        ax.add_collection(bars)
        bottom = top
    if counts:
        ax.autoscale_view()
        ax.legend(fontsize=8, loc="upper right")  # most trials stop early, at the left
    return fig


def slot_usage(trials: Sequence[TrialCurve]) -> Figure:
    """Trials running at each moment of the sweep: how busy the trial slots were."""
    import numpy as np

    fig, ax = _figure("busy trial slots", "seconds since start", "trials running")
    # Each epoch is a busy interval; a paused trial (Hyperband) frees its slot in between.
    ends, lengths = _flat(trials, "ends"), _flat(trials, "durations")
    when = np.r_[np.maximum(0.0, ends - lengths), ends]
    delta = np.r_[np.ones(len(ends), dtype=np.int64), -np.ones(len(ends), dtype=np.int64)]
    order = np.lexsort((delta, when))  # by time; at one instant, ends before starts
    times = np.r_[0.0, when[order]]
    running = np.r_[0, np.cumsum(delta[order])]
    if len(times) > 2 * SLOT_INTERVALS:
        times, running = _per_interval(times, running, SLOT_INTERVALS)
        ax.set_title(f"busy trial slots (mean per {SLOT_INTERVALS:,} intervals)", fontsize=11)
    ax.step(times, running, where="post", color="#1565c0")
    ax.fill_between(times, running, step="post", alpha=0.25, color="#1565c0")
    return fig


def pareto_front(
    trials: Sequence[Mapping[str, float]],
    front: Sequence[Mapping[str, float]],
    y: tuple[str, str],
    x: tuple[str, str],
    *,
    infeasible: Sequence[Mapping[str, float]] = (),
    note: str | None = None,
) -> Figure:
    """Every trial by two objectives (``(name, mode)``; y the first), the Pareto front's members
    marked and joined by a step line, infeasible trials crossed out."""
    title = "Pareto front" + (f" ({note})" if note else "")
    fig, ax = _figure(title, f"{x[0]} ({x[1]})", f"{y[0]} ({y[1]})")
    ax.xaxis.set_major_locator(MaxNLocator())
    ax.scatter([t[x[0]] for t in trials], [t[y[0]] for t in trials], s=18, color="#9e9e9e", label="trials")
    if infeasible:
        ax.scatter(
            [t[x[0]] for t in infeasible],
            [t[y[0]] for t in infeasible],
            s=22,
            marker="x",
            color=STYLES["infeasible"]["color"],
            label="infeasible",
        )
    ordered = sorted(front, key=lambda t: t[x[0]])
    xs, ys = [t[x[0]] for t in ordered], [t[y[0]] for t in ordered]
    ax.step(xs, ys, where="post", color="#2e7d32", linewidth=1.2)
    ax.scatter(xs, ys, s=34, color="#2e7d32", zorder=3, label=f"Pareto front ({len(ordered)})")
    positive = [v for v in xs + [t[x[0]] for t in trials] if v > 0]
    if positive and min(positive) > 0 and max(positive) / min(positive) > 100:
        ax.set_xscale("log")  # parameter counts span orders of magnitude
    ax.legend(fontsize=8)
    return fig


def _per_interval(times: Sequence[float], levels: Sequence[float], n: int) -> tuple[Any, Any]:
    """A step curve's time-weighted mean over ``n`` equal intervals (start times, means).

    The busy time up to each change is a running sum; between changes it grows linearly,
    so interpolating it at the interval edges is exact."""
    import numpy as np

    t, level = np.asarray(times, dtype=np.float64), np.asarray(levels, dtype=np.float64)
    start, end = t[0], t[-1]
    width = (end - start) / n or 1.0
    area = np.r_[0.0, np.cumsum(level[:-1] * np.diff(t))]
    edges = start + width * np.arange(n + 1)
    return edges[:-1].tolist(), (np.diff(np.interp(edges, t, area)) / width).tolist()


def save_png(fig: Figure, path: str | Path, *, dpi: int = 120) -> Path:
    """Write ``fig`` as PNG, creating the folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def lr_find_figure(
    rates: Sequence[float],
    losses: Sequence[float],
    *,
    smoothed: Sequence[float] | None = None,
    suggested: float | None = None,
    title: str = "learning-rate range test",
) -> Figure:
    """Loss against learning rate on a log axis, the suggested rate marked."""
    fig, ax = _figure(title, "learning rate", "loss", size=(7.0, 4.5))
    ax.plot(rates, losses, color="0.75", linewidth=1, label="batch loss")
    if smoothed:
        ax.plot(rates[: len(smoothed)], smoothed, color="C0", linewidth=2, label="smoothed")
    finite = [v for v in (smoothed or losses) if v == v and abs(v) != float("inf")]
    if finite:
        # Keep the interesting part in view: the divergence at the end dwarfs everything.
        low, first = min(finite), finite[0]
        ax.set_ylim(low - 0.05 * abs(low), max(first, low) * 1.5 + 1e-12)
    if suggested is not None:
        ax.axvline(suggested, color="C3", linestyle="--", label=f"suggested {suggested:.2g}")
    ax.set_xscale("log")  # also replaces _figure's integer tick locator
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return fig


def plot_lr_find(rates: Sequence[float], losses: Sequence[float], path: str | Path, **kwargs: Any) -> Path:
    """`lr_find_figure` written as a PNG; returns the path."""
    return save_png(lr_find_figure(rates, losses, **kwargs), path, dpi=100)


def lineage(exploits: Sequence[Mapping[str, Any]]) -> Figure:
    """PBT's exploits: one row per trial, an arrow from the donor's copied epoch to the epoch the
    receiving trial took it over (each trial's line starts at 0 and ends at its last exploit)."""
    trials = sorted({e["trial_id"] for e in exploits} | {e["donor_id"] for e in exploits})
    row = {t: i for i, t in enumerate(trials)}
    fig, ax = _figure("lineage: who copied whom", "epoch", "trial", size=(7.0, 1.2 + 0.32 * len(trials)))
    last = max(max(e["epoch"], e["donor_epoch"]) for e in exploits)
    ax.hlines(range(len(trials)), 0, last, color="#bbbbbb", linewidth=0.8)
    for e in exploits:
        ax.annotate(
            "",
            xy=(e["epoch"], row[e["trial_id"]]),
            xytext=(e["donor_epoch"], row[e["donor_id"]]),
            # Curved: arrows between the same epochs of several trials would lie on each other.
            arrowprops={
                "arrowstyle": "->",
                "color": "#1565c0",
                "alpha": 0.8,
                "connectionstyle": "arc3,rad=0.25",
            },
        )
    ax.set_yticks(range(len(trials)), trials, fontsize=8)
    ax.set_ylim(-0.6, len(trials) - 0.4)
    ax.set_xlim(-0.2, last + 0.5)
    return fig
