"""Real sweeps recorded as they run, two processes and this one writing one database (SQLite, PostgreSQL);
then results, export, compare, refit."""

from __future__ import annotations

import csv
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from storedbs import BACKENDS, make_db_url

from tests.sweeps.faults.conftest import Driver, cli, kill_group
from tuning_service.cli import main
from tuning_service.core.errors import SweepError
from tuning_service.core.results import SweepResult, load_result
from tuning_service.store import FINISHED, open_store
from tuning_service.sweeps.submission import recorded_record

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass
class Recorded:
    url: str
    storage: Path
    digits: list[SweepResult]
    pima: str  # sweep id
    logs: list[str] = field(default_factory=list)  # the digits drivers' stderr


# Two digits sweeps, each its own `tuning-service run` process (its own Ray): three trials of
# 40 epochs one after another. A digits epoch trains in milliseconds: the 120 results (each a
# write) keep a sweep writing for about 3 s, less than two Ray start-ups can differ by on a
# loaded machine, so `_writing_together` holds the first sweep back until the second writes.
DIGITS = ["-q", "run", "digits", "--searcher", "random", "--scheduler", "fifo", "--num-samples", "3"]
DIGITS += ["--max-epochs", "40", "--max-concurrent", "1", "--data-limit", "128", "--format", "json"]
# While it waits, the held driver runs this long every POLL_S: a write it was stopped in the
# middle of finishes and frees the database's lock for the other one.
PULSE_S, POLL_S = 0.05, 0.5


@contextmanager
def _writing_together(drivers: list[Driver], url: str, *, hold_s: float = 300.0) -> Iterator[None]:
    """Stop (SIGSTOP) the driver whose sweep records an epoch first until the other's has one too.

    Only the driver process stops: its trial waits for the driver to take its result, so the
    held sweep still has most of its epochs to write when the other begins. Each driver's
    sweep is told apart by its seed (``drivers[seed - 1]``).
    """
    done = threading.Event()

    def hold() -> None:
        held: Driver | None = None
        deadline = time.monotonic() + hold_s
        try:
            with open_store(url) as store:
                while not done.is_set() and time.monotonic() < deadline:
                    writing = [
                        drivers[s.seed - 1] for s in store.sweeps(job="digits") if store.epochs(s.sweep_id)
                    ]
                    if len(writing) == len(drivers) or any(d.poll() is not None for d in drivers):
                        return
                    if held is not None:
                        os.kill(held.pid, signal.SIGCONT)
                        time.sleep(PULSE_S)
                    elif writing:
                        held = writing[0]
                    if held is not None:
                        os.kill(held.pid, signal.SIGSTOP)
                    done.wait(POLL_S)
        finally:
            if held is not None and held.poll() is None:
                os.kill(held.pid, signal.SIGCONT)

    thread = threading.Thread(target=hold, name="writing-together", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=60)


@pytest.fixture(scope="module", params=BACKENDS)
def recorded(request, ray_local, tmp_path_factory) -> Recorded:
    """Two digits sweeps at once in two processes, and pima_diabetes from the CLI in this one beside them."""
    urls = make_db_url(request.param, tmp_path_factory.mktemp("db"))
    url = next(urls)
    request.addfinalizer(lambda: next(urls, None))
    storage = tmp_path_factory.mktemp("results")
    out = Recorded(url, storage, [], "")
    drivers = [
        cli(*DIGITS, "--seed", str(seed), "--db", url, "--storage", str(storage), cwd=storage)
        for seed in (1, 2)
    ]
    argv = ["-q", "run", "pima_diabetes", "--db", url, "--storage", str(storage), "--num-samples", "2"]
    argv += ["--max-epochs", "1", "--max-concurrent", "1", "--searcher", "random", "--scheduler", "fifo"]
    try:
        with _writing_together(drivers, url):
            assert main([*argv, "--data-limit", "128", "--format", "json"]) == 0, (
                "the pima_diabetes sweep failed"
            )
            for driver in drivers:
                driver.wait(timeout=600)
        for driver in drivers:
            stdout, stderr = driver.communicate(timeout=600)
            assert driver.returncode == 0, stderr[-3000:]
            out.digits.append(load_result(storage / "digits" / json.loads(stdout)["sweep_id"]))
            out.logs.append(stderr)
    finally:
        for driver in drivers:
            if driver.poll() is None:
                kill_group(driver)
    with open_store(url) as watcher:
        (pima,) = watcher.sweeps(job="pima_diabetes")
    out.pima = pima.sweep_id
    return out


