"""Start-up: from the command a user types to the first trained epoch, and where that time goes.

    python -m benchmarks.startup [--smoke] [--out DIR] [--runs 3] [--job digits]

Runs the default sweep's command (`python -m tuning_service run JOB`, two trials of one
epoch, a fresh results folder each run) as a new process, the way a user starts it, in
two ways alternated: with a new worker fork server each run (``TUNING_SERVICE_WORKERS_KEEP_S=0``,
as a first sweep starts), and holding the server kept from an earlier run (as the sweeps after
it within the keep time start; `raytune.workerkeep`; the benchmark stops that server at the
end). It times from launching the process to the end of the sweep's first epoch (the
earliest ``ended_at`` among the trials' recorded epochs) and to its exit. The sweep's
log file (timestamped lines, ``--log-file``) splits the first part into: Python and
the CLI's imports until the job's data is loaded, the data (and the imports its loader
makes) and the results store, the sweep's folder and its first record until Ray is asked
to start, Ray's start (with the warm workers, until they have registered), and Tune's
start up to the first epoch (the trial workers import TensorFlow, warm ones from Ray's
start on, then build and train).

On Linux it also samples, every 0.2 s, the CPU seconds of every process of the command's
session (the command, the Ray services it starts, the trial workers; and a kept server's
session, from the run's start: its Ray stage and the workers forked), and reports them by
kind up to the first epoch and to the exit: on a machine whose cores are all busy while a
sweep starts, their sum over the core count is the least the start can take. A process's
CPU after its last sample is missed, so these are lower bounds.

It also times one trial worker's work alone, on a machine otherwise as idle as it is: in a new
process, what the worker fork server imports (`raytune.workerimports.import_all_but_ray`:
TensorFlow, Keras, the training code, the libraries Ray loads); then, in a fork of that
process, what a worker forked from the server still imports (Ray, Tune and the trainable;
holding a kept server, its Ray stage has imported them: `raytune.workerstage`), the
job's first model and its first epoch (the trainable's first step, its data already loaded as
the sweep hands it over). The server's part
runs while Ray starts; the rest only once Ray's node has started the worker and the server has
done its imports, so the command's first epoch cannot come sooner, however many cores.

It also imports each library of `core.leanimport.LEAN` in a new process, plainly and
without the packages listed for it, and Ray Tune plainly and with Ray Data deferred
(`raytune.lazydata`, as a sweep's driver and the Ray stage import it), and with pandas deferred
too (as a trial's worker imports it), and reports the CPU
seconds of each (``--smoke``: Optuna's importance module only): what each saves a process
that loads it.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks import cli
from benchmarks.reporting import fmt, markdown_table, publish
from tuning_service.core.leanimport import LEAN
from tuning_service.core.processes import private_mib, resident_mib, start_ticks
from tuning_service.raytune.workerkeep import KEEP_ENV
from tuning_service.testing.localcluster import command_line, kill_session, session_cpu

TARGET_S = 4.0
NEW = "a new worker fork server each run"
KEPT = "the worker fork server kept from the run before"
KEEP_S = 120.0  # how long the kept runs keep their server (stopped at the end)
# Log lines that start a phase: (phase name, text the line contains).
MARKS = (
    ("the job's data and the store", "tuning_service.sweeps.runner: loading the data of job "),
    ("the sweep's folder and record", "tuning_service.sweeps.runner: sweep "),
    ("Ray start", "tuning_service.raytune.raysession: starting"),
    ("Tune start to first epoch", "tuning_service.raytune.raysession: ready"),
)
FIRST_PHASE = "Python and the CLI's imports"
KEPT_LINE = re.compile(rf"forked from process (\d+), .*\({KEEP_ENV}\)")


def _log_times(log: Path) -> dict[str, float]:
    """The wall-clock time of each phase mark's first line (epoch seconds)."""
    found: dict[str, float] = {}
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        stamp, _, rest = line.partition(" | ")
        try:
            when = datetime.fromisoformat(stamp).timestamp()
        except ValueError:
            continue
        for name, text in MARKS:
            if text in rest:
                found.setdefault(name, when)
    return found


