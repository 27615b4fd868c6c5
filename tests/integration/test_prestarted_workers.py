"""Trials run on the workers Ray starts with the node, which import TensorFlow while Tune sets up."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tuning_service.raysession import PRELOAD_ENV

pytestmark = pytest.mark.integration

NIL_JOB = "ffffffff"  # the job id in the log names of workers started before any job


def test_the_default_sweeps_trials_run_on_workers_started_with_the_node(tmp_path):
    # A short folder of its own for Ray's session: its socket paths have a length limit.
    ray_tmp = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
    try:
        env = {k: v for k, v in os.environ.items() if k != PRELOAD_ENV}
        done = subprocess.run(
            [sys.executable, "-m", "tuning_service", "-q", "run", "digits", "--num-samples", "2"]
            + ["--max-epochs", "1", "--data-limit", "200", "--storage", str(tmp_path / "r")]
            + ["--format", "json"],
            env={**env, "RAY_TMPDIR": str(ray_tmp)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        pids = {
            json.loads(path.read_text().splitlines()[0])["pid"]
            for path in (tmp_path / "r").glob("digits/*/trials/*/result.json")
        }
        (session,) = ray_tmp.glob("ray/session_2*")  # Ray keeps its sessions in RAY_TMPDIR/ray
        prestarted = {
            int(log.stem.rsplit("-", 1)[1]) for log in (session / "logs").glob(f"worker-*-{NIL_JOB}-*.out")
        }
        assert pids and pids <= prestarted, (pids, prestarted)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
