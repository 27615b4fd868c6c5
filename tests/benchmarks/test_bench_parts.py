"""The benchmark suite's parts without Ray or training: budgets, space conversions, tables, targets."""

from __future__ import annotations

import gc
import json
import math
import subprocess
import sys
import time

import pytest

from benchmarks import compare, multiobjective, ours, overhead, peers, startup
from benchmarks.gcpauses import GcPauses
from benchmarks.problems import PROBLEMS, get_problem, hyperband_schedule
from benchmarks.reporting import ToolRun, markdown_table, plot_best_so_far
from tuning_service.core.errors import InputError


def test_hyperband_budget_matches_keras_tuner_schedule():
    # Telco's seed: max_epochs 30, factor 3 -> 4 brackets, 90 trials, 576 epochs (issue 10's "~576").
    assert hyperband_schedule(30, 3) == (576, 90)
    assert hyperband_schedule(3, 3) == (11, 6)


def test_keras_tuner_schedule_is_what_keras_tuner_runs():
    kt = pytest.importorskip("keras_tuner")
    oracle = kt.oracles.HyperbandOracle(
        objective=kt.Objective("val_accuracy", "max"), max_epochs=30, factor=3
    )
    total = trials = 0
    for bracket in range(oracle._get_num_brackets()):
        for rung in range(bracket + 1):
            size = oracle._get_size(bracket, rung)
            before = oracle._get_epochs(bracket, rung - 1) if rung else 0
            total += size * (oracle._get_epochs(bracket, rung) - before)
            trials += size
    assert (total, trials) == hyperband_schedule(30, 3)


def test_telco_problem_is_the_seeds():
    telco = get_problem("telco_churn")
    assert telco.grid_size == 54 and telco.cv == 3 and telco.max_epochs == 30 and telco.factor == 3
    assert telco.job.defaults["batch_size"] == 50
    assert telco.grid_job.space.grid_size() == 54 and telco.grid_job.max_epochs == 30


@pytest.mark.parametrize("name", sorted(PROBLEMS))
@pytest.mark.parametrize("smoke", [False, True])
def test_every_space_converts_to_both_peers(name, smoke):
    kt = pytest.importorskip("keras_tuner")
    optuna = pytest.importorskip("optuna")
    job = get_problem(name, smoke=smoke).job
    hp = kt.HyperParameters()
    values = {n: peers._kt_param(hp, n, p) for n, p in job.space.items()}
    trial = optuna.create_study().ask()
    suggested = {n: peers._optuna_param(trial, n, p) for n, p in job.space.items()}
    for config in (values, suggested):
        assert set(config) == set(job.space)
        assert all(job.space[n].contains(v) for n, v in config.items()), config


def test_unknown_tool_is_refused_with_the_valid_names():
    with pytest.raises(InputError, match=r"unknown benchmark tool 'keras_tuner'.*keras-tuner"):
        compare.parse_tools("keras_tuner")
    assert compare.parse_tools("gridsearchcv,ours-grid") == ["ours-grid", "gridsearchcv"]


def _run(tool: str, wall: float, best: float, events=()) -> ToolRun:
    return ToolRun(tool, wall, 10, 2, best, {"units": 8}, 3, events=list(events))


def test_ratios_and_targets_against_keras_tuner():
    runs = {
        "keras-tuner": _run("kt", 100.0, 0.80),
        "ours-optuna": _run("o", 35.0, 0.81),
        "ours-random": _run("r", 50.0, 0.79),
        "ours-grid": _run("g", 20.0, 0.80),
        "gridsearchcv": _run("gs", 80.0, 0.80),
        "optuna-hyperband-2proc": _run("o2", 70.0, 0.80),
    }
    rel = compare.ratios(runs)
    assert rel["optuna-hyperband-2proc"]["peer_vs_ours"] == pytest.approx(2.0)
    assert rel["keras-tuner"]["peer_vs_ours"] == pytest.approx(100 / 35)
    assert rel["gridsearchcv"]["peer_vs_ours"] == pytest.approx(4.0)
    assert compare.targets(runs, None) == []  # only problems with a target get target lines
    found = {t["tool"]: t for t in compare.targets(runs, 0.4)}
    assert found["ours-optuna"]["wall_met"] and found["ours-optuna"]["accuracy_met"]
    assert not found["ours-random"]["wall_met"] and not found["ours-random"]["accuracy_met"]
    text = compare.table({"runs": runs, "threshold": 0.8})
    assert "2.86x ours-optuna" in text and "| ours-optuna | 35.0 |" in text


