"""A worker node dies mid-sweep: its trials continue from their checkpoints on the surviving nodes and
the sweep completes."""

from __future__ import annotations

import json
import os
import signal
import sys

import pytest
from clusterkit import ROOT, start, wait_for

from tuning_service.store import open_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAULTS_JOB = ROOT / "tests" / "faults" / "conftest.py"
# A digits epoch takes milliseconds: enough epochs that the doomed node's trial is still training
# when the node is killed (it is killed before it reaches half of them).
EPOCHS = 60
SLOWER_EPOCHS = """
import dataclasses
import numpy as np

_digits = load_data


def _repeated(**kwargs):
    data = _digits(**kwargs)
    return dataclasses.replace(
        data, x_train=np.concatenate([data.x_train] * 20), y_train=np.concatenate([data.y_train] * 20)
    )


JOB = dataclasses.replace(JOB, load_data=_repeated)
"""


def _alive(cluster) -> set[str]:
    return {n["node_id"] for n in cluster.alive_nodes()}


def _stretches(rows: list[dict]) -> list[tuple[str, int, int]]:
    """A trial's nodes in order, each with the first and last epoch it trained there: what happened,
    should the test fail."""
    out: list[tuple[str, int, int]] = []
    for r in rows:
        node, epoch = r["node_id"][:8], r["training_iteration"]
        if out and out[-1][0] == node:
            out[-1] = (node, out[-1][1], epoch)
        else:
            out.append((node, epoch, epoch))
    return out


def test_trials_of_a_lost_node_finish_on_the_surviving_nodes(local_cluster, tmp_path):
    sys.path.insert(0, str(ROOT))
    from tests.sweeps.faults.conftest import JOB_FILE, Driver, result_lines

    # Digits repeated 20 times per epoch: an epoch long enough (tens of milliseconds) that the
    # node is killed while its trial trains, not after it finished.
    (tmp_path / "resumable_job.py").write_text(JOB_FILE + SLOWER_EPOCHS)
    before = {n["node_id"] for n in local_cluster.alive_nodes()}
    third = start(
        "worker2",
        [sys.executable, "-m", "tuning_service", "cluster", "join", local_cluster.gcs, "--num-cpus", "1"]
        + ["--num-gpus", "0", "--object-store-memory", str(100 * 2**20)],
        local_cluster.env,
        local_cluster.home,
    )
    driver = None
    try:
        wait_for("a third node", lambda: len(local_cluster.alive_nodes()) == 3, [third], 90)
        (doomed,) = {n["node_id"] for n in local_cluster.alive_nodes()} - before
        storage = tmp_path / "results"
        driver = Driver(
            [sys.executable, "-m", "tuning_service", "-q", "run", f"{tmp_path / 'resumable_job.py'}:JOB"]
            + ["--address", local_cluster.gcs, "--searcher", "random", "--scheduler", "fifo"]
            + ["--num-samples", "3", "--max-epochs", str(EPOCHS), "--max-concurrent", "3"]
            + ["--max-failures", "2"]
            + ["--checkpoint-frequency", "1"]
            + ["--storage", str(storage), "--format", "json"],
            cwd=tmp_path,
            env=local_cluster.env,
            log=tmp_path / "driver.log",
        )

        def the_trial_on_the_doomed_node() -> str | None:
            # A checkpoint every epoch: by its third epoch the trial has one to move with; by half
            # its epochs it is killed, so that it has epochs left to train elsewhere.
            for trial, rows in result_lines(storage).items():
                if (
                    rows
                    and rows[-1]["node_id"] == doomed
                    and 3 <= rows[-1]["training_iteration"] <= EPOCHS // 2
                ):
                    return trial
            return None

        # Three trials start together, one per node: the third node's has to train there.
        wait_for("a trial on the third node", the_trial_on_the_doomed_node, [third], 180)
        trial_id = the_trial_on_the_doomed_node()
        # The node disappears at once, as a machine that loses power: every process, SIGKILL.
        for pid in third.members():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        out, err = driver.communicate(timeout=300)
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
        third.stop()
        # The cluster is shared with the next tests: back to its two nodes before going on.
        wait_for("the lost node to be declared dead", lambda: _alive(local_cluster) == before, [], 60)

    assert driver.returncode == 0, err[-3000:]
    record = json.loads(out)
    summary = json.loads((storage / "resumable" / record["sweep_id"] / "trials.json").read_text())
    trials = summary["trials"] if isinstance(summary, dict) else summary
    assert len(trials) == 3 and {t["status"] for t in trials} == {"completed"}, trials
    rows = result_lines(storage)[trial_id]
    where = {trial: _stretches(lines) for trial, lines in result_lines(storage).items()}
    there = [r["training_iteration"] for r in rows if r["node_id"] == doomed]
    # Tune copies a restarted trial's result.json back from the sweep folder: the rows from the
    # lost node are still there (`callbacks.SyncBeforeRestore`).
    assert there, f"trial {trial_id} lost its rows from the node {doomed[:8]}: {where}"
    assert rows[-1]["node_id"] != doomed and rows[-1]["training_iteration"] == EPOCHS, where
    after = [r["training_iteration"] for r in rows if r["node_id"] != doomed]
    # From its checkpoint: the first epoch on the new node follows one trained on the lost node.
    assert 1 < after[0] <= max(there) + 1, (there, after)
    assert after == list(range(after[0], EPOCHS + 1)), after
    with open_store(None, storage=storage) as store:
        for trial in store.trials([record["sweep_id"]]):
            assert [e.epoch for e in store.epochs(record["sweep_id"], trial.trial_id)] == list(
                range(1, EPOCHS + 1)
            )
