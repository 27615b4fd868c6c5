"""A Ray cluster of a head and worker nodes on 127.0.0.1 with token auth, for tests and the chaos run.

The head is the repository's `cluster/start-head.sh` (`ray start --head --block`), a worker
is `tuning-service cluster join`; each runs in a session of its own, so stopping one stops
exactly the processes it started (never `ray stop`, which stops every Ray on the machine).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent  # the virtualenv's `ray` and `python`
# What `tuning-service cluster join` says once its node is up.
_JOINED = re.compile(r"node ([0-9a-f]+) joined")
STOP_GRACE_S = 20.0


class ClusterError(RuntimeError):
    """A node did not come up (or went away) in time; the message holds its log's tail."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any Ray setting (an embedded Ray here sets some)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_") and k != "TUNING_SERVICE_DB"}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        RAY_USAGE_STATS_ENABLED="0",
        # SIGTERM drains a node for 30 s by default; these nodes serve nothing.
        RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0",
        KERAS_BACKEND="tensorflow",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def session_cpu(sid: int) -> dict[int, float]:
    """Every live process of session ``sid`` with the CPU seconds (user + system) it has used.

    Read from /proc, as `ps` would: no tool that a slim machine may lack. Ray's workers leave
    the process group, not the session.
    """
    found = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp session ... utime stime; comm may hold spaces and parentheses.
            fields = stat_file.read_text().rpartition(")")[2].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[3]) == sid:
            found[int(stat_file.parent.name)] = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    return found


def session_members(sid: int) -> list[int]:
    """Every live process of session ``sid``."""
    return list(session_cpu(sid))


