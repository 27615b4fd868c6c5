"""Real sweeps recorded as they run, on SQLite and PostgreSQL; then results, export, compare, refit."""

from __future__ import annotations

import csv
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from storedbs import BACKENDS, make_db_url

from tuning_service.cli import main
from tuning_service.results import SweepResult
from tuning_service.runner import run_sweep
from tuning_service.spec import SweepSpec
from tuning_service.store import FINISHED, RUNNING, open_store, schema

pytestmark = pytest.mark.integration


@dataclass
class Recorded:
    url: str
    storage: Path
    digits: list[SweepResult]
    pima: str  # sweep id
    live_rows: list[int] = field(default_factory=list)  # epoch rows seen while a sweep ran
    overlap: bool = False


def _digits_spec(storage: Path, url: str, seed: int) -> SweepSpec:
    return SweepSpec(
        job="digits",
        searcher="random",
        scheduler="fifo",
        num_samples=2,
        max_epochs=2,
        # One trial at a time: the sweep's one actor (one TensorFlow import) runs both trials.
        max_concurrent=1,
        data_limit=128,
        seed=seed,
        storage=str(storage),
        db=url,
    )


@pytest.fixture(scope="module", params=BACKENDS)
def recorded(request, ray_local, tmp_path_factory) -> Recorded:
    """Two digits sweeps at once on the shared Ray (threads), and pima_diabetes from the CLI beside them."""
    urls = make_db_url(request.param, tmp_path_factory.mktemp("db"))
    url = next(urls)
    request.addfinalizer(lambda: next(urls, None))
    storage = tmp_path_factory.mktemp("results")
    out = Recorded(url, storage, [], "")
    watcher = open_store(url)
    request.addfinalizer(watcher.close)
    results: dict[int, SweepResult | BaseException] = {}

    def live(snapshot) -> None:
        running = [s.sweep_id for s in watcher.sweeps(job="digits") if s.status == RUNNING]
        out.live_rows.append(sum(watcher.epoch_counts(running).values()))

    def sweep(seed: int, progress=None) -> None:
        try:
            results[seed] = run_sweep(_digits_spec(storage, url, seed), progress=progress)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            results[seed] = exc

    def pima() -> None:
        argv = ["-q", "run", "pima_diabetes", "--db", url, "--storage", str(storage), "--num-samples", "2"]
        argv += ["--max-epochs", "1", "--max-concurrent", "1", "--searcher", "random", "--scheduler", "fifo"]
        results[0] = main([*argv, "--data-limit", "128", "--format", "json"])  # type: ignore[assignment]

    def started_trials(sweeps: int) -> None:
        # Ray Tune's trainable registry is not thread-safe while a Tuner starts: the next
        # sweep starts once the previous one's trials run, so their recording overlaps.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            ids = [s.sweep_id for s in watcher.sweeps()]
            if len({t.sweep_id for t in watcher.trials(ids)}) >= sweeps or not first.is_alive():
                return
            time.sleep(0.05)

    first = threading.Thread(target=sweep, args=(1, live))
    second = threading.Thread(target=sweep, args=(2,))
    third = threading.Thread(target=pima)
    first.start()
    started_trials(1)
    second.start()
    out.overlap = first.is_alive()
    started_trials(2)
    third.start()
    for thread in (first, second, third):
        thread.join()
    assert results.pop(0) == 0, "the pima_diabetes sweep failed"
    assert all(isinstance(r, SweepResult) for r in results.values()), results
    out.digits = [results[1], results[2]]  # type: ignore[list-item]
    pima = [s for s in watcher.sweeps(job="pima_diabetes")]
    assert len(pima) == 1
    out.pima = pima[0].sweep_id
    return out


def test_concurrent_sweeps_record_every_trial_and_epoch_exactly_once(recorded):
    assert recorded.overlap, "the two sweeps did not run at the same time"
    with open_store(recorded.url) as store:
        first, second = (store.find_sweep(r.sweep_id) for r in recorded.digits)
        assert first.started_at < second.started_at < first.ended_at
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
            assert sorted(trials) == sorted(t.trial_id for t in result.trials)
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
                assert [e.epoch for e in epochs] == list(range(1, summary.epochs + 1))
                assert [e.value for e in epochs] == pytest.approx(
                    [h["val_accuracy"] for h in summary.history]
                )
                assert {"loss", "val_loss", "val_accuracy", "train_time_s"} <= set(epochs[0].metrics)
        with store.engine.connect() as conn:
            e = schema.epochs
            dupes = conn.execute(
                sa.select(e.c.sweep_id, e.c.trial_id, e.c.epoch)
                .group_by(e.c.sweep_id, e.c.trial_id, e.c.epoch)
                .having(sa.func.count() > 1)
            ).all()
            total = conn.execute(sa.select(sa.func.count()).select_from(e)).scalar_one()
        assert dupes == []
        assert (
            total == sum(t.epochs for r in recorded.digits for t in r.trials) + 2
        )  # + pima's 2 trials x 1 epoch


def test_epochs_are_in_the_database_while_the_sweep_runs(recorded):
    assert max(recorded.live_rows) > 0


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

    assert main(["refit", first, *db]) == 0
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
