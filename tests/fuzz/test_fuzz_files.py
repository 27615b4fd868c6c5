"""Generated files: job files (with their search spaces) and schedule files, as YAML and JSON.

Each file is read by the commands users run on it (`jobs FILE`, `run FILE` up to where Ray
would start, `schedule validate FILE`); each must end with exit 0 or exit 2 and one line
(a schedule file: one line per problem under the first), never a traceback, within seconds,
and writes nothing.
"""

from __future__ import annotations

from fuzzinputs import NUMBER_TEXT, SCALARS, SPACES, TEXT, TRICKY_TEXT, VALUES, dump
from fuzzkit import TINY, check, files_under, invoke, workspace
from hypothesis import example, given
from hypothesis import strategies as st

CSV = "id,age,plan,spend,label\n" + "".join(
    f"{i},{20 + i % 50},{('basic', 'pro', 'team')[i % 3]},{(i * 7) % 100 + 0.5},{('no', 'yes')[i % 2]}\n"
    for i in range(60)
)
COLUMNS = ["id", "age", "plan", "spend", "label"]
GOOD_JOB = {"csv": st.just("data.csv"), "target": st.just("label")}
JOB_KEYS = {
    "name": st.one_of(st.just("churn"), TEXT),
    "description": TEXT,
    "csv": st.one_of(st.just("data.csv"), st.just("missing.csv"), st.just("/"), TEXT),
    "target": st.one_of(st.sampled_from(COLUMNS), TEXT),
    "separator": st.one_of(st.sampled_from([",", ";", "\t", ""]), TEXT),
    "ignore": st.one_of(st.lists(st.sampled_from(COLUMNS), max_size=3), VALUES),
    "numeric": st.one_of(st.lists(st.sampled_from(COLUMNS), max_size=3), VALUES),
    "zero_is_missing": st.one_of(st.lists(st.sampled_from(COLUMNS), max_size=3), VALUES),
    "task": st.one_of(st.sampled_from(["binary", "multiclass", "regression"]), TEXT),
    "encoding": st.one_of(st.sampled_from(["onehot", "ordinal"]), TEXT),
    "metric": st.one_of(st.sampled_from(["val_accuracy", "val_loss", "accuracy", "val_mae"]), TEXT),
    "mode": st.one_of(st.sampled_from(["max", "min"]), TEXT),
    "max_epochs": st.one_of(st.integers(1, 5), SCALARS),
    "batch_size": st.one_of(st.integers(1, 64), SCALARS),
    "cv_folds": st.one_of(st.integers(0, 5), SCALARS),
    "test_size": st.one_of(st.floats(0, 1), SCALARS),
    "validation_size": st.one_of(st.floats(0, 1), SCALARS),
    "defaults": st.one_of(
        st.dictionaries(st.sampled_from(["layers", "units", "optimizer", "lr"]), SCALARS, max_size=3), VALUES
    ),
    "space": st.one_of(SPACES, VALUES),
}


@st.composite
def job_files(draw: st.DrawFn) -> str:
    """A job file: the required keys (mostly right), a few others, sometimes a key of its own."""
    data = {
        key: draw(st.one_of(strategy, strategy, strategy, JOB_KEYS[key]))
        for key, strategy in GOOD_JOB.items()
    }
    for key in draw(st.lists(st.sampled_from(sorted(JOB_KEYS)), max_size=4, unique=True)):
        data[key] = draw(JOB_KEYS[key])
    if draw(st.integers(0, 7)) == 0:
        data[draw(TEXT)] = draw(VALUES)
    if draw(st.integers(0, 7)) == 0:
        return draw(st.one_of(TRICKY_TEXT, st.text(max_size=80)))  # not a mapping at all, or not YAML
    return dump(data, draw(st.sampled_from(["yaml", "json"])))


@given(text=job_files(), command=st.sampled_from(["jobs", "run-random", "run-grid", "run-optuna"]))
@example(
    text="csv: data.csv\ntarget: label\nspace: {units: {type: int, low: 0, high: 10000000000000}}\n",
    command="run-grid",
)
@example(
    text="csv: data.csv\ntarget: label\nspace: {a: [1, 2, 3], b: [1, 2, 3], c: [1, 2, 3], d: [1, 2, 3], e: [1, 2, 3], f: [1, 2, 3], g: [1, 2, 3], h: [1, 2, 3], i: [1, 2, 3], j: [1, 2, 3], k: [1, 2, 3], l: [1, 2, 3], m: [1, 2, 3], n: [1, 2, 3], o: [1, 2, 3]}\n",
    command="run-grid",
)
# Found: a separator pandas reads as a regular expression that does not compile: re.error.
@example(text="csv: data.csv\ntarget: label\nseparator: '*x'\n", command="jobs")
# Found: a path starting with ~ and a user name that does not exist: RuntimeError from Path.expanduser.
@example(text="csv: ~0\ntarget: label\n", command="jobs")
def test_job_files(text, command):
    with workspace() as folder:
        (folder / "data.csv").write_text(CSV)
        job = folder / "job.yaml"
        job.write_text(text, encoding="utf-8")
        if command == "jobs":
            argv = ["jobs", str(job), "--format", "json"]
        else:
            argv = [
                "run",
                str(job),
                "--searcher",
                command.removeprefix("run-"),
                "--storage",
                str(folder / "r"),
            ]
        before = files_under(folder)
        check(invoke(argv), before=before, after=files_under(folder))


