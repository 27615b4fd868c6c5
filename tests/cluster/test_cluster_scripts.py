"""cluster/start-head.sh and join-worker.sh against a stand-in `ray`: token, binding, refusals."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from clusterkit import ROOT

FAKE_RAY = """#!/usr/bin/env python3
import json, os, sys
keys = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
with open(os.environ["FAKE_RAY_OUT"], "w") as out:
    json.dump({"argv": sys.argv[1:], "env": {k: os.environ.get(k) for k in keys}}, out)
"""


@pytest.fixture
def fake(tmp_path):
    """Run a cluster script with `ray` replaced by a recorder; returns (result, what ray got)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ray").write_text(FAKE_RAY)
    (bin_dir / "ray").chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    record = tmp_path / "ray-call.json"

    def run(script: str, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], dict | None]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        base.update(PATH=f"{bin_dir}{os.pathsep}{base['PATH']}", HOME=str(home), FAKE_RAY_OUT=str(record))
        record.unlink(missing_ok=True)
        done = subprocess.run(
            ["bash", str(ROOT / "cluster" / script), *args],
            env={**base, **env},
            capture_output=True,
            text=True,
            timeout=30,
        )
        return done, json.loads(record.read_text()) if record.exists() else None

    run.home = home  # type: ignore[attr-defined]
    return run


def test_start_head_creates_a_private_token_and_binds_loopback_by_default(fake):
    done, ray = fake("start-head.sh", "--port", "6380", "--block")
    token_file = fake.home / ".ray" / "auth_token"
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text()
    assert len(token) == 64 and int(token, 16) >= 0
    assert ray["argv"][:4] == [
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        "--dashboard-host=127.0.0.1",
    ]
    assert ray["argv"][-3:] == ["--port", "6380", "--block"]
    assert ray["env"]["RAY_AUTH_MODE"] == "token"
    assert ray["env"]["RAY_AUTH_TOKEN_PATH"] == str(token_file)
    assert ray["env"]["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
    assert token not in done.stdout + done.stderr + " ".join(ray["argv"])

    again, _ = fake("start-head.sh")
    assert again.returncode == 0 and token_file.read_text() == token  # generated once, then reused


def test_start_head_binds_beyond_loopback_only_when_asked(fake, tmp_path):
    token = tmp_path / "token"
    done, ray = fake(
        "start-head.sh",
        "--host",
        "10.0.0.5",
        "--dashboard-host=0.0.0.0",
        RAY_AUTH_TOKEN_PATH=str(token),
    )
    assert done.returncode == 0, done.stderr
    assert "--node-ip-address=10.0.0.5" in ray["argv"] and "--dashboard-host=0.0.0.0" in ray["argv"]
    assert ray["env"]["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] is None
    assert ray["env"]["RAY_AUTH_TOKEN_PATH"] == str(token) and token.stat().st_size == 64


def test_start_head_refuses_a_token_others_can_read(fake, tmp_path):
    token = tmp_path / "token"
    token.write_text("a" * 64)
    token.chmod(0o644)
    done, ray = fake("start-head.sh", RAY_AUTH_TOKEN_PATH=str(token))
    assert done.returncode == 2 and ray is None
    assert (
        f"error: {token} has mode -rw-r--r--; the token must be readable by you only: chmod 600 {token}"
        in (done.stderr)
    )


def test_join_worker_needs_the_token_before_starting_anything(fake):
    done, ray = fake("join-worker.sh", "10.0.0.5:6379")
    assert done.returncode == 2 and ray is None
    assert "error: no cluster token at" in done.stderr and "scp HEAD:~/.ray/auth_token" in done.stderr


def test_join_worker_passes_the_token_by_path_only(fake, tmp_path):
    token = tmp_path / "token"
    token.write_text("b" * 64)
    token.chmod(0o600)
    done, ray = fake("join-worker.sh", "10.0.0.5:6379", "--num-cpus", "4", RAY_AUTH_TOKEN_PATH=str(token))
    assert done.returncode == 0, done.stderr
    assert ray["argv"][:2] == ["start", "--address=10.0.0.5:6379"] and ray["argv"][-2:] == ["--num-cpus", "4"]
    assert ray["env"]["RAY_AUTH_MODE"] == "token" and ray["env"]["RAY_AUTH_TOKEN_PATH"] == str(token)
    assert "b" * 64 not in " ".join(ray["argv"])


def test_join_worker_points_a_loopback_head_to_cluster_join(fake):
    done, ray = fake("join-worker.sh", "127.0.0.1:6379")
    assert done.returncode == 2 and ray is None
    assert "tuning-service cluster join 127.0.0.1:6379" in done.stderr


def test_the_scripts_are_executable():
    for script in ("start-head.sh", "join-worker.sh"):
        assert Path(ROOT / "cluster" / script).stat().st_mode & stat.S_IXUSR


def test_start_head_replaces_an_empty_token_file_others_can_read_instead_of_writing_into_it(fake, tmp_path):
    """Before: the token was written into the existing 0644 file, then the mode check failed:
    the new token was left readable by everyone."""
    token = tmp_path / "token"
    token.write_text("")
    token.chmod(0o644)
    done, ray = fake("start-head.sh", RAY_AUTH_TOKEN_PATH=str(token))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(token.stat().st_mode) == 0o600 and len(token.read_text()) == 64
    assert ray["env"]["RAY_AUTH_TOKEN_PATH"] == str(token)


def test_start_head_never_writes_the_token_through_a_symbolic_link(fake, tmp_path):
    """Before: a link at the token's path sent the token into whatever file it named."""
    public = tmp_path / "public" / "token.txt"
    public.parent.mkdir()
    public.write_text("")
    public.chmod(0o644)
    token = tmp_path / "token"
    token.symlink_to(public)
    done, _ = fake("start-head.sh", RAY_AUTH_TOKEN_PATH=str(token))
    assert done.returncode == 0, done.stderr
    assert public.read_text() == ""  # nothing went through the link
    assert not token.is_symlink() and stat.S_IMODE(token.stat().st_mode) == 0o600


def test_start_head_warns_that_host_exposes_the_metrics_endpoints(fake, tmp_path):
    token = tmp_path / "token"
    done, _ = fake("start-head.sh", "--host", "10.0.0.5", RAY_AUTH_TOKEN_PATH=str(token))
    assert done.returncode == 0
    assert "warning: with --host 10.0.0.5, Ray's cluster ports and its metrics endpoints" in done.stderr
    loopback, _ = fake("start-head.sh", RAY_AUTH_TOKEN_PATH=str(token))
    assert "warning" not in loopback.stderr


def test_start_head_turns_token_mode_on_whatever_the_environment_says(fake, tmp_path):
    done, ray = fake("start-head.sh", RAY_AUTH_TOKEN_PATH=str(tmp_path / "token"), RAY_AUTH_MODE="disabled")
    assert done.returncode == 0 and ray["env"]["RAY_AUTH_MODE"] == "token"


def test_join_worker_refuses_a_token_others_can_read(fake, tmp_path):
    """Before: a worker started with a token file anyone could read."""
    token = tmp_path / "token"
    token.write_text("b" * 64)
    token.chmod(0o644)
    done, ray = fake("join-worker.sh", "10.0.0.5:6379", RAY_AUTH_TOKEN_PATH=str(token))
    assert done.returncode == 2 and ray is None
    assert f"error: {token} has mode -rw-r--r--; the token must be readable by you only" in done.stderr