# Kinds of the command's processes, by what their command line holds; the command itself is "driver".
WORKER_MARKS = ("default_worker.py", "ray::KerasTrainable", "ray::ResourceTrainable", "ray::IDLE")
# The process the embedded Ray's workers are forked from (`raytune.workerfork`); a worker it
# forks carries its command line until Ray titles it, a few milliseconds later.
FORK_SERVER_MARK = "tuning_service.raytune.workerfork"
KINDS = ("driver", "trial workers", "worker fork server", "Ray's services")
SAMPLE_S = 0.2  # a sample reads every process's /proc entry: about 5 ms of this process's CPU


# (when, pid -> (kind, CPU seconds so far)) per sample.
Samples = list[tuple[float, dict[int, tuple[str, float]]]]


def _kind(pid: int, root: int, cmdline: str) -> str:
    if pid == root:
        return "driver"
    # The program and its script, or the title Ray gives a worker: the raylet's own arguments
    # name default_worker.py too (the command it starts workers with).
    program = " ".join(cmdline.split()[:2])
    if any(mark in program for mark in WORKER_MARKS):
        return "trial workers"
    return "worker fork server" if FORK_SERVER_MARK in cmdline.split()[:3] else "Ray's services"


@functools.cache
def _booted() -> float | None:
    """When this machine booted (epoch seconds; None where there is no /proc/uptime): now less
    the time since the boot, on the clock a process's start is counted on (/proc/stat's
    ``btime`` drops the fraction of a second)."""
    try:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return time.time() - uptime


def process_started(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds, to Linux's clock tick); None once it has ended."""
    ticks, booted = start_ticks(pid), _booted()
    if ticks is None or booted is None:
        return None
    return booted + ticks / os.sysconf("SC_CLK_TCK")


class CpuSampler:
    """CPU seconds of every process in a session, sampled on a thread until `stop`, and when
    each trial worker started; with ``kept`` (a kept worker fork server's session, which its
    forked workers share), that session's too, counted from the sampler's start."""

    def __init__(self, session: int, kept: int | None = None) -> None:
        self.session, self.kept = session, kept
        self._before = session_cpu(kept) if kept is not None else {}
        self.samples: Samples = []  # (time, pid -> (kind, CPU s))
        self.worker_starts: dict[int, float] = {}
        # When the command's own fork server started (a kept one held runs in its own session).
        self.server_starts: dict[int, float] = {}
        self._starts = {"trial workers": self.worker_starts, "worker fork server": self.server_starts}
        # The most memory of its own the kept server's Ray stage (`raytune.workerstage`) held.
        self.stage_mib: float | None = None
        self._kinds: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> dict[int, tuple[str, float]]:
        seen: dict[int, tuple[str, float]] = {}
        found = session_cpu(self.session)
        kept = session_cpu(self.kept) if self.kept is not None else {}
        found.update((pid, cpu - self._before.get(pid, 0.0)) for pid, cpu in kept.items())
        for pid, cpu in found.items():
            # A worker's title changes as it takes an actor: once a worker, always one.
            kind = self._kinds.get(pid)
            if kind != "trial workers":
                cmdline = command_line(pid)
                if cmdline is None:
                    continue  # ended between the listing and the read
                if not cmdline and kind is not None:  # ended, not yet reaped: its title is gone
                    seen[pid] = (kind, cpu)
                    continue
                kind = self._kinds[pid] = _kind(pid, self.session, cmdline)
                # A kept server's processes (the server, its Ray stage) are not the command's.
                starts = None if kind == "worker fork server" and pid in kept else self._starts.get(kind)
                if starts is not None and pid not in starts:
                    started = process_started(pid)
                    if started is not None:
                        starts[pid] = started
            if kind == "worker fork server" and pid in kept and pid != self.kept:
                own = private_mib(pid)  # the kept server's other process: its Ray stage
                if own is not None:
                    self.stage_mib = max(own, self.stage_mib or 0.0)
            seen[pid] = (kind, cpu)
        return seen

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), self._sample()))
            self._stop.wait(SAMPLE_S)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def cpu_by_kind(samples: Samples, until: float | None = None) -> dict[str, float]:
    """CPU seconds by kind of process, each process at its last sample up to ``until`` (None: all)."""
    latest: dict[int, tuple[str, float]] = {}
    for when, seen in samples:
        if until is not None and when > until:
            break
        latest.update(seen)
    totals = dict.fromkeys(KINDS, 0.0)
    for kind, cpu in latest.values():
        totals[kind] += cpu
    return totals


