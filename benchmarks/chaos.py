"""Chaos: real tiny sweeps on SQLite and PostgreSQL under injected faults; faults survived, data lost.

    python -m benchmarks.chaos [--smoke] [--faults 20] [--seed 0] [--backends sqlite,postgresql]
                               [--kinds driver,worker,node,postgres,disk] [--out DIR]

Each sweep is a real `tuning-service run` process (6 trials: the job's 6-point grid, or
random, Optuna or HyperOpt; FIFO or ASHA; 4 epochs, a checkpoint every epoch) into which
one fault, in a seeded random order, is injected at a random moment (see FAULTS):

  driver    SIGKILL of the driver and its embedded Ray, then `tuning-service resume`
  worker    SIGKILL of a training trial's worker (Ray restarts it from its checkpoint)
  node      SIGKILL of every process of the worker node of a local 2-node cluster
  postgres  a restart of the PostgreSQL server the sweep writes to
  disk      the sweep's results disk (a 64 MiB tmpfs) full for a few seconds (root only)

A driver that exits with an error is resumed, up to 3 times. Then every sweep is checked:
exactly its 6 trials ran (trials the store keeps as dropped aside), each trial's epoch rows
are 1..its last epoch and hold every epoch Ray Tune reported for it, and best_config.json,
trials.json and sweep.json are whole and agree with the database. The server, the disks and
the clusters are this command's own (a throwaway PostgreSQL server, tmpfs mounts, a cluster
per node fault) and are gone when it ends.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import cli
from benchmarks.reporting import markdown_table, publish
from tuning_service.core.errors import InputError
from tuning_service.core.results import DROPPED, tally

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("driver", "worker", "node", "postgres", "disk")
BACKENDS = ("sqlite", "postgresql")
SEARCHERS = ("grid", "random", "optuna", "hyperopt")
SCHEDULERS = ("fifo", "asha")
# The job's grid has exactly this many points; the other searchers run this many trials.
TRIALS, EPOCHS = 6, 4
RESUMES = 3  # a sweep still failing after this many resumes did not survive
SWEEP_TIMEOUT_S = 900.0
DISK_BYTES = 64 * 2**20

CHAOS_JOB = """\
from tuning_service.space import Float, Int
from tuning_service.testing import tiny_job

