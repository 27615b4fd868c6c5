"""The two-node Ray cluster on 127.0.0.1 (head + worker, 1 CPU each, token auth) for these tests.

It starts for the first test that asks for it and stops as soon as the next test is
not one of this directory's, so the rest of the suite never shares 2 cores with it;
in any test order it starts again when needed.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from clusterkit import ROOT, LocalCluster, answers, clean_env, free_port, start, wait_for

HERE = Path(__file__).parent
_running: dict[str, LocalCluster] = {}


def start_cluster() -> LocalCluster:
    # Short: Ray's socket paths under the temp dir must stay within 107 bytes.
    home = Path(tempfile.mkdtemp(prefix="ts-cl-"))
    token_path = home / "token"  # created by start-head.sh
    env = clean_env(
        RAY_AUTH_TOKEN_PATH=str(token_path),
        HOME=str(home),  # nothing may land in the real ~/.ray
        # Fixed default ports of Ray's metrics exporters, taken by any other Ray on this machine.
        AUTOSCALER_METRIC_PORT=str(free_port()),
        DASHBOARD_METRIC_PORT=str(free_port()),
        # A node that stops answering is declared dead within ~3 s instead of ~25 s
        # (the node-loss test waits for it; the other tests must then see two nodes again).
        RAY_health_check_period_ms="1000",
        RAY_health_check_timeout_ms="1000",
        RAY_health_check_failure_threshold="3",
    )
    gcs_port, dashboard_port, client_port = free_port(), free_port(), free_port()
    head_argv = ["bash", str(ROOT / "cluster" / "start-head.sh"), "--port", str(gcs_port)]
    head_argv += ["--dashboard-port", str(dashboard_port), "--num-cpus", "1", "--num-gpus", "0"]
    head_argv += ["--ray-client-server-port", str(client_port)]
    for flag in (
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--runtime-env-agent-port",
        "--metrics-export-port",
        "--node-manager-port",
        "--object-manager-port",
    ):
        head_argv += [flag, str(free_port())]
    head_argv += ["--temp-dir", str(home / "ray"), "--object-store-memory", str(120 * 2**20), "--block"]
    cluster = LocalCluster(
        gcs=f"127.0.0.1:{gcs_port}",
        jobs_url=f"http://127.0.0.1:{dashboard_port}",
        token_path=token_path,
        env=env,
        home=home,
        client=f"ray://127.0.0.1:{client_port}",
    )
    try:
        head = start("head", head_argv, env, home)
        cluster.started.append(head)
        wait_for("the head's dashboard", lambda: answers("127.0.0.1", dashboard_port), [head], 90)
        worker = start(
            "worker",
            [sys.executable, "-m", "tuning_service", "cluster", "join", cluster.gcs, "--num-cpus", "1"]
            + ["--num-gpus", "0", "--object-store-memory", str(100 * 2**20)],
            env,
            home,
        )
        cluster.started.append(worker)
        wait_for("the worker node", lambda: "joined" in worker.tail(), [head, worker], 90)
        wait_for("two alive nodes", lambda: _count_alive(cluster) == 2, [head, worker], 60)
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def _count_alive(cluster: LocalCluster) -> int:
    try:
        return len(cluster.alive_nodes())
    except (OSError, ValueError, KeyError):  # the dashboard is still starting
        return -1


def stop_cluster(cluster: LocalCluster) -> None:
    """Stop the worker, then the head; every process they started, and nothing else."""
    problems = []
    for started in reversed(cluster.started):
        try:
            started.stop()
        except Exception as exc:  # stop the others all the same
            problems.append(f"{started.name}: {exc!r}")
    shutil.rmtree(cluster.home, ignore_errors=True)
    assert not problems, problems


@pytest.fixture
def local_cluster() -> LocalCluster:
    """The running test cluster, started on first use."""
    if "cluster" not in _running:
        _running["cluster"] = start_cluster()
    return _running["cluster"]


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if "cluster" in _running and (nextitem is None or HERE not in Path(nextitem.path).parents):
        stop_cluster(_running.pop("cluster"))


def pytest_sessionfinish(session: pytest.Session) -> None:
    if "cluster" in _running:  # interrupted: still stop what was started
        stop_cluster(_running.pop("cluster"))
