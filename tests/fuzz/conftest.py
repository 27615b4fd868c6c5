"""Hypothesis profiles for the bad-input fuzzing: a quick default for every test run, a long one on demand.

pytest tests/fuzz                                   # the default: EXAMPLES inputs per test
TUNING_SERVICE_FUZZ_EXAMPLES=20000 pytest tests/fuzz   # a long run
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# Inputs each fuzz test tries by default; README quotes the total.
EXAMPLES = 300

settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("TUNING_SERVICE_FUZZ_EXAMPLES", EXAMPLES)),
    # Our own bound per input is checked explicitly (fuzzkit.LIMIT_S); Hypothesis' deadline
    # would also count its own work and the first import of a library.
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile("fuzz")


@pytest.fixture(scope="session", autouse=True)
def _libraries_imported(tmp_path_factory):
    """Run each searcher and scheduler once, before any input is timed: the first use imports Ray
    Tune's searchers, Optuna, HyperOpt, Keras and the jobs, seconds that are not the input's."""
    from fuzzkit import TINY, invoke

    storage = tmp_path_factory.mktemp("warm-up")
    for searcher, scheduler in (
        ("optuna", "asha"),
        ("hyperopt", "hyperband"),
        ("random", "median"),
        ("grid", "fifo"),
        ("cmaes", "asha"),
        ("qmc", "asha"),
        ("gp", "asha"),
        ("bohb", "bohb"),
    ):
        invoke(["run", TINY, "--searcher", searcher, "--scheduler", scheduler, "--storage", str(storage)])
    invoke(["jobs", "digits"])
