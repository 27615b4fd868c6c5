"""The results database goes down at the end of a real sweep: the sweep's files are written all the
same, the command says so and exits 1, and `resume` records the sweep once the database is back."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.sweeps.faults.conftest import cli
from tuning_service.store import open_store
from tuning_service.testing.pgserver import PgServer

pytestmark = pytest.mark.integration

# Two grid points, one trial at a time: the second trial's model build stops the database
# server (the command is in $OUTAGE), so the end of the sweep finds it down.
OUTAGE_JOB = """\
import json, os, subprocess
from dataclasses import replace

from tuning_service.models import build_mlp
from tuning_service.space import Choice
from tuning_service.testing import tiny_job


def build(config, input_spec):
    if config["units"] == 16 and os.environ.get("OUTAGE"):
        subprocess.run(json.loads(os.environ["OUTAGE"]), check=True, capture_output=True)
    return build_mlp(config, input_spec)


JOB = replace(tiny_job({"units": Choice((8, 16))}, max_epochs=2), build_model=build)
"""


@pytest.fixture
def pg_server(tmp_path):
    try:
        server = PgServer.create()
    except RuntimeError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must test a database outage, but: {exc}")
        pytest.skip(str(exc))
    yield server
    server.destroy()


@pytest.mark.slow
def test_a_database_down_at_the_end_loses_no_file_and_resume_records_the_sweep(pg_server, tmp_path):
    (tmp_path / "outage_job.py").write_text(OUTAGE_JOB)
    storage, db = tmp_path / "results", pg_server.url
    args = ["--searcher", "grid", "--scheduler", "fifo", "--max-concurrent", "1", "--data-limit", "128"]
    driver = cli(
        "-q", "run", f"{tmp_path / 'outage_job.py'}:JOB", *args, "--db", db, "--storage", str(storage),
        "--format", "json", cwd=tmp_path, env={"OUTAGE": json.dumps(pg_server.stop_command())},
    )  # fmt: skip
    out, err = driver.communicate(timeout=400)
    assert driver.returncode == 1, err[-3000:]
    record = json.loads(out)  # the best config is printed all the same
    sweep_dir = storage / "tiny" / record["sweep_id"]
    assert json.loads((sweep_dir / "best_config.json").read_text()) == record
    assert len(json.loads((sweep_dir / "trials.json").read_text())) == 2
    assert json.loads((sweep_dir / "sweep.json").read_text())["sweep_id"] == record["sweep_id"]
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: sweep {record['sweep_id']} ran and its best config is in {sweep_dir}"), (
        err
    )
    assert f"`tuning-service resume {record['sweep_id']}` records it" in last

    pg_server.start()
    resumed = cli("-q", "resume", record["sweep_id"], "--db", db, "--storage", str(storage), cwd=tmp_path)
    _, err = resumed.communicate(timeout=400)
    assert resumed.returncode == 0, err[-3000:]
    with open_store(db) as store:
        assert store.find_sweep(record["sweep_id"]).status == "finished"
        trials = store.trials([record["sweep_id"]])
        assert sorted(t.config["units"] for t in trials) == [8, 16]
        for trial in trials:  # the second trial's epochs came in with the reconciliation
            assert [e.epoch for e in store.epochs(record["sweep_id"], trial.trial_id)] == [1, 2]
    assert json.loads((sweep_dir / "best_config.json").read_text())["config"] == record["config"]
    assert Path(sweep_dir / "trials.json").is_file()