def _first_start(starts: dict[int, float] | None, launched: float) -> float | None:
    """Seconds from ``launched`` to the earliest of ``starts`` (None: none seen)."""
    return min(starts.values()) - launched if starts else None


def _kept_server(log: Path) -> int | None:
    """The pid of the kept worker fork server the command's log names (None: none was kept)."""
    found = KEPT_LINE.search(log.read_text(encoding="utf-8", errors="replace"))
    return int(found.group(1)) if found else None


def _first_epoch_end(sweep_dir: Path) -> float | None:
    trials = json.loads((sweep_dir / "trials.json").read_text(encoding="utf-8"))
    ends = [h["ended_at"] for t in trials for h in t.get("history", []) if h.get("ended_at")]
    return min(ends) if ends else None


def one_run(
    args: argparse.Namespace, workdir: Path, keep_s: float, kept: int | None = None
) -> dict[str, Any]:
    """Launch the command once, its worker fork server kept ``keep_s`` after it (0: none kept),
    ``kept`` the pid of a kept server it will hold; the seconds from launch to each phase, the
    first epoch and exit, and the pid of the server it kept."""
    storage, log = workdir / "results", workdir / "sweep.log"
    command = [
        sys.executable, "-m", "tuning_service", "-v", "--log-file", str(log), "run", args.job,
        "--num-samples", "2", "--max-epochs", "1", "--storage", str(storage), "--format", "json",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1", KEEP_ENV: f"{keep_s:g}"}
    launched = time.time()
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    ) as process:
        sampler = CpuSampler(process.pid, kept) if Path("/proc/self/stat").exists() else None
        try:
            stdout, stderr = process.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            kill_session(process.pid)  # the command's session: its own Ray with it, workers included
            raise
        finally:
            if sampler is not None:
                sampler.stop()
    exited = time.time()
    if process.returncode != 0:
        raise RuntimeError(f"the sweep failed (exit {process.returncode}): {stderr.strip()[-500:]}")
    sweep_dir = storage / args.job / json.loads(stdout)["sweep_id"]
    first_epoch = _first_epoch_end(sweep_dir)
    marks = _log_times(log)
    run: dict[str, Any] = {
        "kept_server": _kept_server(log),
        "to_first_epoch_s": None if first_epoch is None else first_epoch - launched,
        "to_exit_s": exited - launched,
        "phases_s": {},
        "cpu_to_first_epoch_s": None if sampler is None else cpu_by_kind(sampler.samples, first_epoch),
        "cpu_to_exit_s": None if sampler is None else cpu_by_kind(sampler.samples),
        "stage_private_mib": None if sampler is None else sampler.stage_mib,
        # When the first trial worker's process started (Ray's node starts them), from the launch.
        "to_first_worker_s": _first_start(sampler and sampler.worker_starts, launched),
        # When the command started its fork server, from the launch (None: it held a kept one).
        "to_fork_server_s": _first_start(sampler and sampler.server_starts, launched),
    }
    previous_name, previous = FIRST_PHASE, launched
    for name, _ in MARKS:
        if name in marks:
            run["phases_s"][previous_name] = marks[name] - previous
            previous_name, previous = name, marks[name]
    if first_epoch is not None:
        run["phases_s"][previous_name] = first_epoch - previous
    return run


# What a lean import leaves out, by module: hidden (`LEAN`), or deferred until read (Ray Tune's
# Ray Data in the sweep's driver and the Ray stage; Ray Data and pandas in a trial's worker).
TUNE_IN_A_WORKER = "ray.tune, in a worker"
LEFT_OUT = {**LEAN, "ray.tune": ("ray.data",), TUNE_IN_A_WORKER: ("ray.data", "pandas")}
# Run in a new process: argv[1] the module, argv[2] "lean" or "plain"; prints CPU s and what loaded.
_IMPORT = (
    f"TUNE_IN_A_WORKER = {TUNE_IN_A_WORKER!r}\n"
    + """
import importlib, json, sys, time
from tuning_service.core.leanimport import LEAN, lean_import
from tuning_service.raytune.lazydata import defer_pandas, defer_ray_data, loaded
module, lean = sys.argv[1], sys.argv[2] == "lean"
started = time.process_time()
if module.startswith("ray.tune"):
    if lean:
        defer_ray_data()
        if module == TUNE_IN_A_WORKER:
            defer_pandas()
    importlib.import_module("ray.tune")
    loaded = [name for name in ("ray.data", "pandas") if loaded(name)]
else:
    (lean_import if lean else importlib.import_module)(module)
    loaded = [name for name in LEAN[module] if name in sys.modules]
cpu = time.process_time() - started
print(json.dumps({"cpu_s": cpu, "loaded": loaded}))
"""
)


