"""The command line: bad input exits 2 with one line and creates nothing; a tiny sweep runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tuning_service.cli import main

BAD_INPUTS = [
    (["run", "nosuchjob"], "unknown job 'nosuchjob'; choose one of: "),
    (
        ["run", "--searcher", "tpe"],
        "unknown searcher 'tpe'; choose one of: bohb, cmaes, gp, grid, hyperopt, motpe, nsga2, optuna, qmc, random "
        "(did you mean 'optuna'?)",
    ),
    (
        ["run", "--scheduler", "pbtt"],
        "unknown scheduler 'pbtt'; choose one of: asha, bohb, fifo, hyperband, median, pbt",
    ),
    (
        ["run", "--scheduler", "pbt"],
        "scheduler 'pbt' chooses configs itself as trials copy and perturb each other, so it works with "
        "searcher grid or random (its first population), not 'optuna'; add --searcher random",
    ),
    *(
        (["run", "--searcher", "random", "--scheduler", "pbt", *more], message)
        for more, message in [
            (
                ["--scheduler-option", "mutate=units"],
                "scheduler 'pbt': cannot perturb 'units': it changes the model's layers, so the copied "
                "weights would not fit",
            ),
            (
                ["--scheduler-option", "mutate=learning_rate,lr"],
                "scheduler 'pbt': cannot perturb 'lr': it is not a parameter of the space (its parameters: "
                "learning_rate, units, layers, activation, batch_size)",
            ),
            (
                ["--scheduler-option", "quantile_fraction=0.7"],
                "scheduler 'pbt': option 'quantile_fraction' must be a number > 0 and <= 0.5, got 0.7",
            ),
            (
                ["--scheduler-option", "resample_probability=-0.1"],
                "scheduler 'pbt': option 'resample_probability' must be a number >= 0 and <= 1, got -0.1",
            ),
            (
                ["--scheduler-option", "perturbation_interval=0"],
                "scheduler 'pbt': option 'perturbation_interval' must be an integer >= 1, got 0",
            ),
            (
                ["--scheduler-option", "perturbation_interval=5", "--max-epochs", "5"],
                "scheduler 'pbt': perturbation_interval 5 must be shorter than the epoch budget (5 epochs), "
                "or no trial is ever perturbed; lower it or raise --max-epochs",
            ),
            (
                ["--checkpoint-frequency", "4"],
                "scheduler 'pbt': --checkpoint-frequency 4 is longer than the perturbation_interval (3); "
                "trials copy each other's checkpoints at every interval, so checkpoint at least that often "
                "(--checkpoint-frequency 3 or less, or leave it out)",
            ),
            (
                ["--scheduler-option", "mutate=3"],
                "scheduler 'pbt': option 'mutate' must be a name or a list of names (comma-separated), got 3",
            ),
            (
                ["--scheduler-option", "grace_period=2"],
                "scheduler 'pbt': unknown option 'grace_period' (accepted: burn_in_period, mutate, "
                "perturbation_interval, quantile_fraction, resample_probability, synch)",
            ),
        ]
    ),
    (["run", "--num-samples", "0"], "--num-samples must be an integer from 1 to 2147483647, got 0"),
    (["run", "--max-epochs", "0"], "--max-epochs must be an integer from 1 to 2147483647, got 0"),
    # Found by Hypothesis: a number too large for the results database reached its INSERT.
    (
        ["run", "--max-epochs", "9" * 40],
        f"--max-epochs must be an integer from 1 to 2147483647, got {'9' * 40}",
    ),
    (
        ["run", "--cpus-per-trial", "-1"],
        "--cpus-per-trial must be a number > 0 (fractions allowed), got -1.0",
    ),
    (
        ["run", "--gpus-per-trial", "-0.5"],
        "--gpus-per-trial must be a number >= 0 (fractions allowed), got -0.5",
    ),
    (
        ["run", "--searcher", "grid", "--searcher-option", "points=0"],
        "searcher 'grid': option 'points' must be an integer >= 1 (or left empty), got 0",
    ),
    (
        ["run", "--searcher", "bohb", "--scheduler", "asha"],
        "searcher 'bohb' runs only with scheduler 'bohb' (its model learns from that scheduler's rungs), "
        "got scheduler 'asha'; pass --scheduler bohb or leave it out",
    ),
    (
        ["run", "--searcher", "random", "--scheduler", "bohb"],
        "scheduler 'bohb' runs only with searcher 'bohb', got searcher 'random'; "
        "use --searcher bohb, or --scheduler hyperband with 'random'",
    ),
    (
        ["run", "--searcher", "qmc", "--searcher-option", "qmc_type=lhs"],
        "searcher 'qmc': option 'qmc_type' must be one of: sobol, halton, got 'lhs'",
    ),
    (["run", "--num-samples", "many"], "Invalid value for '--num-samples': 'many' is not a valid integer."),
    (["run", "--scheduler-option", "grace=2"], "scheduler 'asha': unknown option 'grace'"),
    (["run", "--address", "not an address"], "--address must be 'auto', HOST:PORT or ray://HOST:PORT"),
    (["run", "--time-budget", "-5"], "--time-budget must be a number of seconds > 0, got -5.0"),
    (["run", "--max-failures", "-1"], "--max-failures must be an integer from 0 to 2147483647, got -1"),
    (["run", "20261123-190541-7821df"], "'20261123-190541-7821df' is a sweep id, not a job"),
    (["resume", "20261123-190541-7821df"], "no results database at"),
    # Before: a traceback from the YAML parser.
    (
        ["run", "--searcher-option", "n_startup_trials=[1"],
        "--searcher-option 'n_startup_trials=[1': the value is not valid YAML (expected ',' or ']', "
        "but got '<stream end>' at line 1, column 3); quote it if it is a string",
    ),
    (
        ["run", "--scheduler-option", "grace_period=&x [*x]"],
        "a recursive alias (an anchor used inside itself)",
    ),
    (["run", "--searcher-option", "=3"], "--searcher-option takes KEY=VALUE, got '=3'"),
    # Before: a FileNotFoundError traceback from the log handler.
    (
        ["--log-file", "/nonexistent/sweep.log", "run"],
        "--log-file '/nonexistent/sweep.log' cannot be written: No such file or directory",
    ),
]


@pytest.mark.parametrize(("argv", "message"), BAD_INPUTS)
def test_bad_input_exits_2_with_one_line_and_creates_nothing(tmp_path, capsys, argv, message):
    storage = tmp_path / "results"
    code = main([*argv, "--storage", str(storage)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not storage.exists()


def test_a_storage_root_that_cannot_be_created_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = main(["run", "--storage", str(blocker / "results")])
    assert code == 2
    assert "cannot be created" in capsys.readouterr().err
    assert blocker.is_file()


def test_bad_input_is_reported_fast_without_starting_ray(tmp_path):
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tuning_service",
            "run",
            "--searcher",
            "nope",
            "--storage",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: unknown searcher 'nope'")
    assert time.monotonic() - started < 5
    assert not (tmp_path / "r").exists()


def test_help_and_jobs_list_import_no_ray():
    code = "import sys; from tuning_service.cli import main; main(['jobs']); print(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'tensorflow', 'keras')))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("[]")
    assert "digits" in proc.stdout


def test_a_searcher_whose_extra_is_missing_exits_2_naming_the_pip_command(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda m, *a: None if m == "torch" else real(m, *a))
    code = main(["run", "digits", "--searcher", "gp", "--storage", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert (
        err == "error: searcher 'gp' needs torch, which is not installed: pip install 'tuning-service[gp]'\n"
    )
    assert not (tmp_path / "results").exists()


def test_jobs_and_run_help_say_which_searcher_needs_which_extra(capsys):
    assert main(["jobs"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") == 4}
    assert "pip install 'tuning-service[gp]'" in rows["gp"]
    assert "pip install 'tuning-service[bohb]'" in rows["bohb"] and "--scheduler bohb" in rows["bohb"]
    assert "pip install" not in rows["cmaes"] + rows["qmc"] + rows["optuna"]
    assert main(["run", "--help"]) == 0
    helptext = " ".join(capsys.readouterr().out.split())
    assert "bohb (needs the bohb extra)" in helptext and "gp (needs the gp extra)" in helptext
    assert "bohb (only with --searcher bohb)" in helptext


def test_jobs_shows_a_jobs_space(capsys):
    assert main(["jobs", "digits", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["metric"] == "val_accuracy" and "learning_rate" in data["space"]


@pytest.mark.integration
def test_run_prints_a_leaderboard_and_writes_best_config(ray_local, tmp_path, capsys):
    storage = tmp_path / "results"
    code = main(
        [
            "run",
            "digits",
            "--searcher",
            "random",
            "--scheduler",
            "fifo",
            "--num-samples",
            "2",
            "--max-epochs",
            "2",
            "--data-limit",
            "200",
            "--storage",
            str(storage),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "digits - sweep" in out and "val_accuracy" in out
    (best,) = storage.glob("digits/*/best_config.json")
    record = json.loads(best.read_text())
    assert record["job"] == "digits" and record["versions"]["ray"]
    assert set(record["config"]) >= {"learning_rate", "units", "layers"}


BAD_SPACES = [
    ('{"lr": Float(0.0, 1.0, log=True)}', "parameter 'lr': a log range needs low > 0, got low=0.0"),
    ('{"units": Int(64, 32)}', "parameter 'units': low must be <= high, got low=64, high=32"),
    ('{"activation": Choice(())}', "parameter 'activation': a choice needs at least one value, got []"),
]


@pytest.mark.parametrize(("space", "message"), BAD_SPACES)
def test_a_job_file_with_a_bad_space_exits_2_and_creates_nothing(tmp_path, capsys, space, message):
    job_file = tmp_path / "my_job.py"
    job_file.write_text(
        "from tuning_service import Choice, Float, Int, Job\n"
        "from tuning_service.models import build_mlp\n"
        "from jobs.digits import load_data\n"
        f"JOB = Job(name='mine', description='bad space', space={space}, load_data=load_data, build_model=build_mlp)\n"
    )
    storage = tmp_path / "results"
    code = main(["run", str(job_file), "--storage", str(storage)])
    err = capsys.readouterr().err
    assert code == 2 and err == f"error: {message}\n"
    assert not storage.exists()


def test_cv_folds_below_two_is_refused(tmp_path, capsys):
    assert main(["run", "--cv-folds", "1", "--storage", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err == "error: --cv-folds must be an integer from 2 to 2147483647, got 1\n"


@pytest.mark.parametrize(
    ("variable", "value", "argv", "message"),
    [
        # Before: a ValueError traceback at import, for every command.
        (
            "TUNING_SERVICE_CONNECT_TIMEOUT_S",
            "ten",
            ["run", "--address", "127.0.0.1:6379"],
            "TUNING_SERVICE_CONNECT_TIMEOUT_S must be a number of seconds > 0, got 'ten'; fix or unset it",
        ),
        ("TUNING_SERVICE_CONNECT_TIMEOUT_S", "-1", ["run", "--address", "auto"], "got '-1'"),
        # Before: passed on to Ray Tune, which failed with a traceback once the sweep had started.
        (
            "TUNING_SERVICE_SNAPSHOT_S",
            "often",
            ["run"],
            "TUNING_SERVICE_SNAPSHOT_S must be a number of seconds >= 0 or 'auto', got 'often'",
        ),
        # Tune's own cap on pending trials, which the sweep sets unless the user did: Tune failed
        # on a bad one with a traceback once the sweep had started.
        (
            "TUNE_MAX_PENDING_TRIALS_PG",
            "many",
            ["run"],
            "TUNE_MAX_PENDING_TRIALS_PG must be a whole number > 0 or 'auto', got 'many'; fix or unset it",
        ),
        (
            "TUNING_SERVICE_WORKERS_KEEP_S",
            "forever",
            ["run"],
            "TUNING_SERVICE_WORKERS_KEEP_S must be the seconds a sweep's worker fork server stays for "
            "the next sweep (a number >= 0; 0: it ends with the sweep; default 300), not 'forever'",
        ),
    ],
)
def test_a_bad_number_in_an_environment_variable_is_one_line_naming_it(
    tmp_path, capsys, monkeypatch, variable, value, argv, message
):
    monkeypatch.setenv(variable, value)
    storage = tmp_path / "results"
    code = main([*argv, "--storage", str(storage)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not storage.exists()


def test_the_input_checks_answer_without_importing_ray_tune(tmp_path):
    # Every check of `run` comes before Ray starts; none needs Tune, whose import was most of a
    # second of the command's start (`python -m benchmarks.startup`), and a refusal comes sooner.
    script = (
        "import sys\n"
        "from tuning_service.cli import main\n"
        "code = main(['run', 'digits', '--storage', sys.argv[1]])\n"
        "print('exit', code, 'ray.tune' in sys.modules)\n"
    )
    env = {**os.environ, "TUNING_SERVICE_SNAPSHOT_S": "often"}  # the last check of a local sweep
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "results")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.stdout.strip().splitlines()[-1] == "exit 2 False", done.stdout + done.stderr
    assert "TUNING_SERVICE_SNAPSHOT_S" in done.stderr


def test_a_ray_that_cannot_start_is_one_line_and_exit_1(tmp_path):
    # Outside integration tests Ray's session folder lies under a file (tests/conftest.py), and a
    # new process has no Ray of the test session's to reuse: Ray's own start fails for real, as
    # on a full disk or a node that times out under load.
    done = subprocess.run(
        [sys.executable, "-m", "tuning_service", "run", "digits", "--num-samples", "1"]
        + ["--max-epochs", "1", "--storage", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert done.returncode == 1, done.stderr
    err = done.stderr
    assert err.startswith("error: could not start an embedded Ray: NotADirectoryError"), err
    assert err.count("\n") == 1 and "ray.log" in err