def test_time_to_threshold_and_best_so_far():
    run = _run("x", 9.0, 0.9, events=[(3.0, 0.7), (1.0, 0.6), (5.0, 0.85), (4.0, math.nan), (6.0, 0.8)])
    assert run.time_to(0.8) == 5.0 and run.time_to(0.95) is None
    assert run.best_so_far() == [(1.0, 0.6), (3.0, 0.7), (5.0, 0.85)]


def test_plot_and_table_are_written(tmp_path):
    path = plot_best_so_far(
        tmp_path / "p.png", [_run("a", 4.0, 0.8, [(1.0, 0.5), (2.0, 0.8)])], title="t", threshold=0.8
    )
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert markdown_table(["a", "b"], [[1, 2]]).splitlines() == ["| a | b |", "|---|---|", "| 1 | 2 |"]


def test_asha_expected_epochs_per_trial():
    # Rungs 1, 3, 9, 27 then max_t 30; a third survive each rung.
    assert ours.asha_epochs_per_trial(30, 1, 3) == pytest.approx(1 + 2 / 3 + 6 / 9 + 18 / 27 + 3 / 81)
    assert ours.asha_epochs_per_trial(1, 1, 3) == 1


def test_tune_only_switches_off_the_services_per_trial_writes_and_restores_them(tmp_path, monkeypatch):
    """Inside `service_writes_off` the recorder writes no epoch and Tune's snapshot runs only when
    forced; outside, both are as before."""
    from types import SimpleNamespace

    from ray.tune.execution.tune_controller import TuneController

    from tuning_service.raytune.recorder import RecorderCallback
    from tuning_service.store import open_store

    saved: list[bool] = []
    controller = SimpleNamespace()
    trial = SimpleNamespace(trial_id="t1", config={"units": 8}, last_result={}, checkpoint=None)
    with open_store(f"sqlite:///{tmp_path / 'results.db'}") as store:
        store.create_sweep(
            "s1", job="digits", job_ref="digits", metric="val_accuracy", mode="max", searcher="random",
            scheduler="fifo", seed=0, space={}, spec={}, versions={},
        )  # fmt: skip
        recorder = RecorderCallback(
            store, "s1", metric="val_accuracy", mode="max", max_epochs=3, effective=lambda c: dict(c)
        )
        monkeypatch.setattr(
            TuneController, "checkpoint", lambda self, force=False, wait=False: saved.append(force)
        )
        with overhead.service_writes_off():
            recorder.on_trial_result(1, [], trial, {"training_iteration": 1, "val_accuracy": 0.5})
            TuneController.checkpoint(controller)
            TuneController.checkpoint(controller, force=True)
            assert store.epochs("s1") == []
        TuneController.checkpoint(controller)
        assert saved == [True, False]
        recorder.on_trial_result(1, [], trial, {"training_iteration": 1, "val_accuracy": 0.5})
        assert [(e.epoch, e.value) for e in store.epochs("s1")] == [(1, 0.5)]


def test_overhead_accounting_per_worker_slot(tmp_path):
    from tuning_service.core.results import SweepResult, TrialSummary

    # Two workers; each trial trains 1 s; worker 1 runs a then c, worker 2 runs b.
    spans = {"a": (10.0, 11.2, 1), "b": (10.1, 11.2, 2), "c": (11.3, 12.5, 1)}
    trials = []
    for tid, (start, end, pid) in spans.items():
        history = [
            {"training_iteration": 1, "ended_at": end, "time_this_iter_s": end - start, "val_accuracy": 0.5}
        ]
        trials.append(TrialSummary(tid, {}, "completed", 0.5, 1, 1, 1.0, history=history))
        trial_dir = tmp_path / "trials" / tid
        trial_dir.mkdir(parents=True)
        (trial_dir / "result.json").write_text(json.dumps({"trial_id": tid, "pid": pid}) + "\n")
    result = SweepResult("s", "digits", "val_accuracy", "max", "random", "fifo", 0, tmp_path, trials, 5.0, 1)
    found = overhead.analyse(result, t0=8.0, wall=5.0, slots=2)
    assert found["slot_efficiency"] == pytest.approx(3.0 / 10.0)
    assert found["startup_s"] == pytest.approx(2.0) and found["tail_s"] == pytest.approx(0.5)
    # a: 11.2 - 10.0 - 1; b: 11.2 - 10.0 - 1; c: 12.5 - 11.2 - 1
    assert found["per_trial_overhead_s"] == pytest.approx([0.2, 0.2, 0.3])
    assert found["median_overhead_s"] == pytest.approx(0.2)
    assert found["workers"] == 2


