"""Every scenario's --smoke run, in-process on the session's Ray: the suite cannot rot unnoticed."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks import (
    chaos,
    dashboard,
    driver_scale,
    epoch_cost,
    multiobjective,
    overhead,
    peers,
    small,
    snapshot_cost,
    startup,
    store_scale,
    store_writes,
    telco,
    tensorboard_writes,
)
from benchmarks.ours import engine_support
from benchmarks.problems import get_problem
from jobs import digits
from tuning_service.core import pareto


def _runs(path):
    data = json.loads(path.read_text())
    failed = {name: run["notes"] for name, run in data["runs"].items() if run["extra"].get("failed")}
    assert not failed, failed
    return data


# ours-hyperopt and ours-random are ours-optuna with another searcher name: each of our
# sweeps costs two fresh workers importing TensorFlow, so CI runs one budgeted searcher.
SMOKE_TOOLS = ("keras-tuner", "ours-optuna", "ours-grid", "optuna-hyperband", "gridsearchcv")


@pytest.mark.integration
@pytest.mark.slow
def test_telco_smoke_runs_the_tools_side_by_side(ray_local, tmp_path, capsys):
    assert (
        telco.main(["--smoke", "--tools", ",".join(SMOKE_TOOLS), "--out", str(tmp_path), "--timeline"]) == 0
    )
    # --timeline: Ray's timeline of our sweeps, and the time per worker call.
    for sweep in ("optuna-asha", "grid-fifo"):
        summary = (tmp_path / f"timeline-telco_churn-{sweep}.md").read_text()
        assert "| first train |" in summary and (tmp_path / f"timeline-telco_churn-{sweep}.json").exists()
    data = _runs(tmp_path / "telco_churn.json")
    assert list(data["runs"]) == list(SMOKE_TOOLS)
    assert data["epoch_budget"] == 11 and data["smoke"] is True
    assert data["runs"]["keras-tuner"]["epochs"] == 11 and data["runs"]["keras-tuner"]["trials"] == 6
    assert all(run["trials"] >= 1 and run["epochs"] >= 1 for run in data["runs"].values())
    assert all(run["test_acc"] is not None for run in data["runs"].values())
    if engine_support()["epoch_budget"]:
        # Results already in flight when the budget is spent still count, so allow some overshoot.
        assert data["epoch_budget"] <= data["runs"]["ours-optuna"]["epochs"] <= 2 * data["epoch_budget"]
    assert (tmp_path / "telco_churn_best_so_far.png").exists()
    assert "| keras-tuner |" in capsys.readouterr().out


@pytest.mark.integration  # no Ray, but seconds of Keras training: the full suite runs it
def test_small_smoke_peers_without_ray(tmp_path):
    assert (
        small.main(["--dataset", "digits", "--smoke", "--tools", "optuna-hyperband", "--out", str(tmp_path)])
        == 0
    )
    data = _runs(tmp_path / "digits.json")
    assert data["runs"]["optuna-hyperband"]["epochs"] == data["epoch_budget"]


@pytest.mark.integration  # no Ray, but two worker processes that import TensorFlow
def test_two_process_optuna_study_shares_one_budget(tmp_path):
    assert (
        small.main(
            ["--dataset", "digits", "--smoke", "--tools", "optuna-hyperband-2proc", "--out", str(tmp_path)]
        )
        == 0
    )
    data = _runs(tmp_path / "digits.json")
    run, budget = data["runs"]["optuna-hyperband-2proc"], data["epoch_budget"]
    # Both processes trained trials of the one study, and the storage holds every epoch recorded.
    per_pid = run["extra"]["epochs_per_pid"]
    assert len(per_pid) == peers.OPTUNA_WORKERS and all(n >= 1 for n in per_pid.values()), per_pid
    assert run["extra"]["storage_epochs"] == run["epochs"] == sum(per_pid.values())
    # The budget holds up to the epochs the other processes had in flight when it was reached.
    assert budget <= run["epochs"] <= budget + peers.OPTUNA_WORKERS - 1
    assert run["test_acc"] is not None and run["best_val"] is not None


def _loads_once(**options):
    """The digits for the first worker that asks; the second finds the data source gone."""
    try:
        os.close(os.open(os.environ["BENCH_TEST_LOADED"], os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        raise OSError("data source unreachable") from None
    return digits.load_data(**options)


def test_two_process_study_reports_a_failed_worker_instead_of_waiting(tmp_path, capfd, monkeypatch):
    # One worker fails while the other waits for it at the start: the run ends and says which.
    monkeypatch.setenv("BENCH_TEST_LOADED", str(tmp_path / "loaded"))
    problem = get_problem("digits", smoke=True)
    problem = replace(problem, job=replace(problem.job, load_data=_loads_once))
    with pytest.raises(RuntimeError, match=r"workers failed: .*optuna-worker-\d \(exit code 1\)"):
        peers.optuna_hyperband_2proc(peers.Context(problem, 11, 0, tmp_path / "work"))
    assert "OSError: data source unreachable" in capfd.readouterr().err


@pytest.mark.integration
def test_overhead_smoke(ray_local, tmp_path):
    assert overhead.main(["--smoke", "--out", str(tmp_path), "--timeline"]) == 0
    assert "| first train |" in (tmp_path / "timeline-overhead.md").read_text()
    data = json.loads((tmp_path / "overhead.json").read_text())
    assert data["trials"] == 4 and 0 < data["slot_efficiency"] <= 1
    assert data["median_overhead_s"] is not None
    assert f"| workers that ran trials | {data['workers']} |" in (tmp_path / "overhead.md").read_text()
    # The driver (this process) handled every trial's results between the first and last epoch.
    assert data["driver_cpu_per_trial_s"] > 0 and data["driver_budget_per_trial_s"] >= 0
    assert 0 < data["window_busy_cores"] <= data["cores"] + 0.1


@pytest.mark.integration
def test_overhead_tune_only_smoke(ray_local, tmp_path):
    assert overhead.main(["--smoke", "--tune-only", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "overhead-tune-only.json").read_text())
    assert data["tune_only"] and data["trials"] == 4 and data["epochs"] == 4
    assert "--tune-only" in data["command"].split()
    assert not (tmp_path / "overhead.json").exists()  # the scenario's own figures stay as they were


@pytest.mark.integration
def test_driver_scale_smoke(ray_local, tmp_path):
    assert driver_scale.main(["--smoke", "--in-process", "--out", str(tmp_path)]) == 0
    runs = {r["variant"]: r for r in json.loads((tmp_path / "driver_scale.json").read_text())["runs"]}
    assert runs["ray-tune-direct"]["trials"] == 20
    if engine_support()["trainable"]:
        assert runs["tuning-service"]["trials"] == 20 and runs["tuning-service"]["trials_per_s"] > 0
    else:
        assert "engine lacks run_sweep(trainable=)" in runs["tuning-service"]["skipped"]


@pytest.mark.integration  # no Ray, but eight models traced and trained: the full suite runs it
def test_epoch_cost_smoke_times_both_ways(tmp_path):
    assert epoch_cost.main(["--smoke", "--out", str(tmp_path)]) == 0
    ways = json.loads((tmp_path / "epoch_cost.json").read_text())["ways"]
    assert set(ways) == set(epoch_cost.WAYS)
    assert all(w["first_epoch_s"] > 0 and len(w["later"]) == 2 for w in ways.values())


def test_bad_dataset_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        small.main(["--dataset", "mnist"])
    assert exc.value.code == 2 and "invalid choice: 'mnist'" in capsys.readouterr().err


def test_epoch_cost_refuses_an_unknown_job_in_one_line(tmp_path, capsys):
    assert epoch_cost.main(["--job", "nope", "--smoke", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith("error: unknown job 'nope'; choose one of:")
    assert not (tmp_path / "epoch_cost.json").exists()


@pytest.mark.integration
@pytest.mark.slow
def test_startup_smoke_times_the_command_and_its_phases(tmp_path):
    assert startup.main(["--smoke", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "startup.json").read_text())
    (run,) = data["runs"][startup.NEW]
    (kept,) = data["runs"][startup.KEPT]
    for measured in (run, kept):
        assert 0 < measured["to_first_epoch_s"] < measured["to_exit_s"]
        # Ray's node started the trial workers after the command and before the first epoch.
        assert 0 < measured["to_first_worker_s"] < measured["to_first_epoch_s"]
        assert list(measured["phases_s"]) == [
            "Python and the CLI's imports",
            "the job's data and the store",
            "the sweep's folder and record",
            "Ray start",
            "Tune start to first epoch",
        ]
        assert sum(measured["phases_s"].values()) == pytest.approx(measured["to_first_epoch_s"])
    # Every kind of process was seen using CPU, and none used less by the exit than by the first epoch.
    first, total = run["cpu_to_first_epoch_s"], run["cpu_to_exit_s"]
    assert all(first[kind] > 0 for kind in startup.KINDS), first
    assert all(total[kind] >= first[kind] for kind in startup.KINDS), (first, total)
    # The kept run held a server started before it (no server of its own), which had done its
    # imports: its workers were counted, the server's imports were not; the benchmark stopped it.
    assert run["kept_server"] is None and isinstance(kept["kept_server"], int)
    assert kept["cpu_to_first_epoch_s"]["trial workers"] > 0
    server = "worker fork server"
    assert kept["cpu_to_first_epoch_s"][server] < run["cpu_to_first_epoch_s"][server] / 2, (kept, run)
    assert not Path(f"/proc/{kept['kept_server']}").exists() or _zombie(kept["kept_server"])
    assert data["kept_server_rss_mib"] > 100  # TensorFlow's import, at least
    # The kept run's workers were the Ray stage's forks: a process of its own pages, while it ran.
    assert kept["stage_private_mib"] > 5 and run["stage_private_mib"] is None
    # One worker's chain alone: each phase took time, the imports (TensorFlow's) the most.
    alone = {name: (wall, cpu) for name, wall, cpu in data["worker_alone"]}
    assert list(alone) == [
        startup.FORK_SERVER,
        "a forked worker's imports: Ray, Tune, the trainable",
        "the data as tensors and the trial's model",
        "its first epoch (tracing the training step)",
    ]
    assert all(wall > 0 and cpu > 0 for wall, cpu in alone.values()), alone
    # TensorFlow's import, in the fork server, is the largest part.
    assert max(alone, key=lambda name: alone[name][0]) == startup.FORK_SERVER, alone
    # The lean import loads what a plain one does, less the hidden package, and costs less.
    importance = data["imports"]["optuna.importance"]
    assert importance["plain_loaded"] == ["sklearn"] and importance["lean_loaded"] == []
    assert importance["lean_cpu_s"] < importance["plain_cpu_s"], importance


@pytest.mark.integration
@pytest.mark.slow
def test_chaos_smoke_kills_a_driver_resumes_it_and_loses_nothing(tmp_path):
    # One fault: the drivers are processes of their own (each with its own Ray), so this costs a sweep,
    # a kill and a resume.
    assert chaos.main(["--smoke", "--faults", "1", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "chaos.json").read_text())
    assert (data["faults_injected"], data["faults_survived"], data["data_lost"]) == (1, 1, 0), data["sweeps"]
    (sweep,) = data["sweeps"]
    assert sweep["plan"]["kind"] == "driver" and sweep["exits"][-1] == 0 and len(sweep["exits"]) >= 2
    assert sweep["trials"] == 3 and "| faults survived | 1 |" in (tmp_path / "chaos.md").read_text()


def test_chaos_refuses_an_unknown_fault_in_one_line(tmp_path, capsys):
    assert chaos.main(["--kinds", "driver,meteor", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --kinds 'driver,meteor': choose among driver, worker, node, postgres, disk"]
    assert not (tmp_path / "chaos.json").exists()


@pytest.mark.integration  # no Ray, but a store of sweeps built and reported: the full suite runs it
def test_store_scale_smoke_times_the_results_commands(tmp_path):
    assert store_scale.main(["--smoke", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "store_scale.json").read_text())
    assert (data["trials"], data["epochs"]) == (200, 2000)  # 4 sweeps x 50 trials x 10 epochs on average
    assert list(data["commands"]) == list(store_scale.commands("S", tmp_path))
    assert all(c["in_process"]["median_s"] > 0 for c in data["commands"].values())
    assert data["commands"]["results"]["fresh_process"]["median_s"] > 0
    assert "| `report --job digits` |" in (tmp_path / "store_scale.md").read_text()


def test_store_writes_smoke_times_each_write_of_a_trial(tmp_path):
    assert store_writes.main(["--smoke", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "store_writes.json").read_text())
    assert (data["trials"], data["epochs_per_trial"]) == (5, 2)
    counts = {kind: w["count"] for kind, w in data["writes"].items()}
    assert counts == {"start": 5, "epoch": 10, "checkpoint": 5, "finish": 5}
    assert all(w["median_ms"] > 0 for w in data["writes"].values())
    assert "| epoch | 10 |" in (tmp_path / "store_writes.md").read_text()


def test_tensorboard_writes_smoke_times_both_loggers(tmp_path):
    assert tensorboard_writes.main(["--smoke", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "tensorboard_writes.json").read_text())
    assert (data["trials"], data["epochs_per_trial"]) == (4, 2)
    assert list(data["loggers"]) == ["Ray Tune's TBXLoggerCallback", "the sweep's TensorBoardLogger"]
    assert all(v["cpu_ms_per_trial"] > 0 and v["wall_ms_per_trial"] > 0 for v in data["loggers"].values())
    assert "| the sweep's TensorBoardLogger |" in (tmp_path / "tensorboard_writes.md").read_text()


def test_tensorboard_writes_refuses_bad_input_in_one_line(tmp_path, capsys):
    assert tensorboard_writes.main(["--trials", "0", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --trials and --epochs must be >= 1, got 0 and 3"
    ]
    assert not (tmp_path / "tensorboard_writes.json").exists()


def test_snapshot_cost_smoke_times_both_metadata_at_each_size(tmp_path):
    assert snapshot_cost.main(["--smoke", "--out", str(tmp_path)]) == 0
    runs = json.loads((tmp_path / "snapshot_cost.json").read_text())["runs"]
    assert list(runs) == ["16 Ray Tune's", "16 the sweep's", "64 Ray Tune's", "64 the sweep's"]
    assert runs["64 Ray Tune's"]["state_mb"] > 3 * runs["16 Ray Tune's"]["state_mb"]  # it holds every trial
    assert runs["64 the sweep's"]["trial_kb"] < runs["64 Ray Tune's"]["trial_kb"]  # no last-n windows
    timed = ("encode_ms_per_trial", "write_cpu_ms", "write_wall_ms", "keep_cpu_ms", "keep_wall_ms")
    assert all(r[k] > 0 for r in runs.values() for k in timed)
    assert "| 64 | the sweep's |" in (tmp_path / "snapshot_cost.md").read_text()


def test_snapshot_cost_refuses_bad_input_in_one_line(tmp_path, capsys):
    assert snapshot_cost.main(["--repeats", "0", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --repeats and --epochs must be >= 1, got 0 and 3"
    ]
    assert not (tmp_path / "snapshot_cost.json").exists()


def test_store_writes_refuses_bad_input_in_one_line(tmp_path, capsys):
    assert store_writes.main(["--db", "sqlite:///x.db", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: --db: give a postgresql:// URL (the default is a SQLite file in a temporary folder), got a sqlite URL"
    ]
    assert not (tmp_path / "store_writes.json").exists()


@pytest.mark.integration
def test_dashboard_smoke_times_every_page_over_http(tmp_path):
    """It serves the dashboard (a server, hence the marker): every request answered, each timed."""
    assert dashboard.main(["--smoke", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "dashboard.json").read_text())
    assert (data["trials"], data["epochs"]) == (200, 2000)
    expected = [name for name in dashboard.requests(["S0", "S"]) if name not in dashboard.KEPT.values()]
    assert list(data["requests"]) == expected
    assert all(r["median_s"] > 0 for r in data["requests"].values())
    assert "| sweep page | `/sweeps/S` |" in (tmp_path / "dashboard.md").read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sizes", "20x500"], "error: --sizes '20x500': give SWEEPSxTRIALSxEPOCHS, three integers >= 1"),
        (["--db", "mysql://u:secret@h/db"], "error: database URL 'mysql://u:***@h/db': unsupported database"),
    ],
)
def test_store_scale_refuses_bad_input_in_one_line(tmp_path, capsys, argv, message):
    assert store_scale.main([*argv, "--smoke", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith(message) and "secret" not in err[0]
    assert not (tmp_path / "store_scale.json").exists()


@pytest.mark.integration
@pytest.mark.slow
def test_multiobjective_smoke_compares_fronts_on_one_epoch_budget(ray_local, tmp_path, capsys):
    assert multiobjective.main(["--smoke", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "multiobjective.json").read_text())
    ours, peer = data["runs"]["ours"], data["runs"]["optuna-nsga2"]
    assert data["trials"] == 4 and data["max_epochs"] == 2 and ours["trials"] == 4
    assert 4 <= ours["epochs"] <= 8 and peer["epochs"] == ours["epochs"]
    assert data["reference"]["params"] == 150794  # 3 x 256 units on digits' 64 inputs and 10 classes
    for run in (ours, peer):
        assert run["front_size"] == len(run["front"]) >= run["front_points"] >= 1
        assert 0 < run["hypervolume"] <= 1
        points = [(-m["val_accuracy"], m["params"]) for m in run["front"]]
        assert sorted(pareto.front(points)) == list(range(len(points)))  # nothing on it is dominated
        everything = [(-m["val_accuracy"], m["params"]) for m in run["all"]]
        assert multiobjective.hypervolume_2d(everything, (0, 150794)) == pytest.approx(
            run["hypervolume"] * 150794
        )
    assert data["ratios"]["wall_s"] == pytest.approx(ours["wall_s"] / peer["wall_s"])
    assert set(data["load_average"]) == {"before", "after", "disturbed"}
    assert "| optuna nsga2 (in-process) |" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--trials", "1"], "error: --trials 1: a front needs at least 2 trials; give --trials 2 or more"),
        (["--epochs", "0"], "error: --epochs 0: each trial trains at least 1 epoch; give --epochs 1 or more"),
    ],
)
def test_multiobjective_refuses_bad_sizes_in_one_line(tmp_path, capsys, argv, message):
    assert multiobjective.main([*argv, "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [message]
    assert not (tmp_path / "multiobjective.json").exists()


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has ended but is not reaped yet (or has ended since the check before)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True