def _tune_epochs(sweep_dir: Path) -> dict[str, dict[int, float]]:
    """Every epoch Ray Tune saw, per trial: its own record, independent of the store."""
    found: dict[str, dict[int, float]] = {}
    for path in (sweep_dir / "trials").glob("*/result.json"):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            found.setdefault(row["trial_id"], {})[row["training_iteration"]] = row["val_accuracy"]
    return found


def test_concurrent_sweeps_record_every_trial_and_epoch_exactly_once(recorded):
    with open_store(recorded.url) as store:
        first, second = (store.find_sweep(r.sweep_id) for r in recorded.digits)
        # The two processes wrote at the same time: their epoch rows interleave.
        windows = []
        for sweep in (first, second):
            stamps = [e.recorded_at for e in store.epochs(sweep.sweep_id)]
            windows.append((min(stamps), max(stamps)))
        assert windows[0][0] < windows[1][1] and windows[1][0] < windows[0][1], windows
        for result in recorded.digits:
            sweep = store.find_sweep(result.sweep_id)
            assert (sweep.status, sweep.job, sweep.searcher, sweep.scheduler) == (
                FINISHED,
                "digits",
                "random",
                "fifo",
            )
            assert sweep.seed in (1, 2) and sweep.space == result.space and sweep.versions["ray"]
            assert (
                sweep.cluster_address
                and sweep.ended_at > sweep.started_at
                and sweep.sweep_dir == str(result.sweep_dir)
            )
            trials = {t.trial_id: t for t in store.trials([result.sweep_id])}
            assert sorted(trials) == sorted(t.trial_id for t in result.trials) and len(trials) == 3
            tune = _tune_epochs(result.sweep_dir)
            for summary in result.trials:
                trial = trials[summary.trial_id]
                assert (trial.status, trial.epochs, trial.best_epoch) == (
                    summary.status,
                    summary.epochs,
                    summary.best_epoch,
                )
                assert trial.value == pytest.approx(summary.value) and trial.config == summary.config
                assert trial.node_ip and trial.duration_s > 0 and Path(trial.checkpoint).is_dir()
                epochs = store.epochs(result.sweep_id, summary.trial_id)
                # Exactly the epochs Ray Tune saw, with the values it saw: none lost, none extra.
                assert {e.epoch: e.value for e in epochs} == pytest.approx(tune[summary.trial_id])
                assert [e.epoch for e in epochs] == list(range(1, summary.epochs + 1))
                assert {"loss", "val_loss", "val_accuracy", "train_time_s"} <= set(epochs[0].metrics)


def test_a_sweeps_best_config_read_back_from_the_database_is_the_one_it_wrote(recorded):
    """What `submissions result --db` and a scheduled submission read: the record rebuilt from
    the database, field by field the sweep's own best_config.json."""
    for result in recorded.digits:
        written = json.loads((result.sweep_dir / "best_config.json").read_text())
        read = recorded_record(recorded.url, "tuning-digits-1", result.sweep_id)
        same = (
            "job",
            "sweep_id",
            "metric",
            "mode",
            "epoch",
            "config",
            "trial_id",
            "searcher",
            "scheduler",
            "seed",
        )
        assert {k: read[k] for k in same} == {k: written[k] for k in same}
        assert read["value"] == pytest.approx(written["value"])
        assert read["versions"]["ray"] == written["versions"]["ray"]
    with pytest.raises(SweepError, match=r"ran sweep 20000101-000000-abcdef, which is not in "):
        recorded_record(recorded.url, "tuning-digits-1", "20000101-000000-abcdef")


