"""A sweep's settings, declared once on SweepSpec: each is a `run` option, a schedule-file key and argv."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from tuning_service.cli import main
from tuning_service.cli.options import option_kwargs, spec_of_options
from tuning_service.cli.run import run
from tuning_service.cli.submit import submit
from tuning_service.core import yamlio
from tuning_service.core.settings import SweepSetting, from_record, recorded, run_args, sweep_settings
from tuning_service.core.spec import Setting, SweepSpec
from tuning_service.sweeps.nightly import targets
from tuning_service.sweeps.nightly.schedulefile import load_schedule

TINY = "tuning_service.testing:tiny_job"
OPTIONS = [s for s in sweep_settings() if s.flag]
# Settings a schedule file sets and a submission forwards: every one but the schedule's own.
TRAVELLING = [s for s in sweep_settings() if s.file_key and s.how.forwarded]
# Values that are not the default; a URL the database check reads as one.
EXAMPLES: dict[str, Any] = {"db": "postgresql://tuner@db.example/results"}


def _example(setting: SweepSetting) -> Any:
    """A value of the setting's type, within its range and not its default."""
    if setting.name in EXAMPLES:
        return EXAMPLES[setting.name]
    least = setting.how.minimum or 0
    return {
        int: int(least) + 1,
        float: least + 1.5,
        dict: {"option": 3, "name": "a b"},
        str: "some-name",
        tuple: ["first", "second one"],
    }[setting.kind]