def test_summary_gathers_tables_and_copies_plots(tmp_path):
    from benchmarks import summary
    from benchmarks.reporting import header, write_json

    folder = tmp_path / "out" / "overhead"
    write_json(
        folder / "overhead.json", header("overhead", smoke=True, command="python -m benchmarks.overhead")
    )
    (folder / "overhead.md").write_text("## overhead\n\n| measure | value |\n")
    found = summary.collect(tmp_path / "out")
    text = summary.render(found, summary.copy_artifacts(found, tmp_path / "results", tmp_path))
    assert (
        "## overhead" in text and "Command: `python -m benchmarks.overhead`" in text and "Machine: " in text
    )
    assert (tmp_path / "results" / "overhead.json").exists()


def test_stacks_groups_samples_by_process_kind():
    from benchmarks.stacks import summarise

    lines = [
        'process 1:"python -m benchmarks.overhead";main (overhead.py:1);run_sweep (runner.py:2) 3',
        'process 1:"python -m benchmarks.overhead";process 7:"ray::IDLE";train (trainable.py:1);fit (trainer.py:9) 6',
        'process 1:"python -m benchmarks.overhead";process 8:"ray::IDLE";train (trainable.py:1);save (trainable.py:5) 2',
    ]
    text = summarise(lines, match=["train"])
    assert "### Ray worker (trials): 8 samples" in text and "| 75.0 | `fit (trainer.py:9)` |" in text
    assert (
        "### driver (benchmarks.overhead): 3 samples" in text
        and "| 100.0 | `train (trainable.py:1)` |" in text
    )


def test_worker_time_splits_a_workers_calls_by_kind():
    from benchmarks.timeline import summary_rows, worker_time

    def call(tid, start, seconds, name):
        return {"ph": "X", "cat": f"task::ResourceTrainable.{name}", "name": name, "tid": tid,
                "ts": start * 1e6, "dur": seconds * 1e6}  # fmt: skip

    events = [
        call("w1", 0.0, 0.1, "__init__"), call("w1", 0.2, 0.8, "train"), call("w1", 1.0, 0.1, "train"),
        call("w1", 1.2, 0.1, "save"), call("w1", 1.5, 0.0, "reset"), call("w1", 1.5, 0.5, "train"),
        {"ph": "X", "cat": "submit_task", "name": "train", "tid": "w1", "ts": 0, "dur": 9e6},  # not a call
        call("w2", 0.0, 0.2, "__init__"), call("w2", 0.2, 0.6, "train"),
    ]  # fmt: skip
    report = worker_time(events)
    w1, w2 = report["workers"]
    assert w1["calls"]["first train"] == [0.8, 0.5] and w1["calls"]["later train"] == [0.1]
    assert math.isclose(w1["span_s"], 2.0) and math.isclose(w1["idle_s"], 0.4)
    assert w2["calls"]["first train"] == [0.6] and w2["idle_s"] == 0.0
    rows = {row[0]: row for row in summary_rows(report)}
    assert rows["first train"][1:4] == [3, "1.9", "0.600"]
    assert rows["idle between calls"][2] == "0.4"


def test_the_driver_scale_rate_by_tenth_shows_a_sweep_slowing_down():
    from benchmarks.driver_scale import rate_by_tenth

    steady = [i * 0.1 for i in range(200)]
    assert rate_by_tenth(steady) == pytest.approx([10.0] * 10, rel=0.1)
    # Each trial takes longer than the one before: the last tenth ends fewer trials per second.
    slowing = [sum(0.01 * (1 + k / 50) for k in range(i)) for i in range(200)]
    tenths = rate_by_tenth(slowing)
    assert tenths[-1] < 0.5 * tenths[0] and sum(tenths) * (max(slowing) - min(slowing)) / 10 == pytest.approx(
        200
    )
    assert rate_by_tenth(steady[:5]) == []


def test_driver_scale_sizes_are_checked():
    from benchmarks import driver_scale

    assert driver_scale.build_parser().parse_args(["--trials", "1000,10000"]).trials == [1000, 10000]
    with pytest.raises(SystemExit):
        driver_scale.build_parser().parse_args(["--trials", "1000,lots"])


def test_hypervolume_2d_by_hand():
    hv = multiobjective.hypervolume_2d
    assert hv([], (3.0, 3.0)) == 0.0
    assert hv([(1.0, 2.0)], (3.0, 3.0)) == 2.0
    # Two rectangles of 2 overlapping in 1: 3; the order given does not matter.
    assert hv([(2.0, 1.0), (1.0, 2.0)], (3.0, 3.0)) == 3.0
    # A dominated point, a duplicate and points at or beyond the reference add nothing.
    assert hv([(1.0, 2.0), (2.0, 1.0), (2.0, 2.5), (1.0, 2.0), (3.0, 0.0), (0.0, 3.0)], (3.0, 3.0)) == 3.0
    # The same first objective twice: only the lower second one counts.
    assert hv([(1.0, 2.5), (1.0, 2.0)], (3.0, 3.0)) == 2.0