# Digits, one small hidden layer, a 6-point grid (3 learning rates x 2 widths).
JOB = tiny_job(
    {"learning_rate": Float(1e-3, 5e-2, log=True, grid=(3e-3, 1e-2, 3e-2)), "units": Int(8, 64, grid=(16, 32))},
    max_epochs=4,
)
"""


@dataclass(frozen=True)
class Plan:
    """One sweep of the run and the fault it gets."""

    index: int
    kind: str
    backend: str
    searcher: str
    scheduler: str
    trials: int
    epochs: int
    seed: int


@dataclass
class Outcome:
    """What became of one planned sweep."""

    plan: Plan
    sweep_id: str | None = None
    injected: str | None = None  # what was done, None if the sweep ended before the fault's moment
    exits: list[int] = field(default_factory=list)  # the driver's, then each resume's exit code
    trials: int = 0
    statuses: dict[str, int] = field(default_factory=dict)  # the trials by outcome, dropped ones too
    dropped: int = 0
    epochs: int = 0
    lost: list[str] = field(default_factory=list)  # what the checks found missing or wrong
    # Commands of this sweep that printed a traceback (never expected, whatever the fault).
    tracebacks: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def survived(self) -> bool:
        return self.injected is not None and not self.lost and not self.tracebacks


class Lab:
    """Where the sweeps run: a work folder, the job file, the databases, the driver processes."""

    def __init__(self, workdir: Path, pg: Any) -> None:
        self.workdir, self.pg = workdir, pg
        self.job = workdir / "chaos_job.py"
        self.job.write_text(CHAOS_JOB)
        self.urls = {"sqlite": f"sqlite:///{workdir / 'chaos.db'}"}
        if pg is not None:
            self.urls["postgresql"] = pg.url
        # Every sweep names its database; the repository's jobs package must import.
        self.env = {k: v for k, v in os.environ.items() if k != "TUNING_SERVICE_DB"} | {
            "PYTHONPATH": str(ROOT)
        }
        self.errs: list[Path] = []  # every command's stderr, in order

    def launch(self, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """`tuning-service ARGS` in a session of its own, output to files in the work folder."""
        stem = self.workdir / f"cli-{len(self.errs) + 1:03d}"
        self.errs.append(Path(f"{stem}.err"))
        with open(f"{stem}.out", "w") as out, open(f"{stem}.err", "w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tuning_service", "-q", *args],
                cwd=self.workdir,
                env=env or self.env,
                stdout=out,
                stderr=err,
                text=True,
                start_new_session=True,
            )
        return proc


class Sweep:
    """One running sweep: its driver, where it writes, and how far it got (read from the store)."""

    def __init__(self, lab: Lab, plan: Plan, storage: Path, driver: subprocess.Popen[str]) -> None:
        from tuning_service.store import open_store

        self.lab, self.plan, self.storage, self.driver = lab, plan, storage, driver
        self.rng = random.Random(plan.seed)
        self.store = open_store(lab.urls[plan.backend])
        self.worker: Any = None  # node faults: the worker node's process tree and its node id
        self._id: str | None = None

    def sweep_id(self) -> str | None:
        if self._id is None:
            mine = [
                s for s in self.store.sweeps() if (s.sweep_dir or "").startswith(f"{self.storage}{os.sep}")
            ]
            self._id = mine[0].sweep_id if mine else None
        return self._id

    def trials(self) -> list[Any]:
        sweep_id = self.sweep_id()
        return self.store.trials([sweep_id]) if sweep_id else []

    def finished(self) -> int:
        return sum(t.status not in ("running", "interrupted") for t in self.trials())

    def epochs(self) -> int:
        sweep_id = self.sweep_id()
        return self.store.epoch_counts([sweep_id]).get(sweep_id, 0) if sweep_id else 0

    def wait(self, ready: Callable[[], Any], timeout: float = SWEEP_TIMEOUT_S) -> Any:
        """``ready()``'s first true answer while the driver runs; None once it has ended."""
        deadline = time.monotonic() + timeout
        while self.driver.poll() is None and time.monotonic() < deadline:
            try:
                found = ready()
            except Exception:  # noqa: BLE001 - the database may be mid-fault; ask again
                found = None
            if found:
                return found
            time.sleep(0.25)
        return None

    def training(self, min_epoch: int, node_id: str | None = None) -> tuple[str, int, int] | None:
        """A trial still running that has reported ``min_epoch`` epochs (on ``node_id``): its id,
        its worker's pid and its last epoch, from Ray Tune's result.json files."""
        running = {t.trial_id for t in self.trials() if t.status == "running"}
        for trial_id, rows in tune_results(self.storage).items():
            last = rows[-1] if rows else None
            if (
                last
                and trial_id in running
                and last.get("training_iteration", 0) >= min_epoch
                and (node_id is None or last.get("node_id") == node_id)
            ):
                return trial_id, int(last["pid"]), int(last["training_iteration"])
        return None

    def close(self) -> None:
        self.store.close()


