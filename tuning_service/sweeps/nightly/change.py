"""What changed: a run's best metric against the previous run and the all-time best, as data and files."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from tuning_service.core.results import write_atomic
from tuning_service.core.timestamps import iso_utc
from tuning_service.sweeps.nightly.history import RunRow

IMPROVED, REGRESSED, UNCHANGED, FIRST = "improved", "regressed", "unchanged", "first run"
CHANGE_JSON, CHANGE_MD = "latest_change.json", "latest_change.md"
# Two metrics this close are the same result (a re-evaluated config, float noise in storage).
REL_TOL, ABS_TOL = 1e-9, 1e-12


def verdict(now: float, before: float | None, mode: str) -> str:
    """improved / regressed / unchanged, in the direction the metric is optimized."""
    if before is None:
        return FIRST
    if math.isclose(now, before, rel_tol=REL_TOL, abs_tol=ABS_TOL):
        return UNCHANGED
    better = now > before if mode == "max" else now < before
    return IMPROVED if better else REGRESSED


def summarize(
    *,
    name: str,
    job: str,
    metric: str,
    mode: str,
    value: float,
    config: dict[str, Any],
    run_id: int,
    sweep_id: str | None,
    scheduled_for: datetime,
    earlier: Sequence[RunRow],
) -> dict[str, Any]:
    """The change record of one finished run; ``earlier`` are the sweep's earlier runs, newest first."""
    scored = [r for r in earlier if r.best_value is not None and r.metric == metric and r.mode == mode]
    previous = scored[0] if scored else None
    sign = -1.0 if mode == "max" else 1.0
    best = min(scored, key=lambda r: (sign * r.best_value, r.run_id)) if scored else None  # type: ignore[operator]
    return {
        "sweep": name,
        "job": job,
        "metric": metric,
        "mode": mode,
        "run_id": run_id,
        "sweep_id": sweep_id,
        "scheduled_for": iso_utc(scheduled_for),
        "finished_at": iso_utc(),
        "value": value,
        "config": config,
        "change": verdict(value, previous.best_value if previous else None, mode),
        "previous": _against(value, previous, mode),
        "all_time_best": _against(value, best, mode),
    }


def _against(value: float, run: RunRow | None, mode: str) -> dict[str, Any] | None:
    if run is None or run.best_value is None:
        return None
    return {
        "value": run.best_value,
        "delta": value - run.best_value,
        "change": verdict(value, run.best_value, mode),
        "run_id": run.run_id,
        "sweep_id": run.sweep_id,
        "scheduled_for": iso_utc(run.scheduled_for),
    }


def headline(change: dict[str, Any]) -> str:
    """One line: the metric now, and how it compares (what the CLI prints)."""
    text = f"{change['sweep']}: {change['metric']} {change['value']:.4f}"
    parts = []
    for key, label in (("previous", "previous run"), ("all_time_best", "all-time best")):
        other = change.get(key)
        if other is not None:
            parts.append(f"{other['change']} vs {label} {other['value']:.4f} ({other['delta']:+.4f})")
    return f"{text}: " + ("; ".join(parts) if parts else FIRST)


def markdown(change: dict[str, Any]) -> str:
    """A short Markdown report a CI job or a chat hook can post as is."""
    rows = [("this run", change["value"], None, change["sweep_id"], change["scheduled_for"])]
    for key, label in (("previous", "previous run"), ("all_time_best", "all-time best before")):
        other = change.get(key)
        if other is not None:
            rows.append((label, other["value"], other, other["sweep_id"], other["scheduled_for"]))
    lines = [
        f"# {change['sweep']}: {change['change']}",
        "",
        f"Job `{change['job']}`, {change['metric']} ({change['mode']}), run {change['run_id']} "
        f"scheduled for {change['scheduled_for']}.",
        "",
        f"| | {change['metric']} | change | sweep | scheduled for |",
        "|---|---|---|---|---|",
    ]
    for label, value, other, sweep_id, when in rows:
        delta = f"{change['value'] - value:+.4f}, {other['change']}" if other else ""
        lines.append(f"| {label} | {value:.4f} | {delta} | {sweep_id or ''} | {when} |")
    lines += [
        "",
        "Best config:",
        "",
        "```json",
        json.dumps(change["config"], indent=2, sort_keys=True),
        "```",
        "",
    ]
    return "\n".join(lines)


def write_files(change: dict[str, Any], directory: Path) -> list[Path]:
    """latest_change.json and latest_change.md in ``directory``, each replaced atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / CHANGE_JSON, directory / CHANGE_MD
    write_atomic(json_path, json.dumps(change, indent=2, default=str) + "\n")
    write_atomic(md_path, markdown(change))
    return [json_path, md_path]
