"""Trials that fail: a killed worker continues from its checkpoint; a full disk, an impossible
allocation and a worker the kernel kills for memory fail only their own trials, with the reason
recorded; a bad config is not retried."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.sweeps.faults.conftest import JOB_FILE, MemoryCgroup, result_lines
from tuning_service.core.spec import SweepSpec
from tuning_service.data.catalog import load_job
from tuning_service.store import open_store
from tuning_service.sweeps.runner import run_sweep

# Units per trial for the failure test: two that train, one whose checkpoint cannot fit on
# the small disk (~18 MB of weights and Adam slots), one no machine can allocate (16 TiB).
FAILING_JOB = """\
from jobs.digits import load_data
from tuning_service.job import Job
from tuning_service.models import build_mlp
from tuning_service.space import Choice

JOB = Job(
    name="failing",
    description="digits MLP whose widest configs cannot be saved or allocated",
    space={"units": Choice((16, 32, 20000, 2**36))},
    load_data=load_data,
    build_model=build_mlp,
    metric="val_accuracy",
    mode="max",
    max_epochs=2,
    defaults={"optimizer": "adam", "layers": 1, "activation": "relu", "learning_rate": 0.01, "batch_size": 64},
)
"""

# Run inside the private mount namespace, after the sweep: a full disk must not corrupt the
# best configuration already written (write_outputs replaces files atomically).
REWRITE_ON_FULL_DISK = """\
import json, sys
from pathlib import Path
from tuning_service.core.results import load_result, write_outputs
sweep_dir = next(Path(sys.argv[1]).glob("failing/*"))
result = load_result(sweep_dir)
with open(Path(sys.argv[1]) / "filler", "wb") as f:
    try:
        while True:
            f.write(b"x" * 65536)
            f.flush()
    except OSError:
        pass
try:
    write_outputs(result)
    print(json.dumps({"rewrite": "succeeded"}))
except OSError as exc:
    print(json.dumps({"rewrite": "failed", "errno": exc.errno}))