FORK_SERVER = "the worker fork server's imports: TensorFlow, Keras, the training code, Ray's libraries"
# What the kept server's Ray stage imports for the workers it forks (`raytune.workerstage`).
FORKED_IMPORTS = "a forked worker's imports: Ray, Tune, the trainable"
# Run in a new process: argv[1] the job. Prints (phase, wall s, CPU s) per phase as JSON.
_WORKER_ALONE = (
    f"FORK_SERVER = {FORK_SERVER!r}\nFORKED_IMPORTS = {FORKED_IMPORTS!r}\n"
    + """
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
phases, last = [], (time.perf_counter(), time.process_time())
def mark(name):
    global last
    now = (time.perf_counter(), time.process_time())
    phases.append((name, now[0] - last[0], now[1] - last[1]))
    last = now
from tuning_service.raytune import workerimports
workerimports.import_all_but_ray()
mark(FORK_SERVER)
sys.stdout.flush()
import gc
gc.freeze()  # as the server does before it forks (a fork's collector passes skip its objects)
pid = os.fork()  # as the server forks each worker: the rest runs in the fork
if pid:
    sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
last = (time.perf_counter(), time.process_time())  # a fork's CPU time starts at 0
from tuning_service.raytune.lazydata import defer_ray_data
defer_ray_data()  # as the Ray stage imports
import ray
import tuning_service.raytune.trainable
mark(FORKED_IMPORTS)
from tuning_service.data.catalog import load_job
from tuning_service.raytune.trainable import build_trial, tensor_folds
from tuning_service.training.kerasstate import configure_tensorflow
from tuning_service.training.pipeline import epoch_order
job = load_job(sys.argv[1])
dataset = job.load_data()
config = {name: job.space[name].grid_values(name)[0] for name in job.space}
mark("")  # the job's data: the sweep hands it to the worker instead
configure_tensorflow(1, 0)  # the trainable's first step, as KerasTrainable._ready does it
folds = tensor_folds(dataset, None, 0)
built = build_trial(job, config, dataset.input_spec, folds, sweep_seed=0, threads=1)
mark("the data as tensors and the trial's model")
(fit, val), (model,) = folds[0], built.models
model.fit_epoch(fit, val, batch_size=built.batch_size, order=epoch_order(len(fit), built.seed, 0))
mark("its first epoch (tracing the training step)")
print(json.dumps([p for p in phases if p[0]]), flush=True)
os._exit(0)
"""
)


def worker_alone(job: str, runs: int) -> list[tuple[str, float, float]]:
    """One trial worker's chain in a new process (see the module docstring): the median wall and
    CPU seconds of each phase over ``runs`` runs."""
    measured = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", _WORKER_ALONE, job],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        measured.append(json.loads(done.stdout.splitlines()[-1]))
    return [
        (name, statistics.median(m[i][1] for m in measured), statistics.median(m[i][2] for m in measured))
        for i, (name, _, _) in enumerate(measured[0])
    ]


def worker_table(phases: Sequence[tuple[str, float, float]], runs: int) -> str:
    rows = [[name, fmt(wall, 2), fmt(cpu, 2)] for name, wall, cpu in phases]
    forked = [p for p in phases if p[0] != FORK_SERVER]
    rows.append(
        ["**from the fork to the worker's first epoch**", f"**{fmt(sum(p[1] for p in forked), 2)}**",
         fmt(sum(p[2] for p in forked), 2)]
    )  # fmt: skip
    title = "One trial worker alone (a new process for the server's part, a fork of it for the rest)"
    return f"{title}, median of {runs} runs:\n\n" + markdown_table(["phase", "wall s", "CPU s"], rows)


