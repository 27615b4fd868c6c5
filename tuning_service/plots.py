"""Plotting functions over plain data (lists and numbers), written as PNG with Matplotlib's Agg backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def _pyplot():
    """Matplotlib's pyplot on the file-only Agg backend: no display needed, safe in workers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_lr_find(
    rates: Sequence[float],
    losses: Sequence[float],
    path: str | Path,
    *,
    smoothed: Sequence[float] | None = None,
    suggested: float | None = None,
    title: str = "learning-rate range test",
) -> Path:
    """Loss against learning rate on a log axis, the suggested rate marked; returns the PNG path."""
    plt = _pyplot()
    path = Path(path)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    try:
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
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path
