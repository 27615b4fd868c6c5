"""Where our sweep's workers spend their time, from Ray's own timeline of actor calls.

    python -m benchmarks.telco --tools ours-optuna --timeline

With ``--timeline`` a comparison starts Ray itself (so its start is outside our wall
time), runs each sweep of ours on it, and writes Ray's timeline (Chrome trace format:
chrome://tracing or Perfetto) and a summary per worker: the trainable's calls (``train``
is one epoch; a trial's first ``train`` builds its model and traces its graphs), and the
idle time between them (the driver deciding, Ray dispatching).
"""

from __future__ import annotations

import itertools
import json
import statistics
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.cli import local_ray
from benchmarks.reporting import fmt, markdown_table

# Tune's calls on a trainable actor that start a new trial on it.
_TRIAL_STARTS = ("__init__", "reset")


def worker_time(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Per worker: seconds in each kind of trainable call and idle between calls."""
    calls: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and str(e.get("cat", "")).startswith("task::"):
            calls[str(e["tid"])].append((e["ts"] / 1e6, e["dur"] / 1e6, str(e["name"])))
    workers = []
    for spans in calls.values():
        spans.sort()
        kinds: dict[str, list[float]] = defaultdict(list)
        new_trial = True
        for _, seconds, name in spans:
            if name in _TRIAL_STARTS:
                new_trial = True
            if name == "train":
                kinds["first train" if new_trial else "later train"].append(seconds)
                new_trial = False
            else:
                kinds[name].append(seconds)
        idle = sum(max(0.0, b[0] - (a[0] + a[1])) for a, b in itertools.pairwise(spans))
        span = spans[-1][0] + spans[-1][1] - spans[0][0]
        workers.append({"span_s": span, "idle_s": idle, "calls": dict(kinds)})
    return {"workers": workers}


def summary_rows(report: dict[str, Any]) -> list[list[Any]]:
    """One row per kind of call over all workers: count, total and median seconds, share of the span."""
    span = sum(w["span_s"] for w in report["workers"]) or float("nan")
    merged: dict[str, list[float]] = defaultdict(list)
    for worker in report["workers"]:
        for kind, seconds in worker["calls"].items():
            merged[kind].extend(seconds)
    rows = [
        [kind, len(s), fmt(sum(s), 1), fmt(statistics.median(s), 3), fmt(sum(s) / span, 3)]
        for kind, s in sorted(merged.items(), key=lambda kv: -sum(kv[1]))
    ]
    idle = sum(w["idle_s"] for w in report["workers"])
    rows.append(["idle between calls", "-", fmt(idle, 1), "-", fmt(idle / span, 3)])
    return rows


HEADERS = ["call", "count", "total s", "median s", "share of worker time"]


@contextmanager
def worker_timeline(stem: Path) -> Iterator[None]:
    """Run the body on a Ray started here (or the one this process runs already); then write
    ``stem``.json (Ray's timeline) and ``stem``.md (the summary), and shut a Ray started here down."""
    import ray

    with local_ray():
        yield
        events = ray.timeline()
    stem.with_suffix(".json").write_text(json.dumps(events), encoding="utf-8")
    report = worker_time(events)
    text = "\n".join(
        [
            f"### worker time: {stem.name} ({len(report['workers'])} workers)",
            "",
            markdown_table(HEADERS, summary_rows(report)),
        ]
    )
    stem.with_suffix(".md").write_text(text + "\n", encoding="utf-8")
    print(text, flush=True)