def import_costs(modules: Sequence[str], runs: int) -> dict[str, dict[str, Any]]:
    """Per module: the median CPU seconds of a plain and of a lean import, each in a new process,
    and which of the packages `LEFT_OUT` lists each one loaded."""
    costs: dict[str, dict[str, Any]] = {}
    for module in modules:
        measured: dict[str, list[dict[str, Any]]] = {"plain": [], "lean": []}
        for _ in range(runs):
            for mode, results in measured.items():  # alternated: a slow spell hits both alike
                done = subprocess.run(
                    [sys.executable, "-c", _IMPORT, module, mode],
                    capture_output=True, text=True, check=True, timeout=300,
                )  # fmt: skip
                results.append(json.loads(done.stdout.splitlines()[-1]))
        costs[module] = {}
        for mode, results in measured.items():
            costs[module][f"{mode}_cpu_s"] = statistics.median(r["cpu_s"] for r in results)
            costs[module][f"{mode}_loaded"] = results[0]["loaded"]
    return costs


def import_table(costs: dict[str, dict[str, Any]], runs: int) -> str:
    rows = [
        [
            f"`{module}`" if module in LEAN else f"`ray.tune`{module.removeprefix('ray.tune')}",
            ", ".join(LEFT_OUT[module]) + ("" if module in LEAN else " (deferred until read)"),
            fmt(c["plain_cpu_s"], 2),
            fmt(c["lean_cpu_s"], 2),
            fmt(c["plain_cpu_s"] - c["lean_cpu_s"], 2),
            ", ".join(c["plain_loaded"]) or "none",
            ", ".join(c["lean_loaded"]) or "none",
        ]
        for module, c in costs.items()
    ]
    header = ["import (new process)", "left out", "CPU s plain", "CPU s lean", "saved"]
    header += ["those a plain import loads", "... a lean one"]
    title = (
        "CPU of each lean import (`LEAN`'s, and Ray Tune's without Ray Data, and in a worker without pandas)"
    )
    return f"{title}, median of {runs} alternated runs:\n\n" + markdown_table(header, rows)


