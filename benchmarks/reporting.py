"""What every scenario writes: a Markdown table on stdout, a JSON file and a best-so-far plot."""

from __future__ import annotations

import json
import math
import os
import platform
import resource
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

# Packages whose versions decide a benchmark's figures.
VERSIONED = (
    "tuning-service",
    "ray",
    "tensorflow",
    "keras",
    "optuna",
    "hyperopt",
    "keras-tuner",
    "scikeras",
    "scikit-learn",
    "numpy",
    "ml_dtypes",  # its import is part of every TensorFlow import (0.7.0: 1.1 CPU s)
)


@dataclass
class ToolRun:
    """One tool's run of a problem, in the units every tool shares.

    ``events`` are ``(seconds since the tool started, validation accuracy)`` per
    trained epoch (per finished candidate for GridSearchCV); the best-so-far curve
    and the time to the threshold come from them.
    """

    tool: str
    wall_s: float
    epochs: int
    trials: int
    best_val: float | None
    best_config: dict[str, Any] | None
    refit_epochs: int | None  # epochs the refit of the best config trains
    events: list[tuple[float, float]] = field(default_factory=list)
    test_acc: float | None = None
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def time_to(self, threshold: float) -> float | None:
        """Seconds until the tool first saw a validation accuracy >= ``threshold``."""
        hits = [t for t, v in self.events if v is not None and v >= threshold]
        return min(hits) if hits else None

    def best_so_far(self) -> list[tuple[float, float]]:
        curve: list[tuple[float, float]] = []
        best = -math.inf
        for t, value in sorted(self.events):
            if value is not None and value > best:
                best = value
                curve.append((t, value))
        return curve


def machine() -> dict[str, Any]:
    """Where the figures were taken: CPU count and model, memory, OS, Python."""
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
                break
    except OSError:
        pass
    try:
        info["gpus"] = len([d for d in Path("/proc/driver/nvidia/gpus").iterdir()])
    except OSError:
        info["gpus"] = 0
    return info


def versions() -> dict[str, str]:
    found = {}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def peak_rss_mib() -> float:
    """This process's peak resident memory (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if platform.system() == "Darwin" else peak / 2**10


def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: '-' for nothing, fixed decimals for floats."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def header(scenario: str, *, smoke: bool, command: str) -> dict[str, Any]:
    """Provenance every JSON file starts with."""
    return {
        "scenario": scenario,
        "smoke": smoke,
        "command": command,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
    }


def publish(stem: Path, scenario: str, args: Any, text: str, report: dict[str, Any]) -> dict[str, Any]:
    """Print a scenario's Markdown, write it to ``stem``.md and the report with its provenance to ``stem``.json."""
    print(text, flush=True)
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".md").write_text(text + "\n", encoding="utf-8")
    command = " ".join([f"python -m benchmarks.{scenario}", *args.argv])
    data = header(scenario, smoke=args.smoke, command=command) | report
    write_json(stem.with_suffix(".json"), data)
    return data


def write_json(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n", encoding="utf-8")
    return path


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def plot_best_so_far(
    path: Path, runs: Sequence[ToolRun], *, title: str, threshold: float | None = None
) -> Path | None:
    """Best validation accuracy so far against wall-clock seconds, one step line per tool."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on CI or a server
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.8))
    drawn = False
    for run in runs:
        curve = run.best_so_far()
        if not curve:
            continue
        xs = [t for t, _ in curve] + [run.wall_s]
        ys = [v for _, v in curve] + [curve[-1][1]]
        ax.step(xs, ys, where="post", label=f"{run.tool} ({run.wall_s:.0f} s)")
        drawn = True
    if threshold is not None:
        ax.axhline(threshold, color="grey", linestyle=":", linewidth=1, label=f"val accuracy {threshold}")
    ax.set_xlabel("wall-clock seconds since the tool started")
    ax.set_ylabel("best validation accuracy so far")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if drawn:
        ax.legend(loc="lower right", fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
