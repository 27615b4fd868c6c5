"""The schedule file: defaults, relative paths, and every bad input reported with its line, exit 2, nothing written."""

from __future__ import annotations

import re

import pytest

from tuning_service.cli import main
from tuning_service.core.errors import InputError
from tuning_service.sweeps.nightly.schedulefile import load_schedule

TINY = "tuning_service.testing:tiny_job"

GOOD = f"""
defaults:
  time_zone: Europe/Paris
  warm_start: 2
  storage: results
sweeps:
  nightly-tiny:
    job: {TINY}
    searcher: random
    scheduler: fifo
    num_samples: 2
    max_epochs: 1
    resources_per_trial: {{cpu: 1, gpu: 0}}
    cron: "30 2 * * 0"
  every-ten-seconds:
    job: {TINY}
    cron: {{second: "*/10"}}
    time_zone: UTC
    warm_start: 0
    database: sqlite:///db/schedule.db
    export: exports/fast
"""


def test_a_good_file_merges_defaults_and_resolves_paths_next_to_it(write_schedule, tmp_path):
    path = write_schedule(GOOD)
    loaded = load_schedule(path)
    nightly, fast = loaded.sweeps
    assert loaded.names() == ["nightly-tiny", "every-ten-seconds"]
    assert (nightly.time_zone, nightly.warm_start, fast.time_zone, fast.warm_start) == (
        "Europe/Paris",
        2,
        "UTC",
        0,
    )
    assert nightly.spec.storage == str(tmp_path / "results") == nightly.storage
    assert nightly.export_dir == tmp_path / "results" / "tiny" / "schedules" / "nightly-tiny"
    assert fast.spec.db == f"sqlite:///{tmp_path / 'db' / 'schedule.db'}"
    assert fast.export_dir == tmp_path / "exports" / "fast"
    assert (nightly.spec.num_samples, nightly.spec.max_epochs, nightly.spec.cpus_per_trial) == (2, 1, 1.0)
    assert (nightly.job_name, nightly.metric, nightly.mode) == ("tiny", "val_accuracy", "max")
    # Crontab's 0 is Sunday; APScheduler's is Monday: the file means crontab.
    assert nightly.cron["day_of_week"] == "sun"
    assert fast.cron == {"second": "*/10"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweeps.yaml"]  # checking wrote nothing


def test_a_grid_sweep_spreads_points_and_bohb_gets_its_scheduler(write_schedule):
    text = f"""
sweeps:
  grid-by-points:
    job: {TINY}
    searcher: grid
    searcher_options: {{points: 4}}
    cron: "0 3 * * *"
  bohb:
    job: {TINY}
    searcher: bohb
    cron: "0 4 * * *"
"""
    grid, bohb = load_schedule(write_schedule(text)).sweeps
    assert grid.spec.searcher_options == {"points": 4}
    assert (bohb.spec.searcher, bohb.spec.scheduler) == ("bohb", "bohb")


def test_validate_prints_the_sweeps(write_schedule, capsys):
    path = write_schedule(GOOD)
    assert main(["schedule", "validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "nightly-tiny: job tiny, 30 2 * * 0 (Europe/Paris), target local" in out
    assert "2 sweeps, all valid" in out


def _sweep(body: str, name: str = "nightly") -> str:
    return f"sweeps:\n  {name}:\n    job: {TINY}\n    cron: '0 2 * * *'\n" + body


BAD = {
    "unknown key": (
        _sweep("    grace: 3\n"),
        5,
        r"sweeps.nightly.grace: unknown key 'grace' \(accepted: address,",
    ),
    "unknown key in defaults": (
        "defaults:\n  num_sample: 3\n" + _sweep(""),
        2,
        r"defaults.num_sample: unknown key 'num_sample' \(accepted: .*did you mean 'num_samples'",
    ),
    "wrong type": (
        _sweep("    num_samples: ten\n"),
        5,
        r"sweeps.nightly.num_samples: expected an integer from 1 to 2147483647, got 'ten' \(a string\)",
    ),
    "wrong type of resources": (
        _sweep("    resources_per_trial: {cpu: many}\n"),
        5,
        "sweeps.nightly.resources_per_trial: cpu must be a number >= 0, got 'many'",
    ),
    "invalid cron": (
        "sweeps:\n  nightly:\n    job: digits\n    cron: '61 2 * * *'\n",
        4,
        r"sweeps.nightly.cron: invalid cron expression '61 2 \* \* \*': .*higher than the maximum value \(59\)",
    ),
    "cron with six fields": (
        "sweeps:\n  nightly:\n    job: digits\n    cron: '*/5 * * * * *'\n",
        4,
        "a crontab expression has 5 fields .* use the mapping form",
    ),
    # Found by the fuzzer: APScheduler looked for Feb 31 up to the year 9999, seconds per check.
    "cron that never fires": (
        "sweeps:\n  nightly:\n    job: digits\n    cron: '0 0 31 2 *'\n",
        4,
        r"sweeps.nightly.cron: cron expression '0 0 31 2 \*' never fires \(not within ten years\)",
    ),
    "cron that fires too late": (
        "sweeps:\n  nightly:\n    job: digits\n    cron: {year: 2099}\n",
        4,
        "never fires",
    ),
    "invalid cron field": (
        "sweeps:\n  nightly:\n    job: digits\n    cron: {seconds: '*/5'}\n",
        4,
        "sweeps.nightly.cron: invalid cron expression .*unknown cron field 'seconds'",
    ),
    "invalid time zone": (
        _sweep("    time_zone: Europe/Pariss\n"),
        5,
        "sweeps.nightly.time_zone: unknown time zone 'Europe/Pariss'",
    ),
    "invalid time zone in defaults": (
        "defaults:\n  time_zone: Mars/Olympus\n" + _sweep(""),
        2,
        "defaults.time_zone: sweep 'nightly': unknown time zone 'Mars/Olympus'",
    ),
    "unknown job": (
        "sweeps:\n  nightly:\n    cron: '0 2 * * *'\n    job: digitz\n",
        4,
        "sweeps.nightly.job: unknown job 'digitz'; choose one of: .*did you mean 'digits'",
    ),
    "duplicate sweep names": (
        _sweep("") + f"  nightly:\n    job: {TINY}\n    cron: '0 3 * * *'\n",
        5,
        r"sweeps.nightly: duplicate key 'nightly' \(first at line 2\)",
    ),
    "duplicate key in a sweep": (
        _sweep("    cron: '0 4 * * *'\n"),
        5,
        r"sweeps.nightly.cron: duplicate key 'cron' \(first at line 4\)",
    ),
    "missing cron": (
        f"sweeps:\n  nightly:\n    job: {TINY}\n",
        2,
        "sweeps.nightly: sweep 'nightly' needs 'cron'",
    ),
    "unknown searcher": (
        _sweep("    searcher: tpe\n"),
        5,
        "sweeps.nightly.searcher: unknown searcher 'tpe'.*did you mean 'optuna'",
    ),
    "unknown searcher option": (
        _sweep("    searcher_options: {n_startup: 3}\n"),
        5,
        "sweeps.nightly.searcher_options: searcher 'optuna': unknown option 'n_startup'",
    ),
    "grid points out of range": (
        _sweep("    searcher: grid\n    searcher_options: {points: 0}\n"),
        6,
        r"sweeps.nightly.searcher_options: searcher 'grid': option 'points' must be an integer >= 1",
    ),
    "bohb with asha": (
        _sweep("    searcher: bohb\n    scheduler: asha\n"),
        6,
        r"sweeps.nightly.scheduler: searcher 'bohb' runs only with scheduler 'bohb'",
    ),
    "unknown target": (
        _sweep("    target: kubernetes\n"),
        5,
        "sweeps.nightly.target: unknown target 'kubernetes'; choose one of: address, local, submit",
    ),
    "address target without address": (
        _sweep("    target: address\n"),
        5,
        "sweeps.nightly.target: target 'address' needs 'address'",
    ),
    "bad database url": (
        _sweep("    database: mysql://db/x\n"),
        5,
        "sweeps.nightly.database: database URL 'mysql://db/x': unsupported database 'mysql'",
    ),
    "not yaml": (
        "sweeps:\n  nightly: [unclosed\n",
        3,
        r"\(file\): not valid YAML",
    ),
    "no sweeps": (
        "defaults:\n  seed: 1\n",
        1,
        "sweeps: expected a mapping of sweep names to sweeps, got nothing",
    ),
    # Before: a RecursionError traceback.
    "recursive alias": (
        "sweeps:\n  nightly: &x [*x]\n",
        1,
        r"\(file\): not valid YAML: a recursive alias \(an anchor used inside itself\) at line 2",
    ),
    # Before: the nine levels of nine aliases expanded to 387 million values, in memory.
    "billion laughs": (
        _sweep("    searcher_options: {n_startup_trials: 1}\n")
        + "".join(f"x{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9 if i else ['lol'] * 9)}]\n" for i in range(9)),
        1,
        r"\(file\): not valid YAML: aliases expand this document from \d+ to \d+ values",
    ),
    # Before: the name went into <storage>/<job>/schedules/<name> unchecked.
    "a sweep name that climbs out of the results": (
        _sweep("", name="../../etc"),
        2,
        r"sweeps.../../etc: sweep name '../../etc' must be up to 100 letters, digits, '_', '-' or '.', starting with",
    ),
    "an absolute sweep name": (
        _sweep("", name="/tmp/x"),
        2,
        r"sweep name '/tmp/x' must be up to 100 letters",
    ),
    "a sweep name that is a number": (
        _sweep("", name="08"),
        2,
        r"sweeps.8: sweep name 8 must be a string: quote it",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exits_2_with_line_and_key_and_writes_nothing(write_schedule, tmp_path, capsys, case):
    _check_refused(write_schedule, tmp_path, capsys, "validate", *BAD[case])


@pytest.mark.parametrize("command", ["run", "run-due", "list"])
@pytest.mark.parametrize(
    "case", ["invalid cron", "invalid time zone", "duplicate sweep names", "unknown job"]
)
def test_run_and_run_due_refuse_bad_files_before_scheduling_anything(
    write_schedule, tmp_path, capsys, command, case
):
    _check_refused(write_schedule, tmp_path, capsys, command, *BAD[case])


def _check_refused(
    write_schedule, tmp_path, capsys, command: str, text: str, line: int, message: str
) -> None:
    path = write_schedule(text)
    assert main(["schedule", command, str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"sweeps.yaml:{line}: " in err
    assert err.count("\n") == 1, err  # one problem, one line
    assert re.search(message, err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweeps.yaml"]


def test_every_problem_is_reported_at_once(write_schedule):
    path = write_schedule(
        f"""
        defaults:
          grace: 3
        sweeps:
          a:
            job: {TINY}
            cron: '0 2 * * *'
            time_zone: Nowhere/City
          b:
            job: nosuchjob
            cron: {{hour: 25}}
        """
    )
    with pytest.raises(InputError) as caught:
        load_schedule(path)
    lines = str(caught.value).splitlines()
    assert lines[0].endswith("sweeps.yaml: 4 problems")
    assert [line.split(": ")[1] for line in lines[1:]] == [
        "defaults.grace",
        "sweeps.a.time_zone",
        "sweeps.b.job",
        "sweeps.b.cron",
    ]


def test_a_missing_file_is_bad_input(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_schedule(tmp_path / "nope.yaml")


def test_numbers_with_a_leading_zero_are_decimal_as_in_yaml_1_2(write_schedule):
    """Before: `num_samples: 08` and `hour: 02` ended in "invalid literal for int() with base 0"."""
    path = write_schedule(
        _sweep("    num_samples: 08\n").replace("cron: '0 2 * * *'", "cron: {hour: 02, minute: 0o10}")
    )
    (sweep,) = load_schedule(path).sweeps
    assert sweep.spec.num_samples == 8
    assert (sweep.cron["hour"], sweep.cron["minute"]) == ("2", "8")


def test_a_submitted_sweep_is_waited_for_a_bounded_time(write_schedule):
    """Before: `target: submit` polled a submission for ever, holding up every later sweep."""
    submit = "    target: submit\n    address: http://head:8265\n"
    path = write_schedule(
        _sweep(submit, name="budgeted").replace("    cron:", "    time_budget_s: 600\n    cron:", 1)
        + _sweep(submit + "    wait_timeout_s: 90\n", name="explicit").removeprefix("sweeps:\n")
        + _sweep(submit, name="unbounded").removeprefix("sweeps:\n")
    )
    budgeted, explicit, unbounded = load_schedule(path).sweeps
    assert (budgeted.wait_timeout_s, explicit.wait_timeout_s, unbounded.wait_timeout_s) == (4200, 90, 86400)
    with pytest.raises(
        InputError, match=r"'wait_timeout_s' is for target submit, and this sweep's target is 'local'"
    ):
        load_schedule(write_schedule(_sweep("    wait_timeout_s: 90\n")))


def test_a_scheduled_sweep_takes_objectives_and_constraints(write_schedule, capsys):
    text = f"""
sweeps:
  accuracy-and-size:
    job: {TINY}
    searcher: nsga2
    objectives: [val_accuracy:max, params:min]
    constraints: ["params<=5000"]
    cron: "0 3 * * *"
"""
    (sweep,) = load_schedule(write_schedule(text)).sweeps
    assert sweep.spec.objectives == ("val_accuracy:max", "params:min")
    assert sweep.spec.constraints == ("params<=5000",)
    bad = write_schedule(text.replace("params:min]", "params:least]"))
    assert main(["schedule", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the direction must be max or min, got 'least'" in err