def _schedule(tmp_path: Path, body: dict[str, Any], defaults: dict[str, Any] | None = None) -> Path:
    data: dict[str, Any] = {"sweeps": {"nightly": {"job": TINY, "cron": "0 2 * * *", **body}}}
    if defaults:
        data["defaults"] = defaults
    path = tmp_path / "sweeps.yaml"
    path.write_text(yamlio.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("setting", OPTIONS, ids=lambda s: s.name)
def test_every_setting_with_an_option_is_in_run_and_submit_help(setting):
    help_text = CliRunner().invoke(run, ["--help"], terminal_width=200).output
    assert re.search(rf"^\s+{re.escape(setting.flag)}\b", help_text, re.M), help_text
    if setting.help:
        assert " ".join(setting.help.split()[:4]) in " ".join(help_text.split())
    if setting.how.forwarded:
        assert setting.param in {p.name for p in submit.params}


@pytest.mark.parametrize("setting", TRAVELLING, ids=lambda s: s.name)
def test_every_setting_goes_from_a_schedule_file_to_argv_and_back_unchanged(setting, tmp_path):
    """Before: a schedule file could not set epoch_budget, cv_folds, mlflow or cpus_per_trial."""
    value = _example(setting)
    (sweep,) = load_schedule(_schedule(tmp_path, {setting.file_key: value}), check_jobs=False).sweeps
    spec = sweep.spec
    expected = str(tmp_path / value) if setting.how.path else tuple(value) if setting.kind is tuple else value
    assert getattr(spec, setting.name) == expected
    argv = run_args(spec)
    assert setting.flag in argv
    params = run.make_context("run", [spec.job, *argv]).params
    rebuilt = spec_of_options(params, job=spec.job, storage=spec.storage)
    assert rebuilt == spec


@pytest.mark.parametrize("setting", [s for s in sweep_settings() if s.how.aliases], ids=lambda s: s.name)
def test_a_setting_reads_the_same_under_its_earlier_schedule_file_name(setting, tmp_path):
    value = _example(setting)
    (today,) = load_schedule(_schedule(tmp_path, {setting.file_key: value}), check_jobs=False).sweeps
    for alias in setting.how.aliases:
        (earlier,) = load_schedule(_schedule(tmp_path, {alias: value}), check_jobs=False).sweeps
        assert earlier.spec == today.spec


def test_an_old_schedule_file_loads_as_before(tmp_path):
    old = {
        "time_budget_s": 600,
        "max_concurrent_trials": 2,
        "database": "postgresql://tuner@db.example/results",
        "resources_per_trial": {"cpu": 2},
        "searcher_options": {"n_startup_trials": 3},
    }
    new = {
        "time_budget": 600,
        "max_concurrent": 2,
        "db": "postgresql://tuner@db.example/results",
        "cpus_per_trial": 2,
        "gpus_per_trial": 0,
        "searcher_option": {"n_startup_trials": 3},
    }
    (before,) = load_schedule(_schedule(tmp_path, old), check_jobs=False).sweeps
    (after,) = load_schedule(_schedule(tmp_path, new), check_jobs=False).sweeps
    assert before.spec == after.spec
    assert (before.spec.time_budget_s, before.spec.cpus_per_trial, before.spec.gpus_per_trial) == (
        600,
        2.0,
        0.0,
    )


def test_a_sweep_overrides_a_default_given_under_the_earlier_name(tmp_path):
    path = _schedule(tmp_path, {"time_budget": 60}, defaults={"time_budget_s": 600, "max_concurrent": 3})
    (sweep,) = load_schedule(path, check_jobs=False).sweeps
    assert (sweep.spec.time_budget_s, sweep.spec.max_concurrent) == (60, 3)


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (
            "    time_budget_s: 600\n    time_budget: 60\n",
            6,
            "sweeps.nightly.time_budget: 'time_budget' and 'time_budget_s' both set 'time_budget'; keep one",
        ),
        (
            "    resources_per_trial: {cpu: 2}\n    gpus_per_trial: 1\n",
            6,
            "sweeps.nightly.gpus_per_trial: 'gpus_per_trial' and 'resources_per_trial' both set "
            "'gpus_per_trial'; keep one",
        ),
        (
            "    cv_folds: 1\n",
            5,
            r"sweeps.nightly.cv_folds: expected an integer from 2 to 2147483647, got 1 \(int\)",
        ),
        (
            "    cpus_per_trial: 0\n",
            5,
            r"sweeps.nightly.cpus_per_trial: expected a number > 0, got 0 \(int\)",
        ),
        (
            "    epoch_budget: lots\n",
            5,
            r"sweeps.nightly.epoch_budget: expected an integer from 1 to 2147483647, got 'lots'",
        ),
    ],
)
def test_a_setting_given_twice_or_out_of_range_is_refused_with_its_line(
    tmp_path, capsys, body, line, message
):
    path = tmp_path / "sweeps.yaml"
    path.write_text(f"sweeps:\n  nightly:\n    job: {TINY}\n    cron: '0 2 * * *'\n{body}", encoding="utf-8")
    assert main(["schedule", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"sweeps.yaml:{line}: " in err, err
    assert re.search(message, err), err


def test_the_unknown_key_error_lists_each_setting_under_its_run_option_name(tmp_path, capsys):
    path = _schedule(tmp_path, {"grace": 3})
    assert main(["schedule", "validate", str(path)]) == 2
    accepted = re.search(r"\(accepted: ([^)]*)\)", capsys.readouterr().err).group(1).split(", ")
    assert {s.file_key for s in sweep_settings() if s.file_key} <= set(accepted)
    assert "database" not in accepted and "time_budget_s" not in accepted  # earlier names still load


def test_submit_and_the_scheduler_forward_the_same_argv_without_the_password(caplog):
    """Before: two conversions to argv, forwarding different options."""
    given = ["--address", "http://h:8265", "--epoch-budget", "40", "--cv-folds", "3", "--seed", "4"]
    given += ["--db", "postgresql://tuner:s3cret@db.example/results", "--scheduler-option", "grace_period=2"]
    values = submit.make_context("submit", given).params
    from tuning_service.cli.submit import run_args as submit_args
    from tuning_service.cli.submit import sweep_spec as submit_spec

    argv = submit_args(values)
    assert argv == run_args(submit_spec("digits", "~/r", values))
    assert argv == targets.run_args(submit_spec("digits", "~/r", values))
    assert argv == [
        "--cv-folds",
        "3",
        "--epoch-budget",
        "40",
        "--seed",
        "4",
        "--scheduler-option",
        "grace_period=2",
        "--db",
        "postgresql://tuner@db.example/results",
    ]
    assert "s3cret" not in " ".join(argv) and "PGPASSWORD" in caplog.text


def test_the_store_records_every_setting_but_the_secret_ones_and_resume_rebuilds_the_spec():
    spec = SweepSpec(
        **{s.name: _example(s) for s in sweep_settings() if s.kind is not tuple},
        points_to_evaluate=({"units": 8},),
    )
    kept = json.loads(json.dumps(recorded(spec)))  # as the database's JSON column hands it back
    assert "db" not in kept and set(kept) == {s.name for s in sweep_settings()} - {"db"}
    assert from_record(kept, db="sqlite:///here.db") == spec.replace(db="sqlite:///here.db")
    # A record from before a setting existed gives it its default; a removed setting is ignored.
    older = {k: v for k, v in kept.items() if k != "epoch_budget"} | {"retired_setting": 1}
    assert from_record(older, db=None).epoch_budget is None


def test_a_repeatable_setting_is_a_list_in_files_and_a_repeated_option():
    """What a list setting (e.g. constraints) gets from being declared as `tuple[str, ...]`."""
    item = SweepSetting("constraints", tuple, (), Setting(flag="--constraint", help="A bound (repeatable)."))
    option = click.Option([item.flag], **option_kwargs(item))
    assert option.multiple and option.name == item.param == "constraint"
    assert item.takes(["val_loss <= 0.5"]) and not item.takes("val_loss <= 0.5") and not item.takes([""])
    assert item.accepts() == "a list of non-empty strings"
    argv = item.argv(("a <= 1", "b >= 2"))
    assert argv == ["--constraint", "a <= 1", "--constraint", "b >= 2"]
    assert click.Command("c", params=[option]).make_context("c", argv).params == {
        "constraint": ("a <= 1", "b >= 2")
    }


def test_a_scheduled_submission_keeps_this_machines_paths_here(tmp_path):
    """Before and after: a schedule file's data_dir and SQLite database are paths on this machine."""
    local = {"data_dir": "cache", "db": "sqlite:///here.db", "num_samples": 3}
    (sweep,) = load_schedule(_schedule(tmp_path, local), check_jobs=False).sweeps
    assert targets.run_args(sweep.spec) == ["--num-samples", "3"]
    assert run_args(sweep.spec)[-4:] == [
        "--db",
        f"sqlite:///{tmp_path / 'here.db'}",
        "--data-dir",
        str(tmp_path / "cache"),
    ]
    shared = sweep.spec.replace(db="postgresql://tuner:pw@db.example/results")
    assert targets.run_args(shared) == ["--num-samples", "3", "--db", "postgresql://tuner@db.example/results"]
