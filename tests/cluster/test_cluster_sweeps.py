"""Sweeps driven from a client against a real two-node cluster: trials land on both nodes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPREAD_JOB = str(Path(__file__).with_name("spread_job.py"))


def _trial_results(sweep_dir: Path) -> list[list[dict[str, object]]]:
    """Every epoch result each trial reported, as Ray Tune wrote them (all keys kept)."""
    return [
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for path in sorted((sweep_dir / "trials").glob("*/result.json"))
    ]


def test_a_sweep_runs_its_trials_on_both_nodes_and_records_where(local_cluster, tmp_path):
    nodes = {n["node_id"] for n in local_cluster.alive_nodes()}
    listed = local_cluster.cli("cluster", "nodes", local_cluster.gcs, "--format", "json", timeout=60)
    assert listed.returncode == 0, listed.stderr
    shown = json.loads(listed.stdout)
    assert {n["node_id"] for n in shown} == nodes and sorted(n["head"] for n in shown) == [False, True]
    assert all(n["cpus"] == 1 and n["address"] == "127.0.0.1" for n in shown)
    # A module in the user's project directory: Ray puts the driver's directory on the
    # trial workers' path, so the job's own functions load there by name.
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(SPREAD_JOB, project / "spread_job.py")
    env = {**local_cluster.env, "SPREAD_JOB_DIR": str(tmp_path / "meeting-point")}
    done = local_cluster.cli(
        "-q",
        "run",
        "spread_job:JOB",
        "--address",
        local_cluster.gcs,
        "--cpus-per-trial",
        "1",
        "--num-samples",
        "2",
        "--max-epochs",
        "1",
        "--searcher",
        "random",
        "--scheduler",
        "fifo",
        "--storage",
        str(tmp_path / "results"),
        "--format",
        "json",
        env=env,
        cwd=project,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    sweep_dir = tmp_path / "results" / "tiny" / record["sweep_id"]
    trials = _trial_results(sweep_dir)
    assert len(trials) == 2 and all(trials)
    where = [{(epoch["node_id"], epoch["node_ip"]) for epoch in epochs} for epochs in trials]
    assert all(len(w) == 1 for w in where), where  # a trial stays on its node
    assert {node for w in where for node, _ in w} == nodes  # and the two trials used both
    assert {ip for w in where for _, ip in w} == {"127.0.0.1"}


def test_more_cpus_per_trial_than_any_node_has_is_refused_before_the_sweep_starts(local_cluster, tmp_path):
    done = local_cluster.cli(
        "run",
        "tuning_service.testing:tiny_job",
        "--address",
        local_cluster.gcs,
        "--cpus-per-trial",
        "2",
        "--storage",
        str(tmp_path / "results"),
        timeout=60,
    )
    assert done.returncode == 2
    assert "error: --cpus-per-trial 2 is more than any node of the Ray cluster has (1 CPUs)" in done.stderr
    assert not list(tmp_path.glob("results/*/*/trials"))  # Tune never started


def test_more_gpus_per_trial_than_any_node_has_is_refused_before_submitting(local_cluster):
    before = local_cluster.submission_ids()
    done = local_cluster.cli(
        "submit",
        "tuning_service.testing:tiny_job",
        "--address",
        local_cluster.jobs_url,
        "--gpus-per-trial",
        "0.5",
        timeout=60,
    )
    assert done.returncode == 2
    assert (
        f"--gpus-per-trial 0.5 is more than any node of the cluster at {local_cluster.jobs_url} has (0 GPUs)"
        in (done.stderr)
    )
    assert local_cluster.submission_ids() == before
