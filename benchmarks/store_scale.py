"""Store scale: `results`, `export` and `report --job` on a results store of 10,000 trials and 300,000 epochs.

    python -m benchmarks.store_scale [--smoke] [--out DIR] [--sizes 20x500x30] [--repeats 5] [--db URL]

Builds, in a temporary folder, what many sweeps of one job leave behind: the results
database (created by the service's own migrations, filled with SQLAlchemy Core bulk
inserts: SWEEPS x TRIALS trials with EPOCHS epochs on average, most trials stopped
early at some rung, a few errored or diverged, configs and per-epoch metrics as a
real sweep records them) and each sweep's folder as a finished sweep writes it
(sweep.json, trials.json, best_config.json), which `report --job` reads. Then it times
each command several times two ways: in-process (``tuning_service.cli.main``, after a
warm-up, stdout captured) and as a whole command in a fresh process (``python -m
tuning_service``: Python's start and the imports included). The 1 s target is judged
on the in-process median; the fresh-process figure is shown beside it. Last, `report --job`
step by step, in-process: loading the sweeps, and each figure's drawing and its SVG, one
after another (the command itself draws the figures in this process and a forked copy at
once where it has two CPUs or more, so it takes less than the steps' sum there).

SQLite by default; ``--db URL`` (or $STORE_SCALE_DB, the place for a URL with a
password) fills an empty PostgreSQL database instead, and empties it again after.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import cli
from benchmarks.reporting import fmt, markdown_table, publish
from tuning_service.core.envvars import env_restored
from tuning_service.core.errors import InputError
from tuning_service.core.forked import processes_available

TARGET_S = 1.0
DB_ENV = "STORE_SCALE_DB"
JOB, METRIC, MODE = "digits", "val_accuracy", "max"
SIZES, SMOKE_SIZES = "20x500x30", "4x50x10"
CHUNK = 5000  # rows per bulk insert


@dataclass(frozen=True)
class Sizes:
    sweeps: int
    trials: int  # per sweep
    epochs: int  # per trial, on average; a trial runs at most 2 * epochs - 1

    @property
    def max_epochs(self) -> int:
        return max(1, 2 * self.epochs - 1)


def parse_sizes(text: str) -> Sizes:
    """``SWEEPSxTRIALSxEPOCHS``, three integers >= 1 (``20x500x30``)."""
    match = re.fullmatch(r"\s*(\d+)x(\d+)x(\d+)\s*", text or "")
    numbers = [int(g) for g in match.groups()] if match else []
    if not numbers or min(numbers) < 1:
        raise InputError(
            f"--sizes {text!r}: give SWEEPSxTRIALSxEPOCHS, three integers >= 1, e.g. {SIZES} "
            "(20 sweeps of 500 trials, 30 epochs per trial on average)"
        )
    return Sizes(*numbers)


# -- the made-up sweeps ------------------------------------------------------------------------


def _space() -> Any:
    from tuning_service.space import Choice, Float, Int, Space

    return Space(
        {
            "learning_rate": Float(1e-4, 1e-1, log=True),
            "units": Int(16, 256, log=True),
            "layers": Int(1, 3),
            "dropout": Float(0.0, 0.5),
            "activation": Choice(("relu", "tanh", "gelu")),
            "batch_size": Choice((32, 64, 128)),
        }
    )


def _config(rng: random.Random) -> dict[str, Any]:
    return {
        "learning_rate": 10 ** rng.uniform(-4, -1),
        "units": int(round(2 ** rng.uniform(4, 8))),
        "layers": rng.randint(1, 3),
        "dropout": rng.uniform(0.0, 0.5),
        "activation": rng.choice(("relu", "tanh", "gelu")),
        "batch_size": rng.choice((32, 64, 128)),
    }


def _epoch_counts(rng: random.Random, sizes: Sizes) -> list[int]:
    """Epochs per trial: pairs that sum to twice the average (ASHA-like: a quarter of the pairs are
    a trial run to the end and one stopped after its first epoch), so the total is exact."""
    e, counts = sizes.epochs, []
    for _ in range(sizes.trials // 2):
        offset = e - 1 if rng.random() < 0.25 else rng.randint(0, max(0, e - 2))
        counts += [e + offset, e - offset]
    if sizes.trials % 2:
        counts.append(e)
    rng.shuffle(counts)
    return counts


def _trial(rng: random.Random, index: int, epochs: int, sizes: Sizes, start: float) -> dict[str, Any]:
    """One trial: config, outcome and per-epoch history (as the runner's summary keeps it)."""
    from tuning_service.core.results import COMPLETED, DIVERGED, ERRORED, STOPPED

    config = _config(rng)
    ceiling = 0.97 - abs(math.log10(config["learning_rate"]) + 2.5) * 0.08 - config["dropout"] * 0.05
    pace = rng.uniform(2.0, 8.0)
    if epochs >= sizes.max_epochs:
        status = COMPLETED
    else:
        status = rng.choices((STOPPED, ERRORED, DIVERGED), weights=(90, 5, 5))[0]
    history, clock = [], start
    for epoch in range(1, epochs + 1):
        length = rng.uniform(0.05, 0.2)
        clock += length
        accuracy = max(0.05, ceiling - (ceiling - 0.1) * math.exp(-epoch / pace) + rng.gauss(0, 0.01))
        diverged = status == DIVERGED and epoch == epochs
        history.append(
            {
                "training_iteration": epoch,
                "loss": 2.3 * (1 - accuracy) + 0.05,
                "val_loss": math.nan if diverged else 2.4 * (1 - accuracy) + 0.08,
                "diverged": diverged,
                "train_time_s": length * 0.9,
                "timestamp": int(clock),
                "ended_at": clock,
                "time_this_iter_s": length,
                METRIC: None if diverged else accuracy,
            }
        )
    finite = [h for h in history if h[METRIC] is not None]
    best = max(finite, key=lambda h: h[METRIC]) if finite and status != DIVERGED else None
    return {
        "trial_id": f"{index:05d}",
        "config": config,
        "status": status,
        "value": best[METRIC] if best else None,
        "best_epoch": best["training_iteration"] if best else None,
        "epochs": epochs,
        "train_time_s": sum(h["train_time_s"] for h in history),
        "error": "ValueError: made-up failure in the model builder" if status == ERRORED else None,
        "history": history,
        "start": start,
        "end": clock,
    }


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _epoch_metrics(row: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of an epoch, as the recorder keeps them (`recorder.epoch_metrics`,
    which imports Ray Tune: seconds this benchmark need not spend)."""
    return {
        k: float(v)
        for k, v in row.items()
        if k not in ("training_iteration", "timestamp")
        and isinstance(v, int | float)
        and not isinstance(v, bool)
        and math.isfinite(v)
    }


def _sweep_rows(
    sweep_id: str, trials: list[dict[str, Any]], max_epochs: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from tuning_service.core.outcomes import outcome_message

    trial_rows, epoch_rows = [], []
    for t in trials:
        trial_rows.append(
            {
                "sweep_id": sweep_id,
                "trial_id": t["trial_id"],
                "config": t["config"],
                "status": t["status"],
                "message": t["error"] or outcome_message(t["status"], t["history"][-1], max_epochs),
                "value": t["value"],
                "best_epoch": t["best_epoch"],
                "epochs": t["epochs"],
                "train_time_s": t["train_time_s"],
                "duration_s": t["end"] - t["start"],
                "node_ip": "10.0.0.7",
                "node_id": "f" * 56,
                "hostname": "worker-1",
                "checkpoint": None,
                "started_at": _when(t["start"]),
                "ended_at": _when(t["end"]),
                "updated_at": _when(t["end"]),
            }
        )
        for h in t["history"]:
            epoch_rows.append(
                {
                    "sweep_id": sweep_id,
                    "trial_id": t["trial_id"],
                    "epoch": h["training_iteration"],
                    "value": h[METRIC],
                    "diverged": h["diverged"],
                    "metrics": _epoch_metrics({**h, "accuracy": (h[METRIC] or 0.0) * 1.02}),
                    "recorded_at": _when(h["ended_at"]),
                }
            )
    return trial_rows, epoch_rows


def build(store: Any, storage: Path, sizes: Sizes, seed: int) -> dict[str, Any]:
    """Fill ``store`` and write the sweep folders under ``storage``; the sweep ids, oldest first."""
    import sqlalchemy as sa

    from tuning_service.core.results import SweepResult, TrialSummary, write_outputs
    from tuning_service.store import schema
    from tuning_service.store.schema import FINISHED

    rng = random.Random(seed)
    space = _space()
    first = datetime(2026, 1, 5, 9, 0, tzinfo=UTC).timestamp()
    ids, epochs_total = [], 0
    for s in range(sizes.sweeps):
        started = first + s * 86400.0
        sweep_id = f"{_when(started):%Y%m%d-%H%M%S}-{s:06x}"
        ids.append(sweep_id)
        store.create_sweep(
            sweep_id,
            job=JOB,
            job_ref=JOB,
            metric=METRIC,
            mode=MODE,
            searcher="optuna",
            scheduler="asha",
            seed=seed + s,
            space=space.to_dict(),
            spec={"job": JOB, "num_samples": sizes.trials, "max_epochs": sizes.max_epochs},
            versions={"tuning-service": "bench", "ray": "bench"},
            num_samples=sizes.trials,
            max_epochs=sizes.max_epochs,
            sweep_dir=str(storage / JOB / sweep_id),
            started_at=_when(started),
        )
        trials, clock = [], started
        for i, count in enumerate(_epoch_counts(rng, sizes)):
            trials.append(_trial(rng, i, count, sizes, clock))
            clock += 0.5 * (trials[-1]["end"] - clock)  # two trial slots
        trial_rows, epoch_rows = _sweep_rows(sweep_id, trials, sizes.max_epochs)
        epochs_total += len(epoch_rows)
        with store.engine.begin() as conn:
            for table, rows in ((schema.trials, trial_rows), (schema.epochs, epoch_rows)):
                for at in range(0, len(rows), CHUNK):
                    conn.execute(sa.insert(table), rows[at : at + CHUNK])
        store.finish_sweep(sweep_id, FINISHED)
        sweep_dir = storage / JOB / sweep_id
        sweep_dir.mkdir(parents=True)
        summaries = [
            TrialSummary(**{k: v for k, v in t.items() if k not in ("start", "end")}) for t in trials
        ]
        write_outputs(
            SweepResult(
                sweep_id=sweep_id,
                job=JOB,
                metric=METRIC,
                mode=MODE,
                searcher="optuna",
                scheduler="asha",
                seed=seed + s,
                sweep_dir=sweep_dir,
                trials=summaries,
                wall_time_s=max(t["end"] for t in trials) - started,
                max_epochs=sizes.max_epochs,
                space=space.to_dict(),
                started=_when(started).isoformat(timespec="seconds"),
            )
        )
    return {"sweep_ids": ids, "trials": sizes.sweeps * sizes.trials, "epochs": epochs_total}


# -- the commands and their timing -------------------------------------------------------------


def commands(sweep_id: str, out: Path) -> dict[str, list[str]]:
    """Each timed command's arguments (after ``tuning-service``), by the name the table shows."""
    return {
        "results": ["results"],
        f"results --job {JOB}": ["results", "--job", JOB],
        "results --sweep S": ["results", "--sweep", sweep_id],
        "export": ["export"],
        "export --top 10": ["export", "--top", "10"],
        f"report --job {JOB}": ["report", "--job", JOB, "-o", str(out / "report.html")],
    }


@contextlib.contextmanager
def _database_env(url: str | None) -> Iterator[None]:
    """The results database for the commands, in the environment (a password never goes in argv)."""
    from tuning_service.store import DB_ENV as SERVICE_DB_ENV

    with env_restored(SERVICE_DB_ENV):
        if url is not None:
            os.environ[SERVICE_DB_ENV] = url
        else:
            os.environ.pop(SERVICE_DB_ENV, None)
        yield


def in_process(argv: list[str]) -> float:
    """Seconds for ``tuning_service.cli.main(argv)``, its output captured; raises unless it exits 0."""
    from tuning_service.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        began = time.perf_counter()
        code = main(argv)
        took = time.perf_counter() - began
    if code != 0:
        raise RuntimeError(f"`tuning-service {' '.join(argv)}` exited {code}: {stderr.getvalue().strip()}")
    return took


def fresh_process(argv: list[str]) -> float:
    """Seconds for ``python -m tuning_service ARGV`` in a new process, from launch to exit."""
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tuning_service", *argv], capture_output=True, text=True, timeout=600
    )
    took = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(
            f"`tuning-service {' '.join(argv)}` exited {done.returncode}: {done.stderr[-400:]}"
        )
    return took


def _stats(times: list[float]) -> dict[str, float]:
    return {"median_s": statistics.median(times), "max_s": max(times), "runs": times}


def time_commands(
    argvs: dict[str, list[str]], repeats: int, *, fresh: bool = True
) -> dict[str, dict[str, Any]]:
    """Each command in-process and (``fresh``; else only the first command) as a new process."""
    timings: dict[str, dict[str, Any]] = {}
    for name, argv in argvs.items():
        in_process(argv)  # warm-up: imports, the page cache, SQLAlchemy's statement cache
        inner = [in_process(argv) for _ in range(repeats)]
        outer = [fresh_process(argv) for _ in range(repeats)] if fresh or not timings else []
        timings[name] = {"in_process": _stats(inner), "fresh_process": _stats(outer) if outer else None}
        print(
            f"{name}: {fmt(timings[name]['in_process']['median_s'], 3)} s in-process"
            + (f", {fmt(statistics.median(outer), 3)} s as a new process" if outer else ""),
            file=sys.stderr,
        )
    return timings


def _timed(step: Any, *args: Any) -> tuple[Any, tuple[float, float]]:
    """``step(*args)`` and the (wall, CPU) seconds it took."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = step(*args)
    return value, (time.perf_counter() - wall, time.process_time() - cpu)


def time_report_steps(storage: Path, repeats: int) -> dict[str, dict[str, float]]:
    """Where `report --job` spends its time, in-process: loading the job's sweeps, then drawing
    each figure and writing it as SVG; medians of ``repeats`` runs after a warm-up, wall and
    CPU seconds (a shared machine stretches the first, hardly the second)."""
    import gc

    from tuning_service.core.sweepdirs import job_sweeps
    from tuning_service.space import Space
    from tuning_service.sweeps.report import FIGURES, _svg, load

    dirs = job_sweeps(JOB, str(storage))
    runs: dict[str, list[tuple[float, float]]] = {}
    for _ in range(repeats + 1):  # the first is a warm-up, dropped below
        (result, data), took = _timed(load, dirs)
        runs.setdefault("load", []).append(took)
        space = Space.from_dict(result.space) if result.space else None
        gc.disable()  # as `report` draws: with the cyclic collector paused
        try:
            for name, build in FIGURES.items():
                fig, took = _timed(build, result, space, data)
                if fig is None:
                    continue
                runs.setdefault(f"{name}: draw", []).append(took)
                _, took = _timed(_svg, fig)
                runs.setdefault(f"{name}: SVG", []).append(took)
        finally:
            gc.enable()
    return {
        step: {
            "median_s": statistics.median(wall for wall, _ in times[1:]),
            "median_cpu_s": statistics.median(cpu for _, cpu in times[1:]),
        }
        for step, times in runs.items()
    }


# -- the scenario ------------------------------------------------------------------------------


def database_url(args: argparse.Namespace, storage: Path) -> str | None:
    """The PostgreSQL URL to fill (None: the SQLite file under ``storage``), checked for its form."""
    from tuning_service.store import parse_url

    text = args.db if args.db is not None else os.environ.get(DB_ENV) or None
    if text is None:
        return None
    url = parse_url(text)  # InputError, the password masked, for a malformed URL
    if url.get_backend_name() != "postgresql":
        raise InputError(
            "--db: give a postgresql:// URL (the default is a SQLite file in a temporary folder), "
            f"got a {url.get_backend_name()} URL"
        )
    return text


def check_empty(store: Any) -> None:
    found = store.sweeps()
    if found:
        raise InputError(
            f"--db {store.display_url}: the database already holds {len(found)} sweep(s); "
            "give an empty database (the benchmark fills it and empties it again)"
        )


def empty_sweeps(store: Any, sweep_ids: list[str]) -> None:
    import sqlalchemy as sa

    from tuning_service.store import schema

    with store.engine.begin() as conn:
        for table in (schema.epochs, schema.refits, schema.trials, schema.sweeps):
            conn.execute(sa.delete(table).where(table.c.sweep_id.in_(sweep_ids)))


def body(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from tuning_service.store import open_store

    sizes = parse_sizes(SMOKE_SIZES if args.smoke and args.sizes is None else args.sizes or SIZES)
    repeats = 1 if args.smoke else args.repeats
    if repeats < 1:
        raise InputError(f"--repeats must be >= 1, got {repeats}")
    with tempfile.TemporaryDirectory(prefix="tuning-service-store-scale-") as tmp:
        storage = Path(tmp) / "results"
        url = database_url(args, storage)
        with _database_env(url), open_store(url, storage=storage) as store:
            if url is not None:
                check_empty(store)
            shown = store.display_url if url is not None else "SQLite (a file in a temporary folder)"
            began = time.perf_counter()
            built: dict[str, Any] = {"sweep_ids": []}
            try:
                built = build(store, storage, sizes, args.seed)
                build_s = time.perf_counter() - began
                print(
                    f"built {built['trials']} trials, {built['epochs']} epochs in {build_s:.1f} s ({shown})",
                    file=sys.stderr,
                )
                argvs = {
                    name: [*argv, "--storage", str(storage)]
                    for name, argv in commands(built["sweep_ids"][-1], Path(tmp)).items()
                }
                # --smoke: one command as a new process (the others import Ray and Optuna: seconds each).
                timings = time_commands(argvs, repeats, fresh=not args.smoke)
                steps = time_report_steps(storage, repeats)
                page_bytes = (Path(tmp) / "report.html").stat().st_size
            finally:
                if url is not None:
                    empty_sweeps(store, built["sweep_ids"])
    rows = []
    for name, t in timings.items():
        inner, outer = t["in_process"], t["fresh_process"] or {"median_s": None, "max_s": None}
        met = inner["median_s"] <= TARGET_S
        t["met"] = met
        rows.append(
            [
                f"`{name}`",
                fmt(inner["median_s"], 3),
                fmt(inner["max_s"], 3),
                fmt(outer["median_s"], 3),
                fmt(outer["max_s"], 3),
                f"{TARGET_S:g} s",
                "met" if met else "NOT met",
            ]
        )
    headers = ["command", "median s", "max s", "new process median s", "new process max s", "target", "met?"]
    text = "\n".join(
        [
            f"## store scale{' (smoke)' if args.smoke else ''}: {built['trials']:,} trials, "
            f"{built['epochs']:,} epoch rows ({sizes.sweeps} sweeps of one job), {shown}",
            "",
            markdown_table(headers, rows),
            "",
            f"- median and max of {repeats} run(s) each, after one warm-up. The target (<= {TARGET_S:g} s) is "
            "judged on the in-process median (`tuning_service.cli.main`, imports done); the new process "
            "figures add Python's start and the imports.",
            f"- `report --job {JOB}` wrote a page of {page_bytes / 1e6:.2f} MB.",
            "",
            f"`report --job {JOB}` step by step (in-process, median of {repeats} after a warm-up; one "
            f"figure after another, where the command draws them in up to {processes_available()} "
            "processes at once):",
            "",
            markdown_table(
                ["step", "median s", "median CPU s"],
                [
                    *([step, fmt(t["median_s"], 3), fmt(t["median_cpu_s"], 3)] for step, t in steps.items()),
                    [
                        "all of the above",
                        fmt(sum(t["median_s"] for t in steps.values()), 3),
                        fmt(sum(t["median_cpu_s"] for t in steps.values()), 3),
                    ],
                ],
            ),
        ]
    )
    report = {
        "sizes": {"sweeps": sizes.sweeps, "trials_per_sweep": sizes.trials, "avg_epochs": sizes.epochs},
        "trials": built["trials"],
        "epochs": built["epochs"],
        "database": shown,
        "build_s": build_s,
        "repeats": repeats,
        "target_s": TARGET_S,
        "commands": timings,
        "report_steps": steps,
        "report_page_bytes": page_bytes,
    }
    publish(out / "store_scale", "store_scale", args, text, report)
    return report


def build_parser() -> argparse.ArgumentParser:
    ap = cli.parser("store_scale", (__doc__ or "").splitlines()[0])
    ap.add_argument(
        "--sizes",
        default=None,
        help=f"SWEEPSxTRIALSxEPOCHS: sweeps, trials per sweep, average epochs per trial "
        f"(default {SIZES}; {SMOKE_SIZES} with --smoke)",
    )
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per command and way (default 5)")
    add_db_option(ap)
    return ap


def add_db_option(ap: argparse.ArgumentParser) -> None:
    """``--db URL``: an empty PostgreSQL database instead of SQLite (`database_url` reads it)."""
    ap.add_argument(
        "--db",
        metavar="URL",
        default=None,
        help=f"an empty PostgreSQL database to fill instead of SQLite (default ${DB_ENV}; put a URL "
        "with a password there, not on the command line)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(build_parser(), body, argv, "store_scale")


if __name__ == "__main__":
    sys.exit(main())
