"""Helpers for a real two-node Ray cluster on 127.0.0.1 with token auth, owned by these tests alone.

The cluster itself is `tuning_service.testing.localcluster` (the head is
`cluster/start-head.sh`, the worker `tuning-service cluster join`, each in a session of its
own, so teardown stops exactly the processes these tests started, never `ray stop`). Every
sweep driver is a subprocess too: the integration tests' shared embedded Ray in this process
is never touched, whatever order the tests run in.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tuning_service.testing import localcluster
from tuning_service.testing.localcluster import ClusterError, Started, answers, clean_env, free_port

__all__ = ["ROOT", "LocalCluster", "Started", "answers", "clean_env", "free_port", "start", "wait_for"]

ROOT = Path(__file__).resolve().parents[2]


def start(name: str, argv: list[str], env: dict[str, str], logs: Path) -> Started:
    return localcluster.start(name, argv, env, logs, ROOT)


def wait_for(what: str, ready: object, started: list[Started], timeout: float) -> None:
    try:
        localcluster.wait_until(what, ready, started, timeout)  # type: ignore[arg-type]
    except ClusterError as exc:
        pytest.fail(str(exc))


class LocalCluster(localcluster.LocalCluster):
    """The running test cluster, with what the tests ask of it."""

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

    def submission_ids(self) -> set[str]:
        return {j["submission_id"] for j in self.get("/api/jobs/")}

    def without_token(self, **extra: str) -> dict[str, str]:
        """The same environment with no token at all (and none in the user's home)."""
        env = {k: v for k, v in self.env.items() if k not in ("RAY_AUTH_TOKEN_PATH", "RAY_AUTH_TOKEN")}
        env["HOME"] = str(self.home / "empty-home")
        env.update(extra)
        return env
