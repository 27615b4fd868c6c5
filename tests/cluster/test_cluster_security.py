"""Secure by default: the token is required of clients and workers, nothing listens beyond loopback."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clusterkit import ROOT, clean_env, free_port

pytestmark = pytest.mark.integration

REFUSED = "refused this client"


def test_the_head_script_wrote_a_token_only_its_owner_can_read(local_cluster):
    mode = stat.S_IMODE(local_cluster.token_path.stat().st_mode)
    assert mode == 0o600
    assert len(local_cluster.token_path.read_text()) == 64
    assert not (local_cluster.home / "empty-home").exists()  # nothing was written for token-less runs


def test_a_client_without_the_token_is_refused_quickly_and_clearly(local_cluster, tmp_path):
    started = time.monotonic()
    sweep = local_cluster.cli(
        "run",
        "tuning_service.testing:tiny_job",
        "--address",
        local_cluster.gcs,
        "--storage",
        str(tmp_path / "results"),
        env=local_cluster.without_token(),
        timeout=60,
    )
    took = time.monotonic() - started
    assert sweep.returncode == 2
    assert (
        f"error: the Ray cluster at {local_cluster.gcs} {REFUSED}: this machine has no token" in sweep.stderr
    )
    assert "RAY_AUTH_TOKEN_PATH" in sweep.stderr  # says how to get the token
    assert took < 30
    wrong = local_cluster.cli(
        "cluster",
        "nodes",
        local_cluster.gcs,
        env=local_cluster.without_token(RAY_AUTH_TOKEN="f" * 64),
        timeout=60,
    )
    assert wrong.returncode == 2
    assert "the token from the RAY_AUTH_TOKEN environment variable is not this cluster's" in wrong.stderr


def test_a_worker_without_the_token_is_refused_and_never_joins(local_cluster):
    joins = [
        subprocess.Popen(
            [sys.executable, "-m", "tuning_service", "cluster", "join", local_cluster.gcs, "--num-cpus", "1"],
            env=local_cluster.without_token(**token),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for token in ({}, {"RAY_AUTH_TOKEN": "f" * 64})
    ]
    for join in joins:
        _, err = join.communicate(timeout=60)
        assert join.returncode == 2
        assert f"the Ray cluster at {local_cluster.gcs} {REFUSED}" in err
    assert len(local_cluster.alive_nodes()) == 2


@pytest.mark.skipif(
    shutil.which("ss") is None, reason="ss (Debian's iproute2) is not installed; .ci/run installs it"
)
def test_nothing_of_the_cluster_listens_beyond_loopback(local_cluster):
    pids = [pid for started in local_cluster.started for pid in started.members()]
    listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True)
    ours = [
        line.split()[3]
        for line in listening.stdout.splitlines()
        if any(f"pid={pid}," in line for pid in pids)
    ]
    assert ours, "found no listening sockets of the cluster's processes"
    assert all(addr.rsplit(":", 1)[0] in ("127.0.0.1", "[::ffff:127.0.0.1]", "[::1]") for addr in ours), ours


def test_an_unreachable_address_fails_fast_with_a_clear_error(tmp_path):
    closed = free_port()  # nothing listens there once the probe socket is closed
    env = clean_env(HOME=str(tmp_path))
    cases = {
        "run": (
            ["--address", f"127.0.0.1:{closed}", "--storage", str(tmp_path / "r")],
            "cannot reach Ray at",
        ),
        "submit": (["--address", f"http://127.0.0.1:{closed}"], "cannot reach the Ray Jobs API at"),
    }
    started = time.monotonic()
    running = {
        command: subprocess.Popen(
            [sys.executable, "-m", "tuning_service", command, *argv],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command, (argv, _) in cases.items()
    }
    for command, process in running.items():
        _, err = process.communicate(timeout=60)
        assert process.returncode == 2, err
        assert err.startswith(f"error: {cases[command][1]} 127.0.0.1:{closed} (Connection refused"), err
    # Both commands at once on 2 busy cores, imports included; Ray alone retries for a minute.
    assert time.monotonic() - started < 30


def test_a_driver_on_a_machine_without_a_node_of_the_cluster_is_refused_at_once(local_cluster):
    # Pretend this machine runs no Ray node: ray.init would wait a minute, then fail obscurely.
    code = (
        "import ray._private.services as services\n"
        "from tuning_service.raytune.raysession import check_cluster_access, check_local_node, prepare_cluster_client\n"
        f"prepare_cluster_client({local_cluster.gcs!r})\n"
        f"client = check_cluster_access('127.0.0.1', {local_cluster.gcs.rsplit(':', 1)[1]})\n"
        "services.find_node_ids = lambda: []\n"
        f"check_local_node(client, {local_cluster.gcs!r})\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=local_cluster.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert f"no node of the Ray cluster at {local_cluster.gcs} runs on this machine" in done.stderr
    assert "tuning-service submit --address http://HEAD:8265" in done.stderr


CLIENT_PROBE = """
import os, sys, time, ray
from tuning_service.raytune.raysession import connect_client
started = time.monotonic()
try:
    connect_client(lambda: ray.util.connect(sys.argv[1].removeprefix("ray://"), connection_retries=1), sys.argv[1])
except ConnectionError as exc:
    print(f"refused after {time.monotonic() - started:.0f}s: {exc}")
    sys.exit(3)
print("ran as uid", ray.get(ray.remote(lambda: os.getuid()).remote()))
"""


def test_the_ray_client_port_enforces_the_token(local_cluster):
    """Ray 2.60's Ray Client server (port 10001 by default, used by `ray://` addresses such as the
    CronJob example's) refuses a client without the cluster's token or with a wrong one: the
    handshake never completes. The same client with the token runs code (connecting as sweeps
    do, again where Ray's server for the client died starting: ray-project/ray#63202). The three
    clients run at once: a refused one only waits for its handshake's timeout."""
    envs = {
        "no token": local_cluster.without_token(),
        "wrong token": local_cluster.without_token(RAY_AUTH_TOKEN="f" * 64, RAY_AUTH_MODE="token"),
        "token": {**local_cluster.env, "RAY_AUTH_MODE": "token"},
    }
    probes = {
        name: subprocess.Popen(
            [sys.executable, "-c", CLIENT_PROBE, local_cluster.client],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, env in envs.items()
    }
    done = {}
    try:
        for name, probe in probes.items():
            out, err = probe.communicate(timeout=120)
            done[name] = (probe.returncode, out, err)
    finally:
        for probe in probes.values():
            if probe.poll() is None:
                probe.kill()
                probe.wait()
    for name in ("no token", "wrong token"):
        code, out, err = done[name]
        assert code == 3, f"{name}: {out}{err[-2000:]}"
        assert "ray client connection timeout" in out, name
    code, out, err = done["token"]
    assert code == 0 and "ran as uid" in out, out + err[-2000:] + client_server_logs(local_cluster.home)


def client_server_logs(home: Path) -> str:
    """The tails of the head's Ray Client server logs, which name why a client's server did not start."""
    logs = sorted((home / "ray" / "session_latest" / "logs").glob("ray_client_server*.err"))
    return "".join(f"\n== {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in logs)