def test_run_refuses_a_sweep_id_that_exists_or_is_malformed_and_writes_nothing(recorded, capsys):
    taken = recorded.digits[0].sweep_id
    before = sorted(p.name for p in (recorded.storage / "digits").iterdir())
    with open_store(recorded.url) as store:
        count = len(store.sweeps())
    base = ["run", "digits", "--db", recorded.url, "--storage", str(recorded.storage), "--data-limit", "64"]
    assert main([*base, "--sweep-id", taken]) == 2
    assert f"--sweep-id {taken}: that sweep exists already" in capsys.readouterr().err
    assert main([*base, "--sweep-id", "../../etc"]) == 2
    assert "--sweep-id must be YYYYmmdd-HHMMSS-xxxxxx" in capsys.readouterr().err
    assert sorted(p.name for p in (recorded.storage / "digits").iterdir()) == before
    with open_store(recorded.url) as store:
        assert len(store.sweeps()) == count


def test_every_epoch_was_recorded_live_before_the_reconciliation(recorded):
    """The end of a sweep fills in epochs its live writes missed; here none was missed: every epoch
    row is older than the reconciliation (which stamps each trial's updated_at), and no driver said
    it skipped a write."""
    with open_store(recorded.url) as store:
        for result in recorded.digits:
            for trial in store.trials([result.sweep_id]):
                late = [
                    e.epoch
                    for e in store.epochs(result.sweep_id, trial.trial_id)
                    if e.recorded_at >= trial.updated_at
                ]
                assert late == [], f"trial {trial.trial_id}: epochs {late} came from the reconciliation"
    for log in recorded.logs:
        assert "live writes were skipped" not in log and "could not record" not in log, log[-3000:]


def test_results_export_compare_and_refit_on_recorded_sweeps(recorded, capsys, tmp_path):
    db = ["--db", recorded.url]
    first, second = (r.sweep_id for r in recorded.digits)

    assert main(["results", *db]) == 0
    out = capsys.readouterr().out
    assert "digits - top" in out and "pima_diabetes - top" in out
    assert first in out and second in out and recorded.pima in out

    for fmt in ("json", "yaml", "csv"):
        target = tmp_path / f"best.{fmt}"
        assert main(["export", *db, "--format", fmt, "-o", str(target)]) == 0
    document = json.loads((tmp_path / "best.json").read_text())
    assert yaml.safe_load((tmp_path / "best.yaml").read_text())["configs"] == document["configs"]
    rows = list(csv.DictReader((tmp_path / "best.csv").open()))
    assert [c["job"] for c in document["configs"]] == [r["job"] for r in rows] == ["digits", "pima_diabetes"]
    best_digits = max((t for r in recorded.digits for t in r.trials), key=lambda t: t.value)
    assert document["configs"][0]["config"] == best_digits.config
    assert document["configs"][0]["versions"]["tensorflow"]

    assert main(["compare", first, second, *db]) == 0
    out = capsys.readouterr().out
    assert f"{first} vs {second}" in out and "epochs spent" in out

    # The folder a database row names is trusted only inside the --storage it was run with.
    assert main(["refit", first, *db]) == 2
    assert "is not inside the results root" in capsys.readouterr().err
    assert main(["refit", first, *db, "--storage", str(recorded.storage)]) == 0
    out = capsys.readouterr().out
    assert "test_accuracy on" in out
    model = Path(recorded.digits[0].sweep_dir) / "best_model.keras"
    assert model.is_file()
    with open_store(recorded.url) as store:
        (refit,) = store.refits([first])
    assert refit.test_metric == "test_accuracy" and 0.0 <= refit.test_value <= 1.0
    assert refit.train_rows > 128 and refit.test_rows > 0 and refit.model_path == str(model)

    assert main(["results", *db, "--sweep", first]) == 0
    assert f"test_accuracy {refit.test_value:.4f}" in capsys.readouterr().out
    assert main(["export", *db, "--job", "digits", "--format", "json"]) == 0
    exported = json.loads(capsys.readouterr().out)["configs"][0]
    if exported["sweep_id"] == first:
        assert exported["test"]["value"] == pytest.approx(refit.test_value)