def tune_results(storage: Path) -> dict[str, list[dict[str, Any]]]:
    """Each trial's results as Ray Tune logged them (trials/<trial>/result.json), in order."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(storage.glob("*/*/trials/*/result.json")):
        for line in path.read_text(errors="replace").splitlines():
            try:
                row = json.loads(line)
            except ValueError:  # a line being written, or cut by a kill
                continue
            if isinstance(row, dict) and "trial_id" in row:
                found.setdefault(str(row["trial_id"]), []).append(row)
    return found


# -- the faults ---------------------------------------------------------------------------------


def kill_driver(s: Sweep) -> str | None:
    k = s.rng.randint(1, max(1, s.plan.trials - 2))
    if not s.wait(lambda: s.finished() >= k):
        return None
    from tuning_service.testing.localcluster import kill_session

    killed = kill_session(s.driver.pid)
    s.driver.wait()
    return f"SIGKILL of the driver and its Ray ({killed} processes) after {k} finished trials"


def kill_worker(s: Sweep) -> str | None:
    epoch = s.rng.randint(1, s.plan.epochs - 1)
    found = s.wait(lambda: s.training(epoch))
    if not found:
        return None
    trial_id, pid, at = found
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return None
    return f"SIGKILL of trial {trial_id}'s worker (pid {pid}) after its epoch {at}"


def kill_node(s: Sweep) -> str | None:
    worker, node_id = s.worker
    found = s.wait(lambda: s.training(1, node_id))  # a checkpoint every epoch: it has one
    if not found:
        return None
    from tuning_service.testing.localcluster import kill_session

    killed = kill_session(worker.sid)
    return f"SIGKILL of the worker node ({killed} processes) while trial {found[0]} trained there (epoch {found[2]})"


def restart_postgres(s: Sweep) -> str | None:
    epochs = s.rng.randint(1, 2 * s.plan.trials)
    if not s.wait(lambda: s.epochs() >= epochs):
        return None
    started = time.monotonic()
    s.lab.pg.restart()
    return (
        f"PostgreSQL restarted (down {time.monotonic() - started:.1f}s) after {epochs} epochs were recorded"
    )


def fill_disk(s: Sweep) -> str | None:
    k = s.rng.randint(1, max(1, s.plan.trials - 2))
    if not s.wait(lambda: s.finished() >= k):
        return None
    hold = s.rng.uniform(3.0, 10.0)
    filler = s.storage / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 2**20)
                f.flush()
        except OSError:
            pass
    time.sleep(hold)
    filler.unlink()
    return f"the sweep's 64 MiB disk full for {hold:.0f}s after {k} finished trials"


def _needs_root() -> str | None:
    return None if os.geteuid() == 0 else "needs root to mount a small disk"


@dataclass(frozen=True)
class Fault:
    """One kind of fault: what it does, to which backends, and why it cannot run here (if so)."""

    inject: Callable[[Sweep], str | None]
    backends: tuple[str, ...] = BACKENDS
    unavailable: Callable[[], str | None] = lambda: None


FAULTS: dict[str, Fault] = {
    "driver": Fault(kill_driver),
    "worker": Fault(kill_worker),
    "node": Fault(kill_node),
    "postgres": Fault(restart_postgres, backends=("postgresql",)),
    "disk": Fault(fill_disk, unavailable=_needs_root),
}


@contextmanager
def small_disk(path: Path) -> Iterator[None]:
    """A 64 MiB tmpfs at ``path`` for one sweep's results (the database stays elsewhere)."""
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


# -- one sweep ----------------------------------------------------------------------------------


