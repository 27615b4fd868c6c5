"""Tune keeps as many trials pending as the sweep runs at once, so every slot gets an actor under
a model-based searcher (Tune's own cap there is one); a cap the user set is kept, and checked."""

from __future__ import annotations

import os

import pytest

from tuning_service.core.envvars import env_restored
from tuning_service.core.errors import InputError
from tuning_service.core.spec import SweepSpec
from tuning_service.raytune.pendingtrials import (
    PENDING_ENV,
    concurrent_trials,
    raise_pending_cap,
    user_pending_cap,
)
from tuning_service.sweeps import runner

JOB_FILE = "from tuning_service.testing import tiny_job\n\nJOB = tiny_job(max_epochs=2)\n"


def test_the_trials_at_once_are_what_the_cluster_the_samples_and_the_cap_allow():
    two_cpus, gpu = {"CPU": 2.0}, {"CPU": 16.0, "GPU": 1.0}
    assert concurrent_trials(two_cpus, 1.0, 0.0, 16, None) == 2
    assert concurrent_trials(two_cpus, 0.5, 0.0, 16, None) == 4
    assert concurrent_trials(two_cpus, 1.0, 0.0, 16, 1) == 1  # --max-concurrent
    assert concurrent_trials({"CPU": 64.0}, 1.0, 0.0, 3, None) == 3  # no more than the sweep's trials
    assert concurrent_trials(gpu, 1.0, 0.25, 16, None) == 4  # four trials share the GPU
    assert concurrent_trials(gpu, 1.0, 1 / 3, 16, None) == 3
    assert concurrent_trials(two_cpus, 4.0, 0.0, 16, None) == 1  # at least one


def test_a_cap_the_user_set_is_kept_and_a_bad_one_refused(monkeypatch):
    monkeypatch.delenv(PENDING_ENV, raising=False)
    assert user_pending_cap() is None
    for unset in ("", "  "):
        monkeypatch.setenv(PENDING_ENV, unset)
        assert user_pending_cap() is None
    for good in ("3", "auto", " 8 "):  # as Tune reads it: int(" 8 ") is 8
        monkeypatch.setenv(PENDING_ENV, good)
        assert user_pending_cap() == good
    for bad in ("0", "-1", "two", "1.5", " auto", "\u00b2"):  # Tune's int() fails on the last three
        monkeypatch.setenv(PENDING_ENV, bad)
        with pytest.raises(InputError, match=f"{PENDING_ENV} must be a whole number > 0 or 'auto'"):
            user_pending_cap()


def test_the_cap_is_raised_for_a_model_based_searcher_only(monkeypatch):
    from ray.tune.search import BasicVariantGenerator, SearchGenerator
    from ray.tune.search.optuna import OptunaSearch

    monkeypatch.delenv(PENDING_ENV, raising=False)
    with env_restored(PENDING_ENV):  # what the function sets goes back, as after a sweep
        raise_pending_cap(BasicVariantGenerator(), 2)  # Tune's own cap there is 200 or more
        raise_pending_cap(None, 2)  # Tune's variant generator too
        assert PENDING_ENV not in os.environ
        os.environ[PENDING_ENV] = ""  # Tune's int("") would fail: its own cap instead
        raise_pending_cap(BasicVariantGenerator(), 2)
        assert PENDING_ENV not in os.environ
        raise_pending_cap(SearchGenerator(OptunaSearch()), 2)
        assert os.environ[PENDING_ENV] == "2"
        os.environ[PENDING_ENV] = "5"
        raise_pending_cap(SearchGenerator(OptunaSearch()), 2)
        assert os.environ[PENDING_ENV] == "5"


@pytest.mark.integration
def test_a_sweep_under_optuna_lets_tune_keep_a_trial_pending_per_slot(ray_local, tmp_path, monkeypatch):
    # Tune's cap is observed where Tune decides it; before, Optuna's sweep got 1, and its short
    # trials ran one at a time in one worker on the two slots of the test session's Ray.
    from ray.tune.execution import tune_controller

    decided: list[int] = []
    decide = tune_controller._get_max_pending_trials

    def deciding(search_alg):
        decided.append(decide(search_alg))
        return decided[-1]

    monkeypatch.setattr(tune_controller, "_get_max_pending_trials", deciding)
    monkeypatch.delenv(PENDING_ENV, raising=False)
    (tmp_path / "tiny_job.py").write_text(JOB_FILE)
    spec = SweepSpec(
        job=f"{tmp_path / 'tiny_job.py'}:JOB",
        storage=str(tmp_path / "results"),
        num_samples=3,
        scheduler="fifo",
        searcher="optuna",
    )
    result = runner.run_sweep(spec)
    assert len(result.trials) == 3
    assert decided and set(decided) == {2}, decided  # the session's Ray has 2 CPUs, a trial takes 1
    # Set for the sweep's driver only: a later sweep of this process must not take it for the
    # user's choice.
    assert PENDING_ENV not in os.environ
