"""A reused actor whose trainable's reset cannot fail gets its trial's first call right behind the
reset; other trainables keep Tune's wait for the reset's answer."""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from types import SimpleNamespace
from typing import Any

import pytest
import ray.cloudpickle
from ray import tune

from tuning_service.raytune.pipelinedreset import reset_cannot_fail, resets_pipelined
from tuning_service.raytune.trainable import KerasTrainable
from tuning_service.raytune.tunepatch import replaced

RESET_S = 0.5  # how long each reset takes on the worker

# The workers cannot import this file: its trainables travel by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class SlowReset(tune.Trainable):
    """Records when its reset ended and which configuration each step saw."""

    RESET_CANNOT_FAIL = True

    def setup(self, config: dict[str, Any]) -> None:
        self.n, self.reset_done = config["n"], 0.0

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        time.sleep(RESET_S)
        if new_config["n"] == "fails":
            raise ValueError("this reset fails")
        self.n, self.reset_done = new_config["n"], time.time()
        return True

    def step(self) -> dict[str, Any]:
        return {"n": self.n, "reset_done": self.reset_done, "done": True}

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
        return {}

    def load_checkpoint(self, checkpoint: Any) -> None:
        pass


class SlowResetThatMayFail(SlowReset):
    RESET_CANNOT_FAIL = False


class StartTimes(tune.Callback):
    """When the driver started each trial (Tune starts a reused actor's trial just before its first call)."""

    def __init__(self) -> None:
        self.started: dict[Any, float] = {}

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.started[trial.config["n"]] = time.time()


# Trials Tune held staged (waiting for an actor) after a step while they were no longer pending.
STAGED_NOT_PENDING: list[str] = []


def _step_checking_staged(tunes_step: Any) -> Any:
    def step(controller: Any) -> None:
        tunes_step(controller)
        STAGED_NOT_PENDING.extend(t.trial_id for t in controller._staged_trials if t.status != "PENDING")

    return step


# Trials Tune started (`_actor_started`) while its own adding of actors was still under way, where
# its bookkeeping would stage them again after their start.
STARTED_WHILE_ADDING: list[str] = []


def _tracing_adds_and_starts(controller_cls: Any) -> ExitStack:
    tunes_add, tunes_started = controller_cls._maybe_add_actors, controller_cls._actor_started
    adding = [False]

    def add(controller: Any) -> None:
        adding[0] = True
        try:
            tunes_add(controller)
        finally:
            adding[0] = False

    def started(controller: Any, tracked_actor: Any, log: str = "STARTED") -> None:
        if adding[0]:
            STARTED_WHILE_ADDING.append(controller._actor_to_trial[tracked_actor].trial_id)
        tunes_started(controller, tracked_actor, log=log)

    stack = ExitStack()
    stack.enter_context(replaced(controller_cls, "_maybe_add_actors", add))
    stack.enter_context(replaced(controller_cls, "_actor_started", started))
    return stack


def _run(trainable: type, values: list[Any], tmp_path) -> tuple[dict[Any, Any], dict[Any, float]]:
    from ray.tune.execution.tune_controller import TuneController

    starts = StartTimes()
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space={"n": tune.grid_search(values)},
        # One trial at a time: each trial after the first takes over the one actor.
        tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=1),
        run_config=tune.RunConfig(storage_path=str(tmp_path), callbacks=[starts], verbose=0),
    )
    STAGED_NOT_PENDING.clear()
    STARTED_WHILE_ADDING.clear()
    with (
        _tracing_adds_and_starts(TuneController),  # Tune's own, under the pipelined ones
        resets_pipelined(),
        replaced(TuneController, "step", _step_checking_staged(TuneController.step)),
    ):
        grid = tuner.fit()
    # Tune's bookkeeping stays its own: a trial is staged only until its actor starts it, and a
    # reused trial starts once Tune is done adding actors (as on a reset's answer).
    assert STAGED_NOT_PENDING == []
    assert STARTED_WHILE_ADDING == []
    return {r.config["n"]: (r.metrics, r.error) for r in grid}, starts.started


@pytest.mark.integration
def test_a_reused_actors_first_call_follows_its_reset_without_waiting(ray_local, tmp_path):
    results, started = _run(SlowReset, [0, 1, 2], tmp_path)
    for n in (1, 2):  # the trials that took the actor over
        metrics, error = results[n]
        assert error is None and metrics["n"] == n, results  # its call ran after its reset
        # The driver started the trial (and sent its first call) before the reset was over.
        assert started[n] < metrics["reset_done"], (n, started, metrics)


@pytest.mark.integration
def test_a_trainable_whose_reset_may_fail_keeps_tunes_wait(ray_local, tmp_path):
    results, started = _run(SlowResetThatMayFail, [0, 1], tmp_path)
    metrics, error = results[1]
    assert error is None and metrics["n"] == 1, results
    assert started[1] > metrics["reset_done"], (started, metrics)


@pytest.mark.integration
def test_a_reset_that_raises_still_fails_its_trial(ray_local, tmp_path):
    results, _ = _run(SlowReset, [0, "fails", 2], tmp_path)
    assert results[0][1] is None and results[2][1] is None, results
    assert results["fails"][1] is not None and "this reset fails" in str(results["fails"][1]), results
    assert results[2][0]["n"] == 2, results


def test_the_keras_trainable_says_its_reset_cannot_fail():
    # Its reset only stores the configuration for the next step to build.
    trainable = KerasTrainable.__new__(KerasTrainable)
    assert trainable.reset_config({"units": 8}) is True and trainable.config_to_start == {"units": 8}
    assert reset_cannot_fail(SimpleNamespace(get_trainable_cls=lambda: KerasTrainable))


def test_a_trainable_that_says_nothing_or_cannot_be_looked_up_keeps_tunes_reset():
    assert not reset_cannot_fail(SimpleNamespace(get_trainable_cls=lambda: tune.Trainable))

    def missing() -> type:
        raise RuntimeError("not registered")

    assert not reset_cannot_fail(SimpleNamespace(get_trainable_cls=missing))