def command_line(pid: int) -> str | None:
    """Process ``pid``'s command line, its arguments joined by spaces; None once it has ended."""
    try:
        return (
            (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return None


def descendants(pid: int) -> list[tuple[int, list[str]]]:
    """Every live descendant of process ``pid``, with its arguments (a process's title, where it
    set one, is its first argument: Ray's workers name themselves ``ray::IDLE`` and the like)."""
    children: dict[int, list[tuple[int, list[str]]]] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat_file.read_text().rpartition(")")[2].split()[1])
            argv = (stat_file.parent / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except (OSError, IndexError, ValueError):  # the process ended meanwhile
            continue
        children.setdefault(ppid, []).append((int(stat_file.parent.name), [a for a in argv if a]))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def kill_session(sid: int) -> int:
    """SIGKILL every process of session ``sid`` at once, as a machine losing power; how many there were."""
    members = session_members(sid)
    for pid in members:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(members)


@dataclass
class Started:
    """A process tree started in a session of its own."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def sid(self) -> int:
        return self.process.pid

    def members(self) -> list[int]:
        return session_members(self.sid)

    def stop(self) -> None:
        """SIGTERM (Ray's own clean shutdown), then SIGKILL whatever of this session is left."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        kill_session(self.sid)
        if self.process.poll() is None:
            self.process.wait(5)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def start(name: str, argv: list[str], env: dict[str, str], logs: Path, cwd: Path) -> Started:
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True
        )
    return Started(name, process, log)


def wait_until(what: str, ready: Callable[[], Any], started: list[Started], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for s in started:
            if s.process.poll() is not None:
                raise ClusterError(
                    f"{s.name} exited ({s.process.returncode}) while waiting for {what}:\n{s.tail()}"
                )
        if ready():
            return
        time.sleep(0.5)
    raise ClusterError(f"timed out waiting for {what}:\n" + "\n".join(s.tail() for s in started))


@dataclass
class LocalCluster:
    """Addresses of a running cluster and an environment holding its token."""

    root: Path  # the repository: cluster/start-head.sh
    gcs: str
    jobs_url: str
    token_path: Path
    env: dict[str, str]
    home: Path
    client: str = ""  # the Ray Client server, ray://127.0.0.1:PORT
    started: list[Started] = field(default_factory=list)
    workers: list[tuple[Started, str]] = field(default_factory=list)  # each worker node and its node id

    @classmethod
    def start(cls, root: Path) -> LocalCluster:
        """A head and one worker node, 1 CPU each; ClusterError (everything stopped) if one fails."""
        # Short: Ray's socket paths under the temp dir must stay within 107 bytes.
        home = Path(tempfile.mkdtemp(prefix="ts-cl-"))
        env = clean_env(
            RAY_AUTH_TOKEN_PATH=str(home / "token"),  # created by start-head.sh
            HOME=str(home),  # nothing may land in the real ~/.ray
            # Fixed default ports of Ray's metrics exporters, taken by any other Ray on this machine.
            AUTOSCALER_METRIC_PORT=str(free_port()),
            DASHBOARD_METRIC_PORT=str(free_port()),
            # A node that stops answering is declared dead within ~3 s instead of ~25 s.
            RAY_health_check_period_ms="1000",
            RAY_health_check_timeout_ms="1000",
            RAY_health_check_failure_threshold="3",
        )
        gcs_port, dashboard_port, client_port = free_port(), free_port(), free_port()
        head = ["bash", str(root / "cluster" / "start-head.sh"), "--port", str(gcs_port)]
        head += ["--dashboard-port", str(dashboard_port), "--num-cpus", "1", "--num-gpus", "0"]
        head += ["--ray-client-server-port", str(client_port)]
        for flag in (
            "--dashboard-agent-listen-port",
            "--dashboard-agent-grpc-port",
            "--runtime-env-agent-port",
            "--metrics-export-port",
            "--node-manager-port",
            "--object-manager-port",
        ):
            head += [flag, str(free_port())]
        head += ["--temp-dir", str(home / "ray"), "--object-store-memory", str(120 * 2**20), "--block"]
        cluster = cls(
            root,
            f"127.0.0.1:{gcs_port}",
            f"http://127.0.0.1:{dashboard_port}",
            home / "token",
            env,
            home,
            client=f"ray://127.0.0.1:{client_port}",
        )
        try:
            cluster.started.append(start("head", head, env, home, root))
            wait_until(
                "the head's dashboard", lambda: answers("127.0.0.1", dashboard_port), cluster.started, 90
            )
            cluster.join_worker()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def join_worker(self) -> tuple[Started, str]:
        """One more worker node (1 CPU), once the head sees it alive; its process tree and node id."""
        worker = start(
            f"worker{len(self.started)}",
            [sys.executable, "-m", "tuning_service", "cluster", "join", self.gcs, "--num-cpus", "1"]
            + ["--num-gpus", "0", "--object-store-memory", str(100 * 2**20)],
            self.env,
            self.home,
            self.root,
        )
        self.started.append(worker)
        wait_until("the worker node", lambda: _JOINED.search(worker.tail()), self.started, 90)
        node_id = _JOINED.search(worker.tail()).group(1)  # type: ignore[union-attr]
        wait_until("it to be alive", lambda: node_id in self.alive_ids(), self.started, 60)
        self.workers.append((worker, node_id))
        return worker, node_id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token_path.read_text().strip()}"}

    def get(self, path: str) -> Any:
        """GET from the head's dashboard with the token (no Ray imported here)."""
        import requests

        response = requests.get(f"{self.jobs_url}{path}", headers=self.headers, timeout=30)
        response.raise_for_status()
        return response.json()

    def alive_nodes(self) -> list[dict[str, Any]]:
        rows = self.get("/api/v0/nodes?limit=100&detail=false")["data"]["result"]["result"]
        return [r for r in rows if r["state"] == "ALIVE"]

    def alive_ids(self) -> set[str]:
        try:
            return {n["node_id"] for n in self.alive_nodes()}
        except (OSError, ValueError, KeyError):  # the dashboard is still starting
            return set()

    def stop(self) -> list[str]:
        """Stop the workers, then the head: every process they started, and nothing else; problems met."""
        problems = []
        for started in reversed(self.started):
            try:
                started.stop()
            except Exception as exc:  # noqa: BLE001 - stop the others all the same
                problems.append(f"{started.name}: {exc!r}")
        self.started.clear()
        shutil.rmtree(self.home, ignore_errors=True)
        return problems