def body(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    # Each run with a new fork server (none kept), alternated with one that holds the server kept
    # from the run before (the first of those starts it): a slow spell hits both alike.
    count = 1 if args.smoke else args.runs
    runs: dict[str, list[dict[str, Any]]] = {NEW: [], KEPT: []}
    kept: int | None = None
    try:
        for i in range(count):
            for mode in (NEW, KEPT):
                if mode == KEPT and kept is None:  # the server the next runs hold
                    kept = _run_once(args, KEEP_S, None)["kept_server"]
                run = _run_once(args, 0 if mode == NEW else KEEP_S, kept)
                runs[mode].append(run)
                print(
                    f"run {i + 1}, {mode}: {fmt(run['to_first_epoch_s'], 2)} s to the first epoch",
                    file=sys.stderr,
                )
        kept_rss = resident_mib(kept) if kept is not None else None
    finally:
        if kept is not None:
            _stop(kept)
    lines = [
        f"## start-up{' (smoke)' if args.smoke else ''}: `tuning-service run {args.job}`, median of {count} runs"
    ]
    summary: dict[str, Any] = {}
    for mode, measured in runs.items():
        first = statistics.median(r["to_first_epoch_s"] for r in measured)
        phases = {
            name: statistics.median(r["phases_s"].get(name, 0.0) for r in measured)
            for name in measured[0]["phases_s"]
        }
        rows = [[name, fmt(seconds, 2)] for name, seconds in phases.items()]
        rows.append(["**command to first epoch**", f"**{fmt(first, 2)}**"])
        rows.append(
            [
                "command to exit (2 trials x 1 epoch)",
                fmt(statistics.median(r["to_exit_s"] for r in measured), 2),
            ]
        )
        met = "met" if first <= TARGET_S else "NOT met"
        lines += ["", f"### {mode}", "", markdown_table(["phase", "s"], rows), ""]
        lines += [f"- target: command to first epoch <= {TARGET_S:g} s: {met}"]
        cpu = cpu_table(measured)
        if cpu is not None:
            lines += ["", cpu]
        summary[mode] = {"to_first_epoch_s": first, "phases_s": phases}
    lines += ["", f"- the kept worker fork server's resident memory after the runs: {fmt(kept_rss, 0)} MiB"]
    stage = [r["stage_private_mib"] for r in runs[KEPT] if r["stage_private_mib"] is not None]
    lines += [
        f"- its Ray stage's own memory while a run held it (the most sampled, median of the runs): "
        f"{fmt(statistics.median(stage) if stage else None, 0)} MiB"
    ]
    alone = worker_alone(args.job, count)
    lines += ["", "### one trial worker alone", "", worker_table(alone, count)]
    for mode, measured in runs.items():
        # Holding the kept server, its Ray stage has made a forked worker's imports.
        done = (FORK_SERVER, FORKED_IMPORTS) if mode == KEPT else (FORK_SERVER,)
        chain = sum(wall for name, wall, _ in alone if name not in done)
        if all(r["to_first_worker_s"] is not None for r in measured):
            to_worker = statistics.median(r["to_first_worker_s"] for r in measured)
            first = summary[mode]["to_first_epoch_s"]
            servers = [r["to_fork_server_s"] for r in measured if r["to_fork_server_s"] is not None]
            started = (
                f"the worker fork server started {fmt(statistics.median(servers), 2)} s after the command, "
                if len(servers) == len(measured)
                else ""
            )
            lines += [
                "",
                f"- {mode}: {started}the first trial worker was forked {fmt(to_worker, 2)} s after the command "
                f"(median); the first epoch came {fmt(first - to_worker, 2)} s after that, where one forked "
                f"worker alone takes {fmt(chain, 2)} s{' (its imports made by the Ray stage)' if mode == KEPT else ''}: "
                "with the workers started when they are, the first "
                f"epoch comes no sooner than about {fmt(to_worker + chain, 2)} s",
            ]
    imports = import_costs(["optuna.importance"] if args.smoke else list(LEFT_OUT), count)
    lines += ["", "### imports", "", import_table(imports, count)]
    publish(
        out / "startup",
        "startup",
        args,
        "\n".join(lines),
        {
            "job": args.job,
            "runs": runs,
            "summary": summary,
            "kept_server_rss_mib": kept_rss,
            "worker_alone": alone,
            "imports": imports,
        },
    )
    return summary


def _run_once(args: argparse.Namespace, keep_s: float, kept: int | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tuning-service-startup-") as tmp:
        return one_run(args, Path(tmp), keep_s, kept)


def _stop(pid: int) -> None:
    """Stop the kept fork server the runs held (where ``pid`` is still that server), and wait
    for it to end: the runs after this one time a machine without it."""
    if FORK_SERVER_MARK not in (command_line(pid) or ""):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while FORK_SERVER_MARK in (command_line(pid) or "") and time.monotonic() < deadline:
        time.sleep(0.05)


def cpu_table(runs: Sequence[dict[str, Any]]) -> str | None:
    """CPU seconds by kind of process, medians over the runs; None where they were not sampled."""
    if any(r.get("cpu_to_first_epoch_s") is None for r in runs):
        return None
    cores = os.cpu_count() or 1
    rows = []
    for kind in (*KINDS, "all"):
        row = [kind]
        for key in ("cpu_to_first_epoch_s", "cpu_to_exit_s"):
            values = [sum(r[key].values()) if kind == "all" else r[key][kind] for r in runs]
            row.append(fmt(statistics.median(values), 2))
        rows.append(row)
    first = statistics.median(sum(r["cpu_to_first_epoch_s"].values()) for r in runs)
    return "\n".join(
        [
            markdown_table(["CPU s (sampled every 0.2 s; lower bounds)", "to first epoch", "to exit"], rows),
            "",
            f"- the CPU used until the first epoch, spread over all {cores} cores, takes at least "
            f"{fmt(first / cores, 2)} s",
        ]
    )


def build_parser() -> argparse.ArgumentParser:
    ap = cli.parser("startup", (__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="launches to take the median of (default 3)")
    ap.add_argument("--job", default="digits", help="the job the command sweeps (default digits)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(build_parser(), body, argv, "startup")


if __name__ == "__main__":
    sys.exit(main())
