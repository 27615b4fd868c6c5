"""Start-up: from the command a user types to the first trained epoch, and where that time goes.

    python -m benchmarks.startup [--smoke] [--out DIR] [--runs 3] [--job digits]

Runs the default sweep's command (`python -m tuning_service run JOB`, two trials of one
epoch, a fresh results folder each run) as a new process, the way a user starts it,
and times from launching the process to the end of the sweep's first epoch (the
earliest ``ended_at`` among the trials' recorded epochs) and to its exit. The sweep's
log file (timestamped lines, ``--log-file``) splits the first part into: Python and
the CLI's imports until the first log line, the driver's checks and data until Ray is
asked to start, Ray's start, and Tune's start up to the first epoch (the trial actors'
workers start and import TensorFlow, build and train).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks import cli
from benchmarks.reporting import fmt, markdown_table, publish

TARGET_S = 4.0
# Log lines that start a phase: (phase name, text the line contains).
MARKS = (
    ("driver checks and data", "tuning_service.sweeps.runner: sweep "),
    ("Ray start", "tuning_service.raytune.raysession: starting"),
    ("Tune start to first epoch", "tuning_service.raytune.raysession: ready"),
)


def _log_times(log: Path) -> dict[str, float]:
    """The wall-clock time of the first log line and of each phase mark (epoch seconds)."""
    found: dict[str, float] = {}
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        stamp, _, rest = line.partition(" | ")
        try:
            when = datetime.fromisoformat(stamp).timestamp()
        except ValueError:
            continue
        found.setdefault("first log line", when)
        for name, text in MARKS:
            if text in rest:
                found.setdefault(name, when)
    return found


def _first_epoch_end(sweep_dir: Path) -> float | None:
    trials = json.loads((sweep_dir / "trials.json").read_text(encoding="utf-8"))
    ends = [h["ended_at"] for t in trials for h in t.get("history", []) if h.get("ended_at")]
    return min(ends) if ends else None


def one_run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Launch the command once; the seconds from launch to each phase, the first epoch and exit."""
    storage, log = workdir / "results", workdir / "sweep.log"
    command = [
        sys.executable, "-m", "tuning_service", "-v", "--log-file", str(log), "run", args.job,
        "--num-samples", "2", "--max-epochs", "1", "--storage", str(storage), "--format", "json",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    launched = time.time()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    exited = time.time()
    if done.returncode != 0:
        raise RuntimeError(f"the sweep failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    sweep_dir = storage / args.job / json.loads(done.stdout)["sweep_id"]
    first_epoch = _first_epoch_end(sweep_dir)
    marks = _log_times(log)
    run: dict[str, Any] = {
        "to_first_epoch_s": None if first_epoch is None else first_epoch - launched,
        "to_exit_s": exited - launched,
        "phases_s": {},
    }
    previous_name, previous = "Python and the CLI's imports", launched
    for name in ("first log line", *[n for n, _ in MARKS]):
        if name in marks:
            if name != "first log line":
                run["phases_s"][previous_name] = marks[name] - previous
                previous_name = name
            else:
                run["phases_s"][previous_name] = marks[name] - previous
                previous_name = "CLI start until the sweep is logged"
            previous = marks[name]
    if first_epoch is not None:
        run["phases_s"][previous_name] = first_epoch - previous
    return run


def body(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    runs = []
    for i in range(1 if args.smoke else args.runs):
        with tempfile.TemporaryDirectory(prefix="tuning-service-startup-") as tmp:
            runs.append(one_run(args, Path(tmp)))
        print(f"run {i + 1}: {fmt(runs[-1]['to_first_epoch_s'], 2)} s to the first epoch", file=sys.stderr)
    first = statistics.median(r["to_first_epoch_s"] for r in runs)
    phases = {
        name: statistics.median(r["phases_s"].get(name, 0.0) for r in runs) for name in runs[0]["phases_s"]
    }
    rows = [[name, fmt(seconds, 2)] for name, seconds in phases.items()]
    rows.append(["**command to first epoch**", f"**{fmt(first, 2)}**"])
    rows.append(
        ["command to exit (2 trials x 1 epoch)", fmt(statistics.median(r["to_exit_s"] for r in runs), 2)]
    )
    met = "met" if first <= TARGET_S else "NOT met"
    text = "\n".join(
        [
            f"## start-up{' (smoke)' if args.smoke else ''}: `tuning-service run {args.job}`, "
            f"median of {len(runs)} runs",
            "",
            markdown_table(["phase", "s"], rows),
            "",
            f"- target: command to first epoch <= {TARGET_S:g} s: {met}",
        ]
    )
    publish(out / "startup", "startup", args, text, {"job": args.job, "runs": runs, "phases_s": phases})
    return {"to_first_epoch_s": first, "phases_s": phases}


def build_parser() -> argparse.ArgumentParser:
    ap = cli.parser("startup", (__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="launches to take the median of (default 3)")
    ap.add_argument("--job", default="digits", help="the job the command sweeps (default digits)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(build_parser(), body, argv, "startup")


if __name__ == "__main__":
    sys.exit(main())
