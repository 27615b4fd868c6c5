"""The deployment examples in cluster/schedule: their schedule files validate, their commands exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tuning_service.cli.run import run
from tuning_service.cli.schedule import schedule
from tuning_service.core.spec import SweepSpec
from tuning_service.sweeps.nightly.schedulefile import load_schedule
from tuning_service.sweeps.nightly.targets import run_args

EXAMPLES = Path(__file__).resolve().parents[3] / "cluster" / "schedule"


def test_the_example_schedule_file_is_valid():
    loaded = load_schedule(EXAMPLES / "sweeps.yaml")
    assert loaded.names() == ["nightly-digits", "weekly-telco"]
    assert loaded.sweeps[1].cron["day_of_week"] == "sun"


def test_the_cronjobs_schedule_file_is_valid(tmp_path):
    documents = list(yaml.safe_load_all((EXAMPLES / "cronjob.yaml").read_text()))
    (config_map,) = [d for d in documents if d["kind"] == "ConfigMap"]
    (cron_job,) = [d for d in documents if d["kind"] == "CronJob"]
    text = config_map["data"]["sweeps.yaml"].replace("/mnt/results", str(tmp_path / "results"))
    (tmp_path / "sweeps.yaml").write_text(text)
    assert load_schedule(tmp_path / "sweeps.yaml").names() == ["nightly-digits"]
    container = cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:3] == ["tuning-service", "schedule", "run-due"]
    assert cron_job["spec"]["concurrencyPolicy"] == "Forbid"


@pytest.mark.parametrize(
    "name",
    ["crontab", "tuning-service-run-due.service", "tuning-service-scheduler.service", "cronjob.yaml"],
)
def test_the_examples_call_commands_that_exist(name):
    commands = re.findall(r"tuning-service,? schedule,? ([a-z-]+)", (EXAMPLES / name).read_text())
    assert commands and all(c in schedule.commands for c in commands)


def test_a_submitted_sweep_gets_the_run_options_it_was_given():
    spec = SweepSpec(
        searcher="hyperopt",
        num_samples=8,
        max_epochs=3,
        time_budget_s=600.0,
        searcher_options={"n_initial_points": 4},
        db="postgresql://tuner:secret@db.example/results",
    )
    argv = run_args(spec)
    assert "secret" not in " ".join(argv)  # the password never travels in the entrypoint
    context = run.make_context("run", ["digits", *argv])
    params = context.params
    assert (params["searcher"], params["num_samples"], params["max_epochs"]) == ("hyperopt", 8, 3)
    assert params["time_budget"] == 600.0 and params["searcher_option"] == ("n_initial_points=4",)
    assert params["db"] == "postgresql://tuner@db.example/results"
    assert "--db" not in run_args(spec.replace(db="sqlite:///here.db"))  # a file on this machine stays here


@pytest.mark.parametrize("name", ["tuning-service-run-due.service", "tuning-service-scheduler.service"])
def test_the_units_read_settings_and_secrets_from_a_private_file_not_environment_lines(name):
    """Before: the unit suggested `Environment=TUNING_SERVICE_DB=postgresql://...`, which
    `systemctl show` prints to every user of the machine."""
    lines = (EXAMPLES / name).read_text().splitlines()
    assert "EnvironmentFile=-/etc/tuning-service/env" in lines
    assert not [line for line in lines if re.search(r"\bEnvironment=\w+=", line)]  # set or suggested
