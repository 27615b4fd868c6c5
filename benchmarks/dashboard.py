"""Dashboard: page times over HTTP on a results database of 10,000 trials and 300,000 epochs.

    python -m benchmarks.dashboard [--smoke] [--out DIR] [--sizes 20x500x30] [--repeats 5]

Builds the database `benchmarks.store_scale` builds (SWEEPS sweeps of one job, TRIALS trials
each, EPOCHS epochs per trial on average, through the service's own migrations and bulk
inserts), serves it with the dashboard (read-only, on a free loopback port, in this
process's uvicorn, after the imports its start-up does in the background), and times each
page and figure request as a browser makes it: one warm-up, then the median and max of
REPEATS requests. Importance and the HTML report are kept until their sweep changes: their
first view (drawn) is timed on its own. The target is 1 s a request.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import cli, store_scale
from benchmarks.reporting import fmt, markdown_table, publish
from tuning_service.core.errors import InputError

TARGET_S = 1.0
# Requests the dashboard answers from what it kept (until the sweep changes): first views apart.
KEPT = {"importance": "figure importance (kept)", "report": "HTML report of the sweep (kept)"}


def requests(sweep_ids: list[str]) -> dict[str, str]:
    """Each timed request (path after the server's URL), by the name the table shows."""
    newest, oldest = sweep_ids[-1], sweep_ids[0]
    job = store_scale.JOB
    figures = {
        f"figure {n}": f"/api/sweeps/{newest}/figures/{n}" for n in ("curves", "best_so_far", "parallel")
    }
    figures |= {f"figure {n}": f"/api/sweeps/{newest}/figures/{n}" for n in ("stops", "slots")}
    return {
        "all sweeps": "/",
        "sweep page": f"/sweeps/{newest}",
        "sweep leaderboard, page 5": f"/sweeps/{newest}?part=leaderboard&page=5",
        **figures,
        KEPT["importance"]: f"/api/sweeps/{newest}/figures/importance",
        "live state poll": f"/api/state?sweep={newest}",
        "live state poll, all sweeps": "/api/state",
        f"job {job}": f"/jobs/{job}",
        f"job {job}: best over time": f"/api/jobs/{job}/history",
        "schedules": "/schedules",
        "compare 2 sweeps": f"/compare?sweep={oldest}&sweep={newest}",
        "compare chart": f"/api/compare?sweep={oldest}&sweep={newest}",
        "export sweep top 10 (csv)": f"/sweeps/{newest}/export.csv?top=10",
        f"export job {job} top 10 (json)": f"/jobs/{job}/export.json?top=10",
        KEPT["report"]: f"/sweeps/{newest}/report.html",
    }


def _get(url: str) -> float:
    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as answer:
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"{url}: HTTP {answer.status}")
    return time.perf_counter() - began


class Served:
    """The dashboard over ``db_url`` in a uvicorn thread on a free loopback port."""

    def __init__(self, db_url: str) -> None:
        import uvicorn

        from tuning_service.dashboard import create_app, open_read_only

        self.store = open_read_only(db_url, "unused")
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(create_app(self.store), log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Served:
        from tuning_service.dashboard.figures import warm_up

        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        # What `tuning-service dashboard` does in the background once it answers (here waited for).
        began = time.perf_counter()
        warm_up()
        self.warm_up_s = time.perf_counter() - began
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()
        self.store.close()


def body(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from tuning_service.store import open_store

    sizes = store_scale.parse_sizes(
        store_scale.SMOKE_SIZES if args.smoke and args.sizes is None else args.sizes or store_scale.SIZES
    )
    repeats = 1 if args.smoke else args.repeats
    if repeats < 1:
        raise InputError(f"--repeats must be >= 1, got {repeats}")
    with tempfile.TemporaryDirectory(prefix="tuning-service-dashboard-") as tmp:
        storage = Path(tmp) / "results"
        db_url = f"sqlite:///{storage / 'tuning.db'}"
        began = time.perf_counter()
        with open_store(db_url) as store:
            built = store_scale.build(store, storage, sizes, args.seed)
        build_s = time.perf_counter() - began
        print(f"built {built['trials']} trials, {built['epochs']} epochs in {build_s:.1f} s", file=sys.stderr)
        timings: dict[str, dict[str, Any]] = {}
        with Served(db_url) as served:
            timed = requests(built["sweep_ids"])
            first_views: dict[str, float] = {}
            if args.smoke:  # importance and the report's drawing: seconds a smoke run need not spend
                for name in KEPT.values():
                    del timed[name]
            else:
                first_views = {kind: _get(served.base + timed[name]) for kind, name in KEPT.items()}
            warm_up_s = served.warm_up_s
            for name, path in timed.items():
                _get(served.base + path)  # warm-up: imports, SQLite's page cache, statement caches
                runs = [_get(served.base + path) for _ in range(repeats)]
                timings[name] = {
                    "path": path,
                    "median_s": statistics.median(runs),
                    "max_s": max(runs),
                    "runs": runs,
                }
                print(f"{name}: {fmt(timings[name]['median_s'], 3)} s", file=sys.stderr)
    newest, oldest = built["sweep_ids"][-1], built["sweep_ids"][0]
    rows = [
        [f"{name}", f"`{t['path'].replace(newest, 'S').replace(oldest, 'S0')}`", fmt(t["median_s"], 3), fmt(t["max_s"], 3),
         "met" if t["median_s"] <= TARGET_S else "NOT met"]
        for name, t in timings.items()
    ]  # fmt: skip
    text = "\n".join(
        [
            f"## dashboard{' (smoke)' if args.smoke else ''}: {built['trials']:,} trials, {built['epochs']:,} "
            f"epoch rows ({sizes.sweeps} sweeps of one job, {sizes.trials} trials each), SQLite",
            "",
            markdown_table(["request", "path", "median s", "max s", f"<= {TARGET_S:g} s"], rows),
            "",
            f"- median and max of {repeats} request(s) each over HTTP on loopback, after one warm-up; S is the "
            f"newest sweep ({sizes.trials} trials), S0 the oldest."
            + f" The start-up's background imports took {warm_up_s:.2f} s before the first request."
            + (
                f" First views, drawn (then kept until the sweep changes): importance "
                f"{first_views['importance']:.2f} s, the HTML report {first_views['report']:.2f} s."
                if first_views
                else ""
            ),
        ]
    )
    report = {
        "sizes": {"sweeps": sizes.sweeps, "trials_per_sweep": sizes.trials, "avg_epochs": sizes.epochs},
        "trials": built["trials"],
        "epochs": built["epochs"],
        "build_s": build_s,
        "repeats": repeats,
        "target_s": TARGET_S,
        "warm_up_s": warm_up_s,
        "importance_first_view_s": first_views.get("importance"),
        "report_first_view_s": first_views.get("report"),
        "requests": timings,
    }
    publish(out / "dashboard", "dashboard", args, text, report)
    return report


def build_parser() -> argparse.ArgumentParser:
    ap = cli.parser("dashboard", (__doc__ or "").splitlines()[0])
    ap.add_argument(
        "--sizes",
        default=None,
        help=f"SWEEPSxTRIALSxEPOCHS (default {store_scale.SIZES}; {store_scale.SMOKE_SIZES} with --smoke)",
    )
    ap.add_argument("--repeats", type=int, default=5, help="timed requests per page (default 5)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(build_parser(), body, argv, "dashboard")


if __name__ == "__main__":
    sys.exit(main())
