"""Helpers for fault-tolerance tests: a small job whose grid has exactly 12 points, and drivers run as processes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

# 3 x 2 x 2 = 12 grid points; a continuous learning rate for the other searchers.
JOB_FILE = '''\
"""Digits with a 12-point grid: the fault-tolerance tests' job."""
from jobs.digits import load_data
from tuning_service.job import Job
from tuning_service.models import build_mlp
from tuning_service.space import Choice, Float, Int

JOB = Job(
    name="resumable",
    description="digits MLP, small space",
    space={
        "learning_rate": Float(1e-3, 5e-2, log=True, grid=(3e-3, 1e-2, 3e-2)),
        "units": Int(8, 64, log=True, grid=(16, 32)),
        "batch_size": Choice((32, 64)),
    },
    load_data=load_data,
    build_model=build_mlp,
    metric="val_accuracy",
    mode="max",
    max_epochs=3,
    defaults={"optimizer": "adam", "layers": 1, "activation": "relu"},
)
'''


@pytest.fixture
def job_file(tmp_path: Path) -> str:
    path = tmp_path / "resumable_job.py"
    path.write_text(JOB_FILE)
    return f"{path}:JOB"


class Driver(subprocess.Popen):
    """A `tuning-service` process whose output goes to files (a full pipe would block it)."""

    def __init__(self, args: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> None:
        self.log = log
        with open(log.with_suffix(".out"), "w") as out, open(log.with_suffix(".err"), "w") as err:
            super().__init__(
                args, cwd=cwd, env=env, stdout=out, stderr=err, text=True, start_new_session=True
            )

    def communicate(self, input=None, timeout=None):  # noqa: A002 - Popen's signature
        self.wait(timeout=timeout)
        return self.log.with_suffix(".out").read_text(), self.log.with_suffix(".err").read_text()

    @property
    def stderr_text(self) -> str:
        return self.log.with_suffix(".err").read_text()


_runs = iter(range(10**6))


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Driver:
    """`tuning-service ARGS` as its own process group (so the test can clean up what it started);
    its stdout and stderr are kept in files next to the run (`cli-N.out`, `cli-N.err`)."""
    return Driver(
        [sys.executable, "-m", "tuning_service", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        log=Path(cwd) / f"cli-{next(_runs)}.log",
    )


def finished_trials(db: Path) -> int:
    """Trials the store has seen finish (0 while the database does not exist yet)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute(
                "select count(*) from trials where status not in ('running', 'interrupted')"
            ).fetchone()[0]
    except sqlite3.OperationalError:  # the schema is still being created
        return 0


def wait_for(
    predicate, *, timeout: float, what: str, proc: subprocess.Popen | None = None, every: float = 0.2
) -> None:
    """Until ``predicate()`` holds, asked every ``every`` seconds; fails if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"the driver exited ({proc.returncode}) before {what}: {_stderr(proc)[-3000:]}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def _stderr(proc: subprocess.Popen) -> str:
    """What a process wrote on stderr: a `Driver` keeps it in a file, a plain Popen in a pipe."""
    if isinstance(proc, Driver):
        return proc.stderr_text
    return proc.stderr.read() if proc.stderr is not None else ""


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the driver, then whatever it started that outlived it (same process group)."""
    proc.kill()
    proc.wait(timeout=30)
    time.sleep(1)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def result_lines(storage: Path) -> dict[str, list[dict]]:
    """Every trial's results as Tune wrote them to trials/<trial>/result.json (node, pid, epoch)."""
    found = {}
    for path in storage.glob("*/*/trials/*/result.json"):
        rows = []
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line being written
                pass
        found[path.parent.name] = rows
    return found


class MemoryCgroup:
    """A memory cgroup of its own for one process tree (cgroup v1 or v2): past its limit, the kernel's
    OOM killer acts inside it alone, as on a machine that runs out of memory."""

    def __init__(self, path: Path, version: int) -> None:
        self.path, self.version = path, version

    @classmethod
    def create(cls, limit_bytes: int) -> MemoryCgroup:
        """pytest.skip with the reason when this machine gives us none (needs root)."""
        name = f"tuning-service-test-{os.getpid()}-{next(_runs)}"
        v1, v2 = Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup")
        try:
            if (v1 / "memory.limit_in_bytes").exists():
                group = cls(v1 / name, 1)
                group.path.mkdir()
                (group.path / "memory.limit_in_bytes").write_text(str(limit_bytes))
                return group
            if "memory" in (v2 / "cgroup.subtree_control").read_text().split():
                group = cls(v2 / name, 2)
                group.path.mkdir()
                (group.path / "memory.max").write_text(str(limit_bytes))
                (group.path / "memory.swap.max").write_text("0")
                return group
        except OSError as exc:
            pytest.skip(f"cannot make a memory cgroup here ({exc}); this test needs root and cgroups")
        pytest.skip("no cgroup v1 memory controller nor cgroup v2 with memory enabled at /sys/fs/cgroup")

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the group (its children too)."""
        return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.path / "cgroup.procs"), *argv]

    def oom_kills(self) -> int:
        text = (self.path / ("memory.oom_control" if self.version == 1 else "memory.events")).read_text()
        return next(int(line.split()[1]) for line in text.splitlines() if line.startswith("oom_kill "))

    def destroy(self) -> None:
        for _ in range(50):
            pids = (self.path / "cgroup.procs").read_text().split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.2)
