"""Generated command lines: option values, KEY=VALUE options, database URLs, environment variables.

Each input ends with exit 0 or exit 2 and one line, never a traceback, within seconds, and
writes nothing; no Ray starts (see fuzzkit).
"""

from __future__ import annotations

from fuzzinputs import NUMBER_TEXT, TEXT, TRICKY_TEXT, closed_port, database_urls
from fuzzkit import TINY, check, files_under, invoke, workspace
from hypothesis import example, given
from hypothesis import strategies as st

NUMERIC_FLAGS = (
    "--num-samples", "--max-epochs", "--cpus-per-trial", "--gpus-per-trial", "--max-concurrent", "--time-budget",
    "--epoch-budget", "--seed", "--max-failures", "--checkpoint-frequency", "--data-limit", "--cv-folds",
)  # fmt: skip
# Each plug-in's options, so most generated options reach its checks (and its builder).
SEARCHER_OPTIONS = {
    "grid": [],
    "random": [],
    "optuna": ["n_startup_trials", "multivariate"],
    "hyperopt": ["n_initial_points"],
    "cmaes": ["n_startup_trials", "popsize", "with_margin"],
    "qmc": ["qmc_type", "scramble"],
    "gp": ["n_startup_trials", "deterministic_objective"],
    "bohb": ["top_n_percent", "random_fraction", "bandwidth_factor"],
}
SCHEDULER_OPTIONS = {
    "fifo": [],
    "asha": ["grace_period", "reduction_factor", "brackets"],
    "hyperband": ["reduction_factor", "stop_last_trials"],
    "median": ["grace_period", "min_samples_required"],
    "pbt": [
        "perturbation_interval",
        "quantile_fraction",
        "resample_probability",
        "burn_in_period",
        "synch",
        "mutate",
    ],
    "bohb": ["reduction_factor", "stop_last_trials"],
}
# A generated command line is good but for at most two bad parts: one bad part stops the checks
# at once, so an input with many would never reach the checks (and builders) behind the first.
GOOD_OPTION_VALUES = st.one_of(
    st.integers(1, 6).map(str), st.sampled_from(["1.5", "2", "3.0", "true", "false", "0"])
)
BAD_VALUES = st.one_of(NUMBER_TEXT, TEXT)
GOOD_NUMBERS = {
    "--cpus-per-trial": st.sampled_from(["1", "0.5"]),
    "--gpus-per-trial": st.sampled_from(["0", "0.25"]),
    "--time-budget": st.sampled_from(["30", "0.5"]),
}
GOOD_INTEGERS = st.integers(1, 8).map(str)


@st.composite
def run_argv(draw: st.DrawFn) -> list[str]:
    parts: list[tuple[str, st.SearchStrategy[str], st.SearchStrategy[str]]] = []  # (flag, good, bad)
    searcher = draw(st.sampled_from(sorted(SEARCHER_OPTIONS)))
    scheduler = draw(st.sampled_from(sorted(SCHEDULER_OPTIONS)))
    parts += [("--searcher", st.just(searcher), TEXT), ("--scheduler", st.just(scheduler), TEXT)]
    for flag, table, name in (
        ("searcher", SEARCHER_OPTIONS, searcher),
        ("scheduler", SCHEDULER_OPTIONS, scheduler),
    ):
        for key in draw(st.lists(st.sampled_from(table[name] or ["seed"]), max_size=2, unique=True)):
            good = GOOD_OPTION_VALUES.map(lambda v, key=key: f"{key}={v}")
            bad = st.one_of(BAD_VALUES.map(lambda v, key=key: f"{key}={v}"), BAD_VALUES)
            parts.append((f"--{flag}-option", good, bad))
    for flag in draw(st.lists(st.sampled_from(NUMERIC_FLAGS), max_size=4, unique=True)):
        parts.append((flag, GOOD_NUMBERS.get(flag, GOOD_INTEGERS), NUMBER_TEXT))
    if draw(st.booleans()):
        parts.append(("--address", st.sampled_from(["auto", "local", "127.0.0.1:6379", "ray://h:1"]), TEXT))
    if draw(st.integers(0, 9)) == 0:
        parts.append(
            ("--mlflow", st.just("sqlite:///mlflow.db"), st.one_of(st.just("http://me:pw@m:5000"), TEXT))
        )
    bad = set(draw(st.lists(st.integers(0, len(parts)), max_size=2)))  # len(parts): the job
    argv = [draw(st.sampled_from(["run", "submit"]))]
    argv.append(draw(st.one_of(st.just("digits"), TEXT) if len(parts) in bad else st.just(TINY)))
    for index, (flag, good, wrong) in enumerate(parts):
        argv += [flag, draw(wrong if index in bad else good)]
    return argv