"""


@pytest.mark.integration
@pytest.mark.slow
def test_full_disk_and_out_of_memory_fail_only_their_trials(tmp_path):
    if shutil.which("unshare") is None:
        pytest.fail("this test needs util-linux's `unshare` to mount a private tmpfs")
    job = tmp_path / "failing_job.py"
    job.write_text(FAILING_JOB)
    (tmp_path / "rewrite.py").write_text(REWRITE_ON_FULL_DISK)
    disk, copy = tmp_path / "disk", tmp_path / "copy"
    disk.mkdir()
    # A private mount namespace: the 8 MiB tmpfs is seen by this sweep (and its Ray) only.
    script = (
        f"mount -t tmpfs -o size=8m tmpfs {disk} && "
        f"{sys.executable} -m tuning_service -q run {job}:JOB --searcher grid --scheduler fifo "
        f"--storage {disk} --format json > {tmp_path}/run.json; echo $? > {tmp_path}/run.rc; "
        f"cp -a {disk}/. {copy}/ && {sys.executable} {tmp_path}/rewrite.py {disk} > {tmp_path}/rewrite.json && "
        f"cp {disk}/failing/*/best_config.json {tmp_path}/best_after_full_disk.json"
    )
    copy.mkdir()
    proc = subprocess.run(
        ["unshare", "--mount", "--map-root-user", "sh", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "run.rc").read_text().strip() == "0", proc.stderr[-3000:]

    with open_store(None, storage=copy) as store:
        (sweep,) = store.sweeps()
        trials = {t.config["units"]: t for t in store.trials([sweep.sweep_id])}
    assert sweep.status == "finished"
    assert {u: t.status for u, t in trials.items()} == {
        16: "completed",
        32: "completed",
        20000: "errored",
        2**36: "errored",
    }
    assert trials[20000].message.startswith("disk full:"), trials[20000].message
    assert trials[2**36].message.startswith("out of memory:"), trials[2**36].message
    # The allocation error was recorded once, not retried like the full disk (a worker's fault).
    by_units = {rows[0]["config"]["units"]: rows for rows in result_lines(copy).values() if rows}
    assert len(by_units[2**36]) == 1, by_units[2**36]

    best = json.loads((tmp_path / "run.json").read_text())
    assert best["config"]["units"] in (16, 32)
    assert json.loads((tmp_path / "rewrite.json").read_text()) == {"rewrite": "failed", "errno": 28}
    before = json.loads(next(copy.glob("failing/*/best_config.json")).read_text())
    assert json.loads((tmp_path / "best_after_full_disk.json").read_text()) == before


@pytest.mark.integration
def test_a_killed_worker_continues_from_its_checkpoint(ray_local, tmp_path):
    (tmp_path / "resumable_job.py").write_text(JOB_FILE)
    job = load_job(f"{tmp_path / 'resumable_job.py'}:JOB")
    storage = tmp_path / "results"
    killed: dict[str, int] = {}

    def kill_after_second_epoch() -> None:
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            for trial, lines in result_lines(storage).items():
                if lines and lines[-1]["training_iteration"] >= 2:
                    killed[trial] = lines[-1]["pid"]
                    os.kill(lines[-1]["pid"], signal.SIGKILL)
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_after_second_epoch, daemon=True)
    killer.start()
    spec = SweepSpec(
        job="resumable", searcher="grid", scheduler="fifo", max_epochs=12, max_concurrent=1, storage=str(storage),
        searcher_options={}, max_failures=2, checkpoint_frequency=1,
    )  # fmt: skip
    result = run_sweep(spec.replace(num_samples=1), job=_one_point(job))
    killer.join(timeout=5)
    assert killed, "the worker was never killed"

    (trial,) = result.trials
    assert (trial.status, trial.epochs) == ("completed", 12), (trial, result_lines(storage))
    ((trial_id, killed_pid),) = killed.items()
    lines = result_lines(storage)[trial_id]
    # Both workers' rows: Tune copied the file back from the sweep folder when the trial restarted.
    pids = [line["pid"] for line in lines]
    first_after = next(line for line in lines if line["pid"] != killed_pid)
    assert len(set(pids)) == 2, pids  # one worker before the kill, another after
    assert lines[-1]["pid"] != killed_pid and lines[-1]["training_iteration"] == 12, lines[-1]
    assert first_after["training_iteration"] > 1, "the retried trial started again from epoch 1"
    assert [h["training_iteration"] for h in trial.history] == list(range(1, 13))
    with open_store(None, storage=storage) as store:
        epochs = store.epochs(result.sweep_id, trial.trial_id)
    assert [e.epoch for e in epochs] == list(range(1, 13))


def _one_point(job):
    """The job with its grid cut to one point: one long trial whose worker the test kills."""
    from dataclasses import replace

    from tuning_service.core.space import Choice

    space = {"learning_rate": Choice((0.01,)), "units": Choice((32,)), "batch_size": Choice((16,))}
    return replace(job, space=space)


# Units per trial: one that trains, one whose model (64 inputs x 12M units, about 3 GB of
# weights, written as they are initialised) outgrows the 2 GiB its sweep may use.
GREEDY_JOB = """\
from tuning_service.space import Choice
from tuning_service.testing import tiny_job

JOB = tiny_job({"units": Choice((16, 12_000_000))}, max_epochs=2)
"""


@pytest.mark.integration
def test_a_worker_the_kernel_kills_for_memory_is_retried_then_recorded(tmp_path):
    """Memory pressure, not a refused allocation: the sweep (driver, Ray and workers) runs in a
    memory cgroup, and the greedy trial's worker is killed by the kernel's OOM killer, each time."""
    (tmp_path / "greedy_job.py").write_text(GREEDY_JOB)
    storage = tmp_path / "results"
    group = MemoryCgroup.create(2 * 2**30)
    try:
        run = subprocess.run(
            group.wrap(
                [sys.executable, "-m", "tuning_service", "-q", "run", f"{tmp_path / 'greedy_job.py'}:JOB"]
                + [
                    "--searcher",
                    "grid",
                    "--scheduler",
                    "fifo",
                    "--max-concurrent",
                    "1",
                    "--max-failures",
                    "1",
                ]
                + ["--storage", str(storage), "--format", "json"]
            ),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=400,
        )
        kills = group.oom_kills()
    finally:
        group.destroy()
    assert run.returncode == 0, run.stderr[-3000:]
    assert kills >= 2, (
        f"the kernel killed {kills} process(es); the first attempt and its one retry should die"
    )
    with open_store(None, storage=storage) as store:
        (sweep,) = store.sweeps()
        trials = {t.config["units"]: t for t in store.trials([sweep.sweep_id])}
    assert sweep.status == "finished"
    assert {u: t.status for u, t in trials.items()} == {16: "completed", 12_000_000: "errored"}
    assert trials[12_000_000].message.startswith("worker died:"), trials[12_000_000].message
    assert json.loads(run.stdout)["config"]["units"] == 16