def run_one(lab: Lab, plan: Plan) -> Outcome:
    """Launch the sweep, inject its fault, resume it until it ends well (or gives up), check it."""
    from tuning_service.testing.localcluster import LocalCluster

    outcome, started = Outcome(plan), time.monotonic()
    storage = lab.workdir / f"sweep-{plan.index:02d}"
    storage.mkdir()
    url = lab.urls[plan.backend]
    args = [
        "run", f"{lab.job}:JOB", "--searcher", plan.searcher, "--scheduler", plan.scheduler,
        "--num-samples", str(plan.trials), "--max-epochs", str(plan.epochs), "--max-concurrent", "2",
        "--checkpoint-frequency", "1", "--max-failures", "2", "--data-limit", "300",
        "--seed", str(plan.seed), "--storage", str(storage), "--db", url, "--format", "json",
    ]  # fmt: skip
    with ExitStack() as stack:
        env = None
        if plan.kind == "disk":
            stack.enter_context(small_disk(storage))
        if plan.kind == "node":
            cluster = LocalCluster.start(ROOT)
            stack.callback(cluster.stop)
            args += ["--address", cluster.gcs]
            env = {**cluster.env, "PYTHONPATH": str(ROOT)}
        sweep = Sweep(lab, plan, storage, lab.launch(args, env))
        stack.callback(sweep.close)
        if plan.kind == "node":
            sweep.worker = cluster.workers[-1]
        first = len(lab.errs) - 1
        outcome.injected = FAULTS[plan.kind].inject(sweep)
        outcome.exits.append(_wait(sweep.driver))
        while outcome.exits[-1] != 0 and len(outcome.exits) <= RESUMES and sweep.sweep_id():
            resume = lab.launch(
                ["resume", sweep.sweep_id() or "", "--db", url, "--storage", str(storage)], env
            )
            outcome.exits.append(_wait(resume))
        outcome.sweep_id = sweep.sweep_id()
        if outcome.sweep_id is None:
            outcome.lost.append("the sweep was never recorded")
        else:
            check(sweep, outcome)
        if outcome.exits[-1] != 0:
            outcome.lost.append(f"still failing after {len(outcome.exits) - 1} resumes: {_last_error(lab)}")
        outcome.tracebacks = [
            err.name for err in lab.errs[first:] if "Traceback" in err.read_text(errors="replace")
        ]
    outcome.wall_s = time.monotonic() - started
    return outcome