@given(
    space=SPACES,
    searcher=st.sampled_from(["grid", "random", "optuna", "hyperopt", "cmaes", "qmc", "gp", "bohb"]),
    form=st.sampled_from(["yaml", "json"]),
)
# Found: a list as a parameter's type ended in TypeError: unhashable type: 'list'.
@example(space={"units": {"type": [], "low": 0, "high": 0}}, searcher="grid", form="yaml")
# Found: `low: null` passed the "needs low" check and ended in a TypeError from the dataclass.
@example(space={"learning_rate": {"type": "int", "low": None, "high": 0}}, searcher="grid", form="yaml")
def test_search_spaces(space, searcher, form):
    """A job file that is right but for its space, swept by each searcher (built, not run)."""
    with workspace() as folder:
        (folder / "data.csv").write_text(CSV)
        job = folder / f"job.{form}"
        job.write_text(dump({"csv": "data.csv", "target": "label", "space": space}, form), encoding="utf-8")
        argv = ["run", str(job), "--searcher", searcher, "--storage", str(folder / "r")]
        before = files_under(folder)
        check(invoke(argv), before=before, after=files_under(folder))


# -- schedule files ----------------------------------------------------------------------------------

SWEEP_KEYS = {
    "job": st.one_of(st.just(TINY), st.just(TINY), st.just("digits"), TEXT),
    "searcher": st.one_of(st.sampled_from(["random", "optuna", "grid", "hyperopt", "cmaes", "bohb"]), TEXT),
    "searcher_options": st.one_of(
        st.dictionaries(st.sampled_from(["n_startup_trials", "multivariate", "x"]), SCALARS, max_size=2),
        VALUES,
    ),
    "scheduler": st.one_of(st.sampled_from(["fifo", "asha", "hyperband", "median", "pbt"]), TEXT),
    "scheduler_options": st.one_of(
        st.dictionaries(
            st.sampled_from(
                [
                    "grace_period",
                    "reduction_factor",
                    "brackets",
                    "perturbation_interval",
                    "quantile_fraction",
                    "mutate",
                ]
            ),
            SCALARS,
            max_size=2,
        ),
        VALUES,
    ),
    "num_samples": st.one_of(st.integers(1, 20), SCALARS),
    "time_budget_s": st.one_of(st.floats(1, 1e4), SCALARS),
    "max_epochs": st.one_of(st.integers(1, 9), SCALARS),
    "resources_per_trial": st.one_of(
        st.dictionaries(st.sampled_from(["cpu", "gpu", "tpu"]), SCALARS, max_size=2), VALUES
    ),
    "max_concurrent_trials": st.one_of(st.integers(1, 4), SCALARS),
    "seed": st.one_of(st.integers(0, 9), SCALARS),
    "checkpoint_frequency": st.one_of(st.integers(1, 5), SCALARS),
    "max_failures": st.one_of(st.integers(0, 3), SCALARS),
    "data_limit": st.one_of(st.integers(1, 500), SCALARS),
    "data_dir": TEXT,
    "cron": st.one_of(
        st.sampled_from(
            ["30 2 * * *", "0 3 * * 0", "@daily", "*/5 * * * *", "61 2 * * *", "0 0 31 2 *", "0 0 1 * 1"]
        ),
        st.dictionaries(
            st.sampled_from(["hour", "minute", "second", "day_of_week", "day", "month", "year", "week"]),
            st.one_of(SCALARS, NUMBER_TEXT),
            max_size=3,
        ),
        VALUES,
    ),
    "time_zone": st.one_of(
        st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Mars/Olympus", "../etc/passwd"]), TEXT
    ),
    "target": st.one_of(st.sampled_from(["local", "address", "submit"]), TEXT),
    "address": st.one_of(
        st.sampled_from(["auto", "127.0.0.1:6379", "ray://h:1", "http://head:8265", "http://[::1]:8265"]),
        TEXT,
    ),
    "python": TEXT,
    "include": st.one_of(st.lists(TEXT, max_size=2), VALUES),
    "database": st.one_of(
        st.sampled_from(["sqlite:///db/s.db", "mysql://db/x", "postgres://127.0.0.1:1/x", "not a url"]), TEXT
    ),
    "storage": st.one_of(st.just("results"), TEXT),
    "remote_storage": TEXT,
    "export": st.one_of(st.just("exports"), TEXT),
    "warm_start": st.one_of(st.integers(0, 5), SCALARS),
    "lock_ttl_s": st.one_of(st.floats(1, 1e4), SCALARS),
    "wait_timeout_s": st.one_of(st.floats(1, 1e4), SCALARS),
    # Each `run` option under its own name, next to the earlier names above (both may come together).
    "time_budget": st.one_of(st.floats(1, 1e4), SCALARS),
    "max_concurrent": st.one_of(st.integers(1, 4), SCALARS),
    "cpus_per_trial": st.one_of(st.floats(0, 4), SCALARS),
    "gpus_per_trial": st.one_of(st.floats(0, 2), SCALARS),
    "cv_folds": st.one_of(st.integers(1, 5), SCALARS),
    "epoch_budget": st.one_of(st.integers(1, 50), SCALARS),
    "mlflow": st.one_of(st.just("sqlite:///mlflow.db"), st.just("http://u:pw@127.0.0.1:1"), TEXT),
    "db": st.one_of(st.sampled_from(["sqlite:///db/s.db", "postgres://127.0.0.1:1/x"]), TEXT),
    "searcher_option": st.one_of(st.dictionaries(st.just("n_startup_trials"), SCALARS, max_size=1), VALUES),
}
SWEEP_NAMES = st.one_of(st.sampled_from(["nightly", "hourly-telco", "a.b_c-1"]), TEXT)


