"""A sweep looks its trainable class up in Ray's registry once, not once per trial."""

from __future__ import annotations

from typing import Any

import pytest
from ray import tune
from ray.tune import TuneError, registry
from ray.tune.experiment import Trial

from tuning_service.raytune.trainableclass import trainables_looked_up_once


class _First(tune.Trainable):
    def step(self) -> dict[str, Any]:
        return {"x": 1}


class _Second(_First):
    pass


def _lookups(monkeypatch, method: str = "get") -> list[str]:
    """The names Ray's registry is asked for with ``method`` (``get``: the class; ``contains``:
    whether it is registered), each a call to Ray's GCS."""
    seen: list[str] = []
    tunes = getattr(registry._Registry, method)

    def asked(self: Any, category: str, key: str) -> Any:
        seen.append(key)
        return tunes(self, category, key)

    monkeypatch.setattr(registry._Registry, method, asked)
    return seen


def test_each_name_is_looked_up_once_while_the_sweep_runs(monkeypatch):
    tune.register_trainable("looked_up_once", _First)
    seen = _lookups(monkeypatch)
    trials = [Trial("looked_up_once", config={"a": i}) for i in range(5)]
    with trainables_looked_up_once():
        classes = {trial.get_trainable_cls() for trial in trials for _ in range(3)}
        assert [trial.placement_group_factory for trial in trials]  # Tune's own call, by a trial
    assert classes == {_First} and seen == ["looked_up_once"]

    # After the sweep, Tune looks the name up again: a later sweep may register another class.
    tune.register_trainable("looked_up_once", _Second)
    assert trials[0].get_trainable_cls() is _Second and seen == ["looked_up_once"] * 2
    with trainables_looked_up_once():
        assert trials[0].get_trainable_cls() is _Second


def test_a_stub_trial_leaves_the_name_to_the_trials_that_run():
    # Tune's stub trials (read back where a trainable is not registered) have no class; a trial
    # of the same name that runs after one still gets its class.
    tune.register_trainable("after_a_stub", _First)
    with trainables_looked_up_once():
        assert Trial("after_a_stub", config={}, stub=True).get_trainable_cls() is None
        assert Trial("after_a_stub", config={}).get_trainable_cls() is _First


def test_each_new_trial_of_a_name_checks_it_is_registered_once(monkeypatch):
    tune.register_trainable("checked_once", _First)
    checked = _lookups(monkeypatch, "contains")
    with trainables_looked_up_once():
        trials = [Trial("checked_once", config={"a": i}) for i in range(5)]
        assert checked == ["checked_once"]
        with pytest.raises(TuneError, match="Unknown trainable"):  # Tune's refusal, every time
            Trial("never_registered", config={})
        with pytest.raises(TuneError, match="Unknown trainable"):
            Trial("never_registered", config={})
    assert len(trials) == 5
    Trial("checked_once", config={})  # Tune's own check again after the sweep
    assert checked.count("checked_once") == 2