@given(argv=run_argv())
# Found: Ray's ASHA asserted "Reduction Factor not valid!" (or compared 'abc' with an int) once the
# sweep had started; options are now checked against their builder's types and bounds.
@example(argv=["run", TINY, "--scheduler", "asha", "--scheduler-option", "reduction_factor=1"])
@example(argv=["run", TINY, "--scheduler", "asha", "--scheduler-option", "grace_period=abc"])
# Found: a 400-digit option value overflowed the finiteness check (OverflowError).
@example(argv=["run", TINY, "--scheduler", "asha", "--scheduler-option", "reduction_factor=" + "9" * 400])
# Found: a job reference longer than a file name may be ended in OSError: File name too long.
@example(argv=["run", "9" * 400])
def test_run_and_submit_options(argv):
    with workspace() as folder:
        argv = [*argv, "--storage", str(folder / "results"), "--db", f"sqlite:///{folder}/tuning.db"]
        if argv[0] == "submit":  # a Jobs API that refuses at once: nothing reaches a cluster
            argv += ["--address", f"http://127.0.0.1:{closed_port()}"]
        before = files_under(folder)
        check(invoke(argv), before=before, after=files_under(folder))


@given(url=database_urls(), command=st.sampled_from(["results", "export", "run", "compare a b", "refit a"]))
@example(url="postgres://127.0.0.1/tuning", command="results")  # found: a NoSuchModuleError traceback
@example(url="postgresql://../x@127.0.0.1/tuning", command="results")  # found: UnicodeError from the resolver
@example(
    url="postgresql:///u:s3cret@127.0.0.1/tuning", command="results"
)  # found: the password shown as %3As3cret%40
def test_database_urls(url, command):
    with workspace() as folder:
        url = url.replace("{folder}", str(folder).lstrip("/")).replace("{port}", str(closed_port()))
        argv = [*command.split(), "--db", url, "--storage", str(folder / "r")]
        if command == "run":
            argv[1:1] = [TINY, "--searcher", "random"]
        before = files_under(folder)
        outcome = invoke(argv)
        check(outcome, before=before, after=files_under(folder))
        assert "s3cret" not in outcome.err  # a password is never shown


@given(
    name=st.sampled_from(
        [
            "TUNING_SERVICE_CONNECT_TIMEOUT_S",
            "TUNING_SERVICE_SNAPSHOT_S",
            "TUNE_MAX_PENDING_TRIALS_PG",
            "TUNING_SERVICE_DB_STATEMENT_TIMEOUT_S",
            "TUNING_SERVICE_DB",
            "TUNING_SERVICE_OFFLINE",
        ]
    ),  # fmt: skip
    value=st.one_of(NUMBER_TEXT, TRICKY_TEXT).filter(lambda v: "\x00" not in v),
    address=st.sampled_from([[], ["--address", "auto"]]),
)
def test_environment_variables(name, value, address):
    with workspace() as folder:
        argv = ["run", TINY, "--searcher", "random", "--storage", str(folder / "r"), *address]
        before = files_under(folder)
        check(invoke(argv, env={name: value}), before=before, after=files_under(folder))


WARM_START = st.one_of(
    st.lists(
        st.dictionaries(
            st.sampled_from(["learning_rate", "units", "config", "x"]),
            st.one_of(NUMBER_TEXT, st.floats(), st.integers()),
        ),
        max_size=4,
    ),
    st.text(max_size=60),
    TRICKY_TEXT,
)


@given(content=WARM_START, form=st.sampled_from(["yaml", "json"]))
def test_warm_start_files(content, form):
    from fuzzinputs import dump

    with workspace() as folder:
        points = folder / f"points.{form}"
        points.write_text(content if isinstance(content, str) else dump(content, form), encoding="utf-8")
        argv = [
            "run",
            TINY,
            "--searcher",
            "random",
            "--warm-start",
            str(points),
            "--storage",
            str(folder / "r"),
        ]
        before = files_under(folder)
        check(invoke(argv), before=before, after=files_under(folder))