def test_front_hypervolume_is_the_share_of_the_accuracy_params_box():
    front = [{"val_accuracy": 0.9, "params": 500}, {"val_accuracy": 0.5, "params": 100}]
    # 0.5 x 900 + (0.9 - 0.5) x 500 over 1 x 1000.
    assert multiobjective.front_hypervolume(front, 1000) == pytest.approx(0.65)
    assert multiobjective.front_hypervolume([*front, {"val_accuracy": 0.8, "params": 600}], 1000) == (
        pytest.approx(0.65)
    )


def test_multiobjective_population_is_our_nsga2_default():
    from tuning_service.raytune.searchers import nsga2

    assert multiobjective.default_population() == 10
    assert nsga2.build.__kwdefaults__["population_size"] == 10


def test_startup_cpu_takes_each_process_at_its_last_sample_up_to_the_moment():
    samples = [
        (1.0, {10: ("driver", 0.5), 11: ("Ray's services", 0.1)}),
        (2.0, {10: ("driver", 1.0), 12: ("trial workers", 2.0)}),  # 11 has ended: its last figure stays
        (3.0, {10: ("driver", 1.5), 12: ("trial workers", 3.0)}),
    ]
    none = "worker fork server"
    assert startup.cpu_by_kind(samples, 2.5) == {
        "driver": 1.0,
        "trial workers": 2.0,
        none: 0.0,
        "Ray's services": 0.1,
    }
    assert startup.cpu_by_kind(samples) == {
        "driver": 1.5,
        "trial workers": 3.0,
        none: 0.0,
        "Ray's services": 0.1,
    }
    assert startup.cpu_by_kind(samples, 0.5) == dict.fromkeys(startup.KINDS, 0.0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="read from Linux's /proc")
def test_startup_reads_when_a_process_started():
    before = time.time()
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"]) as child:
        try:
            started = startup.process_started(child.pid)
        finally:
            child.kill()
    # To the clock tick (10 ms), the child forked after ``before``. Before: the boot time was
    # /proc/stat's, in whole seconds, which put every start up to a second early.
    assert started is not None and -0.02 <= started - before < 0.5


def test_startup_sorts_processes_by_kind():
    assert startup._kind(10, 10, "python -m tuning_service run digits") == "driver"
    assert (
        startup._kind(12, 10, "python .../ray/_private/workers/default_worker.py --node-ip")
        == "trial workers"
    )
    assert startup._kind(12, 10, "ray::KerasTrainable.train") == "trial workers"
    # The raylet's arguments name the worker's script: it is still one of Ray's services.
    raylet = (
        ".../ray/core/src/ray/raylet/raylet --raylet_socket_name=/tmp/ray/raylet "
        "--python_worker_command=python .../ray/_private/workers/default_worker.py --node-ip-address=127.0.0.1"
    )
    assert startup._kind(13, 10, raylet) == "Ray's services"
    assert startup._kind(14, 10, "ray::DashboardAgent") == "Ray's services"
    server = "python -m tuning_service.raytune.workerfork /tmp/tuning-service-workers-x/socket 10"
    assert startup._kind(15, 10, server) == "worker fork server"


def test_startup_cpu_table_gives_the_floor_the_cores_allow(monkeypatch):
    monkeypatch.setattr(startup.os, "cpu_count", lambda: 2)
    run = {"driver": 2.0, "trial workers": 3.0, "worker fork server": 2.0, "Ray's services": 1.0}
    runs = [{"cpu_to_first_epoch_s": run, "cpu_to_exit_s": {k: v + 1 for k, v in run.items()}}]
    table = startup.cpu_table(runs)
    assert table is not None
    assert "| all | 8.00 | 12.00 |" in table and "takes at least 4.00 s" in table
    assert startup.cpu_table([{"cpu_to_first_epoch_s": None}]) is None  # not sampled (not Linux)


def test_gc_pauses_counts_this_process_collections_within_a_window():
    with GcPauses() as pauses:
        start = time.time()
        gc.collect(0)
        gc.collect(2)
        end = time.time()
    assert pauses._note not in gc.callbacks  # the process's collector is left as it was
    found = pauses.within(start, end)
    assert found[0][0] >= 1 and found[2][0] >= 1 and found[2][1] > 0
    assert pauses.within(end + 1, end + 2) == {}
