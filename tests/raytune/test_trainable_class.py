"""A sweep looks its trainable class up in Ray's registry once, not once per trial."""

from __future__ import annotations

from typing import Any

from ray import tune
from ray.tune import registry
from ray.tune.experiment import Trial

from tuning_service.raytune.trainableclass import trainables_looked_up_once


class _First(tune.Trainable):
    def step(self) -> dict[str, Any]:
        return {"x": 1}


class _Second(_First):
    pass


def _lookups(monkeypatch) -> list[str]:
    seen: list[str] = []
    tunes = registry._Registry.get

    def get(self: Any, category: str, key: str) -> Any:
        seen.append(key)
        return tunes(self, category, key)

    monkeypatch.setattr(registry._Registry, "get", get)
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
