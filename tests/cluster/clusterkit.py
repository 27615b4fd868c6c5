"""Helpers for a real two-node Ray cluster on 127.0.0.1 with token auth, owned by these tests alone.

The head is `cluster/start-head.sh` (`ray start --head --block`), the worker is
`tuning-service cluster join`; each runs in a session of its own, so teardown stops
exactly the processes these tests started (never `ray stop`). Every sweep driver is a
subprocess too: the integration tests' shared embedded Ray in this process is never
touched, whatever order the tests run in.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the virtualenv's `ray` and `python`
STOP_GRACE_S = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any Ray setting (the shared embedded Ray sets some)."""
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


@dataclass
class Started:
    """A process tree these tests started, in a session of its own."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def sid(self) -> int:
        return self.process.pid

    def members(self) -> list[int]:
        """Every live process in this session (Ray's workers leave the process group, not the session).

        Read from /proc, as `ps` would: no tool that a slim machine may lack.
        """
        found = []
        for stat_file in Path("/proc").glob("[0-9]*/stat"):
            try:
                # pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses.
                fields = stat_file.read_text().rpartition(")")[2].split()
            except OSError:  # the process ended meanwhile
                continue
            if int(fields[3]) == self.sid:
                found.append(int(stat_file.parent.name))
        return found

    def stop(self) -> None:
        """SIGTERM (Ray's own clean shutdown), then SIGKILL whatever of this session is left."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        for pid in self.members():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process.poll() is None:
            self.process.wait(5)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def start(name: str, argv: list[str], env: dict[str, str], logs: Path) -> Started:
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
        )
    return Started(name, process, log)


@dataclass
class LocalCluster:
    """Addresses of the running test cluster and an environment holding its token."""

    gcs: str
    jobs_url: str
    token_path: Path
    env: dict[str, str]
    home: Path
    client: str = ""  # the Ray Client server, ray://127.0.0.1:PORT
    started: list[Started] = field(default_factory=list)

    def cli(
        self, *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT, timeout: float = 240
    ) -> subprocess.CompletedProcess[str]:
        """`tuning-service ARGS` in a subprocess (with the token unless ``env`` says otherwise)."""
        return subprocess.run(
            [sys.executable, "-m", "tuning_service", *args],
            env=env if env is not None else self.env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token_path.read_text().strip()}"}

    def get(self, path: str) -> object:
        """GET from the head's dashboard with the token (in this process: no Ray imported)."""
        response = requests.get(f"{self.jobs_url}{path}", headers=self.headers, timeout=30)
        response.raise_for_status()
        return response.json()

    def alive_nodes(self) -> list[dict[str, object]]:
        rows = self.get("/api/v0/nodes?limit=100&detail=false")["data"]["result"]["result"]  # type: ignore[index]
        return [r for r in rows if r["state"] == "ALIVE"]

    def submission_ids(self) -> set[str]:
        return {j["submission_id"] for j in self.get("/api/jobs/")}  # type: ignore[union-attr]

    def without_token(self, **extra: str) -> dict[str, str]:
        """The same environment with no token at all (and none in the user's home)."""
        env = {k: v for k, v in self.env.items() if k not in ("RAY_AUTH_TOKEN_PATH", "RAY_AUTH_TOKEN")}
        env["HOME"] = str(self.home / "empty-home")
        env.update(extra)
        return env


def wait_for(what: str, ready: object, started: list[Started], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for s in started:
            if s.process.poll() is not None:
                pytest.fail(f"{s.name} exited ({s.process.returncode}) while waiting for {what}:\n{s.tail()}")
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}:\n" + "\n".join(s.tail() for s in started))


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False