@st.composite
def sweeps(draw: st.DrawFn) -> dict[str, object]:
    sweep: dict[str, object] = {"job": draw(SWEEP_KEYS["job"]), "cron": draw(SWEEP_KEYS["cron"])}
    for key in draw(st.lists(st.sampled_from(sorted(SWEEP_KEYS)), max_size=4, unique=True)):
        sweep[key] = draw(SWEEP_KEYS[key])
    return sweep


@st.composite
def schedule_files(draw: st.DrawFn) -> str:
    data: dict[object, object] = {
        "sweeps": draw(st.dictionaries(SWEEP_NAMES, sweeps(), min_size=1, max_size=3))
    }
    if draw(st.booleans()):
        keys = draw(st.lists(st.sampled_from(sorted(SWEEP_KEYS)), max_size=3, unique=True))
        data["defaults"] = {key: draw(SWEEP_KEYS[key]) for key in keys}
    if draw(st.integers(0, 7)) == 0:
        data[draw(TEXT)] = draw(VALUES)
    text = dump(data, draw(st.sampled_from(["yaml", "json"])))
    if draw(st.integers(0, 5)) == 0:  # a hand-written line: a leading zero, an alias, a duplicate
        line = draw(
            st.sampled_from(
                [
                    "num_samples: 08",
                    "cron: {hour: 02}",
                    "seed: &s [*s]",
                    "job: *nope",
                    "cron: '0 2 * * *'",
                    "  x: [1",
                ]
            )
        )
        text = (
            text.replace("sweeps:\n", f"sweeps:\n  extra:\n    {line}\n", 1) if "sweeps:\n" in text else text
        )
    return text


@given(text=schedule_files())
@example(text="sweeps:\n  nightly:\n    job: digits\n    num_samples: 08\n    cron: {hour: 02}\n")
@example(text="sweeps:\n  ../x:\n    job: digits\n    cron: '0 2 * * *'\n")
# Found: a record separator in a sweep name split its problem line in two.
@example(text='sweeps:\n  "\\x1E":\n    job: tuning_service.testing:tiny_job\n    cron: 30 2 * * *\n')
# Found: a top-level key holding a line break split its problem line in two.
@example(
    text="sweeps:\n  nightly:\n    job: tuning_service.testing:tiny_job\n    cron: 30 2 * * *\n? 'a\n\n  b'\n: null\n"
)
# Found: a cron time that never comes (Feb 31) took APScheduler seconds to rule out, 13 s on a busy machine.
@example(text="sweeps:\n  nightly:\n    job: tuning_service.testing:tiny_job\n    cron: 0 0 31 2 *\n")
# Found: half a surrogate pair (JSON's "\ud800") reached os.fsencode: UnicodeEncodeError.
@example(
    text='{"sweeps": {"nightly": {"job": "tuning_service.testing:tiny_job", "cron": "30 2 * * *", "storage": "\\ud800"}}}'
)
# Found: a time zone longer than a file name: OSError from zoneinfo.
@example(
    text=f"sweeps:\n  nightly:\n    job: tuning_service.testing:tiny_job\n    cron: 30 2 * * *\n    time_zone: '{'9' * 300}'\n"
)
# Found: APScheduler's message quoted a cron field holding a line break: two lines for one problem.
@example(
    text="sweeps:\n  nightly:\n    job: tuning_service.testing:tiny_job\n    cron:\n      hour: 'a\n\n        b'\n"
)
# Found: a bad default (null resources) reached the sweeps' checks: AttributeError.
@example(
    text="sweeps:\n  nightly:\n    job: tuning_service.testing:tiny_job\n    cron: 30 2 * * *\ndefaults:\n  resources_per_trial: null\n"
)
def test_schedule_files(text):
    with workspace() as folder:
        schedule = folder / "sweeps.yaml"
        schedule.write_text(text, encoding="utf-8")
        before = files_under(folder)
        check(
            invoke(["schedule", "validate", str(schedule)]),
            before=before,
            after=files_under(folder),
            problem_lines=True,
        )