def _wait(proc: subprocess.Popen[str]) -> int:
    try:
        return proc.wait(SWEEP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        from tuning_service.testing.localcluster import kill_session

        kill_session(proc.pid)
        proc.wait()
        return -9


def _last_error(lab: Lab) -> str:
    lines = lab.errs[-1].read_text(errors="replace").strip().splitlines() if lab.errs else []
    return lines[-1][:300] if lines else "no message"


def check(sweep: Sweep, outcome: Outcome) -> None:
    """What a user would find missing or wrong once the sweep has ended: into ``outcome.lost``."""
    from tuning_service.store import RANKED

    store, sweep_id, n = sweep.store, outcome.sweep_id or "", sweep.plan.trials
    lost = outcome.lost
    row = store.find_sweep(sweep_id)
    if row.status != "finished":
        lost.append(f"the sweep ended {row.status}: {row.message}")
    trials = store.trials([sweep_id])
    ran = [t for t in trials if t.status != DROPPED]
    outcome.trials, outcome.dropped = len(ran), len(trials) - len(ran)
    outcome.statuses = dict(Counter(t.status for t in trials))
    if len(ran) != n:
        lost.append(f"{len(ran)} trials instead of {n}")
    lost += [f"trial {t.trial_id} is {t.status}" for t in ran if t.status in ("running", "interrupted")]
    if sweep.plan.searcher == "grid" and len({json.dumps(t.config, sort_keys=True) for t in ran}) != len(ran):
        lost.append("a grid point ran twice")
    rows: dict[str, list[int]] = {}
    for epoch in store.epochs(sweep_id):
        rows.setdefault(epoch.trial_id, []).append(epoch.epoch)
    outcome.epochs = sum(len(r) for r in rows.values())
    for trial in trials:
        got = rows.get(trial.trial_id, [])
        if got != list(range(1, trial.epochs + 1)):
            lost.append(f"trial {trial.trial_id}: epoch rows {got}, its summary says {trial.epochs} epochs")
    for trial_id, results in tune_results(sweep.storage).items():
        reported = {int(r["training_iteration"]) for r in results if not r.get("error")}
        missing = sorted(reported - set(rows.get(trial_id, [])))
        if missing:
            lost.append(f"trial {trial_id}: epochs {missing} that Ray Tune reported are not in the database")
    sweep_dir = Path(row.sweep_dir or "")
    files = {}
    for name in ("best_config.json", "trials.json", "sweep.json"):
        try:
            files[name] = json.loads((sweep_dir / name).read_text())
        except (OSError, ValueError) as exc:
            lost.append(f"{name}: {exc}")
    ranked = [t for t in ran if t.status in RANKED and t.value is not None]
    best = max(ranked, key=lambda t: t.value) if ranked else None  # the job's mode is max
    record = files.get("best_config.json")
    if record is not None and (best is None or not math.isclose(record["value"], best.value)):
        lost.append(f"best_config.json says {record['value']}, the database {best.value if best else None}")
    listed = files.get("trials.json")
    if listed is not None and sum(t["status"] != DROPPED for t in listed) != n:
        lost.append(f"trials.json lists {sum(t['status'] != DROPPED for t in listed)} trials instead of {n}")
    if "sweep.json" in files and files["sweep.json"].get("sweep_id") != sweep_id:
        lost.append("sweep.json names another sweep")


# -- the run ------------------------------------------------------------------------------------


def plan_run(args: argparse.Namespace, kinds: list[str], backends: list[str]) -> list[Plan]:
    """Faults spread evenly over the kinds and backends, in a seeded random order."""
    rng = random.Random(args.seed)
    pairs = [(k, b) for k in kinds for b in backends if b in FAULTS[k].backends]
    order = [pairs[i % len(pairs)] for i in range(args.faults)]
    rng.shuffle(order)
    searchers = ("random", "optuna") if args.smoke else SEARCHERS
    return [
        Plan(
            index=i,
            kind=kind,
            backend=backend,
            searcher=rng.choice(searchers),
            scheduler="fifo" if args.smoke else rng.choice(SCHEDULERS),
            trials=3 if args.smoke else TRIALS,
            epochs=2 if args.smoke else EPOCHS,
            seed=rng.randrange(10**6),
        )
        for i, (kind, backend) in enumerate(order, 1)
    ]


def _choices(text: str, allowed: Sequence[str], option: str) -> list[str]:
    chosen = [c.strip() for c in text.split(",") if c.strip()]
    wrong = [c for c in chosen if c not in allowed]
    if wrong or not chosen:
        raise InputError(f"{option} {text!r}: choose among {', '.join(allowed)}")
    return chosen


def body(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from tuning_service.testing.pgserver import PgServer

    kinds = _choices(args.kinds or ("driver,worker" if args.smoke else ",".join(KINDS)), KINDS, "--kinds")
    backends = _choices(
        args.backends or ("sqlite" if args.smoke else ",".join(BACKENDS)), BACKENDS, "--backends"
    )
    if args.faults < 1:
        raise InputError(f"--faults must be at least 1, got {args.faults}")
    skipped = {k: why for k in kinds if (why := FAULTS[k].unavailable())}
    if "postgresql" not in backends:
        skipped.update({k: "only on PostgreSQL" for k in kinds if FAULTS[k].backends == ("postgresql",)})
    kinds = [k for k in kinds if k not in skipped]
    if not kinds:
        raise InputError(f"no fault can run here: {skipped}")
    started = time.monotonic()
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chaos-")))
        pg = None
        if "postgresql" in backends:
            try:
                pg = PgServer.create()
            except RuntimeError as exc:
                raise InputError(f"{exc}; or run with --backends sqlite") from None
            stack.callback(pg.destroy)
        lab = Lab(workdir, pg)
        outcomes = []
        for plan in plan_run(args, kinds, backends):
            outcome = run_one(lab, plan)
            outcomes.append(outcome)
            _log(outcome)
    report = _report(outcomes, skipped, time.monotonic() - started)
    publish(out / "chaos", "chaos", args, _table(report, outcomes, args.smoke), report)
    return report


def _log(o: Outcome) -> None:
    import logging

    problems = [*o.lost, *(f"traceback in {t}" for t in o.tracebacks)]
    verdict = "survived" if o.survived else ("not injected" if o.injected is None else "; ".join(problems))
    logging.getLogger("benchmarks.chaos").info(
        "sweep %d (%s, %s, %s/%s): %s; exits %s; %s in %.0fs",
        o.plan.index, o.plan.kind, o.plan.backend, o.plan.searcher, o.plan.scheduler,
        o.injected or "no fault", o.exits, verdict, o.wall_s,
    )  # fmt: skip


def _report(outcomes: list[Outcome], skipped: dict[str, str], wall: float) -> dict[str, Any]:
    injected = [o for o in outcomes if o.injected is not None]
    return {
        "faults_injected": len(injected),
        "faults_survived": sum(o.survived for o in outcomes),
        "data_lost": sum(len(o.lost) for o in injected),
        "tracebacks": sum(len(o.tracebacks) for o in outcomes),
        "not_injected": len(outcomes) - len(injected),
        "by_kind": {
            k: {
                "injected": sum(o.plan.kind == k for o in injected),
                "survived": sum(o.plan.kind == k and o.survived for o in outcomes),
            }
            for k in KINDS
            if any(o.plan.kind == k for o in outcomes)
        },
        "resumes": sum(len(o.exits) - 1 for o in outcomes),
        "trials": sum(o.trials for o in outcomes),
        "epochs": sum(o.epochs for o in outcomes),
        "dropped": sum(o.dropped for o in outcomes),
        "skipped_kinds": skipped,
        "wall_s": wall,
        "sweeps": [asdict(o) for o in outcomes],
    }


def _table(report: dict[str, Any], outcomes: list[Outcome], smoke: bool) -> str:
    rows = [
        [
            o.plan.index,
            o.plan.kind,
            o.plan.backend,
            f"{o.plan.searcher}/{o.plan.scheduler}",
            o.injected or "not injected (the sweep ended first)",
            len(o.exits) - 1,
            tally(o.statuses, noun=""),
            o.epochs,
            "survived"
            if o.survived
            else "; ".join([*o.lost, *(f"traceback in {t}" for t in o.tracebacks)]) or "-",
        ]
        for o in outcomes
    ]
    totals = [
        ["faults injected", report["faults_injected"]],
        ["faults survived", report["faults_survived"]],
        ["data lost (missing or wrong items)", report["data_lost"]],
        ["commands that printed a traceback", report["tracebacks"]],
        ["resumes", report["resumes"]],
        ["trials / epochs checked", f"{report['trials']} / {report['epochs']}"],
        ["wall time (s)", f"{report['wall_s']:.0f}"],
    ]
    totals += [
        [f"{kind} faults survived", f"{v['survived']} of {v['injected']}"]
        for kind, v in report["by_kind"].items()
    ]
    totals += [[f"{kind} not run", why] for kind, why in report["skipped_kinds"].items()]
    header = ["#", "fault", "database", "searcher", "what was done", "resumes", "trials", "epochs", "outcome"]
    return "\n".join(
        [
            f"## chaos{' (smoke)' if smoke else ''}",
            "",
            markdown_table(["measure", "value"], totals),
            "",
            markdown_table(header, rows),
        ]
    )


def build_parser() -> argparse.ArgumentParser:
    ap = cli.parser("chaos", (__doc__ or "").splitlines()[0])
    ap.add_argument(
        "--faults", type=int, default=None, help="faults to inject, one per sweep (default 20; smoke 2)"
    )
    ap.add_argument(
        "--kinds", help=f"comma-separated, among {', '.join(KINDS)} (default: all; smoke: driver,worker)"
    )
    ap.add_argument("--backends", help="comma-separated: sqlite, postgresql (default both; smoke: sqlite)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    def run(args: argparse.Namespace, out: Path) -> dict[str, Any]:
        if args.faults is None:
            args.faults = 2 if args.smoke else 20
        return body(args, out)

    return cli.main(build_parser(), run, argv, "chaos")


if __name__ == "__main__":
    sys.exit(main())
